"""The main window: the 3D view, the side panel, menus, toolbar and status bar.

The window holds a ``pyvistaqt.QtInteractor`` and a :class:`viewer.render.SceneRenderer` (it never
subclasses the plotter). Widgets edit the :class:`viewer.model.SceneModel` through the undo recorder
and follow its events; the renderer draws whatever the model says.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QGuiApplication, QImage, QKeySequence, QUndoStack
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QGroupBox,
    QLabel,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)
from pyvistaqt import QtInteractor

from viewer.app.atrophy_panel import AtrophyPanel
from viewer.app.export import ExportOptions, export_pixels
from viewer.app.export_dialog import ExportDialog
from viewer.app.info_card import InfoCard, structure_title
from viewer.app.labels import LiveLabels
from viewer.app.layers_panel import LayersPanel
from viewer.app.picking import StructurePicker
from viewer.app.quiz_panel import QuizPanel
from viewer.app.scenario_card import ScenarioCard
from viewer.app.undo import UndoRecorder
from viewer.app.view3d import View3D
from viewer.app.warmup import Warmer, warm_atrophy, warm_viewer
from viewer.atlas import credit_lines, load_atlas
from viewer.atlases import list_atlases, resolve_atlas
from viewer.errors import DorsumError
from viewer.model import SceneModel
from viewer.output import save_png
from viewer.render import Camera, RenderSettings, SceneRenderer
from viewer.session import Session, apply_session, capture_session, load_session, save_session
from viewer.views import DEFAULT_VIEW, VIEWS

#: Keyboard shortcut of each camera preset.
VIEW_KEYS = {"posterior": "P", "anterior": "A", "left": "L", "right": "R", "superior": "S", "inferior": "I",
             "posterolateral_left": "Shift+L", "posterolateral_right": "Shift+R"}
TOOLBAR_VIEWS = ("posterior", "anterior", "left", "right", "superior", "posterolateral_left", "posterolateral_right")
SHORT_VIEW_NAMES = {"posterolateral_left": "Oblique L", "posterolateral_right": "Oblique R", "left": "Left",
                    "right": "Right", "superior": "Top", "inferior": "Bottom"}
PANEL_WIDTH = 360


class RenderScheduler:
    """Coalesces render requests: at most one render per turn of the event loop.

    A slider drag or a batch of model events asks for many renders; the window is drawn once, after
    the events queued so far are handled.
    """

    def __init__(self, plotter: QtInteractor):
        self.plotter = plotter
        self.renders = 0
        self._timer = QTimer(singleShot=True, interval=0)
        self._timer.timeout.connect(self.render_now)
        # QtInteractor.render() emits render_signal, connected to its private _render; route it here.
        plotter.render_signal.disconnect(plotter._render)
        plotter.render_signal.connect(self.request)

    def request(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def render_now(self) -> None:
        self._timer.stop()
        if not getattr(self.plotter, "_closed", True):
            self.renders += 1
            self.plotter._render()

    def stop(self) -> None:
        self._timer.stop()


class MainWindow(QMainWindow):
    """Dorsum's window around one scene model."""

    def __init__(self, model: SceneModel, *, settings: RenderSettings = RenderSettings(),
                 state_path: Path | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = model
        self.state_path = state_path
        self.setWindowTitle("Dorsum")
        self.undo_stack = QUndoStack(self)
        self.undo = UndoRecorder(model, self.undo_stack)

        # No multisampling: on a CPU renderer (llvmpipe) 4x MSAA makes every frame about 3x slower;
        # exports stay anti-aliased by supersampling. View3D: fewer copies of each frame on the way to the screen.
        self.plotter = View3D(self, auto_update=False, multi_samples=0)
        self.plotter.interactor.installEventFilter(self)  # VTK's own keys (w, s, 3, q...) would surprise
        self.render_scheduler = RenderScheduler(self.plotter)
        self.plotter.window_size = (900, 780)  # a size before the first show, for the first framing
        self.renderer = SceneRenderer(self.plotter, model, settings)
        self.picker = StructurePicker(self.renderer, model, self._show_hover_name)
        self.live_labels = LiveLabels(self.renderer, model)
        # Labels are laid out once per turn of the event loop, however many changes asked for it.
        self._labels_timer = QTimer(self, singleShot=True, interval=0)
        self._labels_timer.timeout.connect(self._show_labels)
        self._preset_camera: Camera | None = None
        self.labels_shown = False
        self._framed_on_show = False
        #: The window that replaced this one after a switch of atlas (see :meth:`switch_atlas`).
        self.successor: MainWindow | None = None

        self.layers_panel = LayersPanel(model, self.undo.edit)
        self.atrophy_panel = AtrophyPanel(model, self.undo.edit)
        self.info_card = InfoCard(model)
        self.quiz_panel = QuizPanel(model)
        model.events.atrophy.connect(self._on_scenario_atrophy)
        self.scenario_card = ScenarioCard()
        self._scenario_wasting: object = None
        self.compare_window = None
        self.status_label = QLabel()
        self.hover_label = QLabel()
        self._build_layout()
        self._build_actions()
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(self.hover_label)

        for signal in (model.events.visibility, model.events.opacity, model.events.atrophy):
            signal.connect(self._on_model_changed)
        model.events.geometry.connect(self._on_geometry)
        model.events.highlight.connect(self._on_highlight)
        interactor = self.plotter.iren.interactor
        interactor.AddObserver("StartInteractionEvent", self._on_camera_starts)
        interactor.AddObserver("InteractionEvent", self._paint_drag_frame)
        interactor.AddObserver("EndInteractionEvent", self._on_camera_moved)
        self.warmer = Warmer()
        # Warm up once the first frame is on screen, so that the work does not delay it.
        self._warm_observer = self.plotter.render_window.AddObserver("EndEvent", self._start_warmup)
        for combo in (self.atrophy_panel.range_from, self.atrophy_panel.range_to):
            combo.currentIndexChanged.connect(self._warm_atrophy_range)
        # Bound methods, not lambdas: Qt drops the connection when the window is deleted (a lambda
        # would run on the half-deleted window when the stack says "clean" while closing).
        self.undo_stack.cleanChanged.connect(self._on_clean_changed)
        self.set_view(DEFAULT_VIEW)
        self.update_status()
        self._update_title()

    # -- layout --------------------------------------------------------------------------------
    def _build_layout(self) -> None:
        tabs = QTabWidget()
        tabs.addTab(self.layers_panel, "Layers")
        tabs.addTab(self.atrophy_panel, "Atrophy")
        tabs.addTab(self.quiz_panel, "Quiz")
        self.tabs = tabs
        card_box = QGroupBox("Selected structure")
        card_layout = QVBoxLayout(card_box)
        card_layout.setContentsMargins(4, 4, 4, 4)
        scroll = QScrollArea()  # long teaching text scrolls instead of being cut off
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(self.info_card)
        card_layout.addWidget(scroll)
        panel_split = QSplitter(Qt.Orientation.Vertical)
        panel_split.addWidget(tabs)
        panel_split.addWidget(card_box)
        panel_split.setSizes([440, 320])
        panel_split.setCollapsible(0, False)
        panel = QWidget()
        panel_layout = QVBoxLayout(panel)
        panel_layout.setContentsMargins(6, 6, 6, 6)
        scenario_scroll = QScrollArea()
        scenario_scroll.setWidgetResizable(True)
        scenario_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scenario_scroll.setWidget(self.scenario_card)
        scenario_scroll.setMaximumHeight(230)
        self.scenario_box = QGroupBox("Scenario")
        QVBoxLayout(self.scenario_box).addWidget(scenario_scroll)
        self.scenario_box.hide()
        panel_layout.addWidget(self.scenario_box)
        panel_layout.addWidget(panel_split)
        panel.setMinimumWidth(PANEL_WIDTH - 60)
        self.side_panel = panel
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.plotter.interactor)
        splitter.addWidget(panel)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 0)
        splitter.setCollapsible(0, False)
        splitter.setSizes([900, PANEL_WIDTH])
        self.setCentralWidget(splitter)
        self.resize(1280, 820)

    def _action(self, text: str, slot, shortcut: str | QKeySequence | None = None, tip: str = "",
                checkable: bool = False) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setCheckable(checkable)
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(f"{tip} ({action.shortcut().toString()})" if shortcut else tip)
        action.triggered.connect(slot)
        self.addAction(action)  # shortcuts work wherever the focus is
        return action

    def _build_actions(self) -> None:
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        self.open_action = self._action("&Open view state…", self.open_state_dialog, QKeySequence.StandardKey.Open,
                                        "Open a saved view: camera, visibility, opacities and atrophy")
        self.save_action = self._action("&Save view state", self.save_state, QKeySequence.StandardKey.Save,
                                        "Save the view (camera, visibility, opacities, atrophy) as a small file")
        self.save_as_action = self._action("Save view state &as…", lambda: self.save_state(ask=True),
                                           QKeySequence.StandardKey.SaveAs)
        self.screenshot_action = self._action("Save s&creenshot…", self.screenshot_dialog, "Ctrl+E",
                                              "Save a picture of the view, up to 4K")
        self.copy_action = self._action("Cop&y image to clipboard", self.copy_image, "Ctrl+Shift+C",
                                        "Copy a picture of the view to paste into slides")
        quit_action = self._action("&Quit", self.close, QKeySequence.StandardKey.Quit)
        for action in (self.open_action, self.save_action, self.save_as_action, None, self.screenshot_action,
                       self.copy_action, None, quit_action):
            file_menu.addSeparator() if action is None else file_menu.addAction(action)

        edit_menu = menu.addMenu("&Edit")
        self.undo_action = self.undo_stack.createUndoAction(self, "&Undo")
        self.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
        self.redo_action = self.undo_stack.createRedoAction(self, "&Redo")
        self.redo_action.setShortcuts([QKeySequence.StandardKey.Redo, QKeySequence("Ctrl+Y")])
        for action in (self.undo_action, self.redo_action):
            self.addAction(action)
            edit_menu.addAction(action)
        edit_menu.addSeparator()
        edit_menu.addAction(self._action("Show &all", self.layers_panel.show_all, "0",
                                         "Show every layer and structure, fully opaque"))
        edit_menu.addAction(self._action("&Clear selection", lambda: self.model.set_highlight(None), "Esc"))

        view_menu = menu.addMenu("&View")
        self.view_actions: dict[str, QAction] = {}
        group = QActionGroup(self)
        for name, preset in VIEWS.items():
            action = self._action(preset.label, lambda _checked=False, n=name: self.set_view(n), VIEW_KEYS.get(name),
                                  f"{preset.label} view", checkable=True)
            group.addAction(action)
            view_menu.addAction(action)
            self.view_actions[name] = action
        view_menu.addSeparator()
        self.reset_view_action = self._action("&Reset view", self.reset_view, "Home",
                                              "Back to the posterior view, framing what is shown")
        view_menu.addAction(self.reset_view_action)
        view_menu.addSeparator()
        self.labels_action = self._action("&Labels", self.set_labels_shown, "N", "Name the visible muscles",
                                          checkable=True)
        self.hover_action = self._action("Names on &hover", self.set_hover, "Shift+N",
                                         "Show the name of the structure under the pointer", checkable=True)
        view_menu.addAction(self.labels_action)
        view_menu.addAction(self.hover_action)

        layers_menu = menu.addMenu("&Layers")
        self.layer_actions: dict[str, QAction] = {}
        for index, layer in enumerate(self.model.atlas.layers[:9], start=1):
            action = self._action(f"Show {layer.name}", lambda _c=False, n=layer.name: self.layers_panel.toggle_layer(n),
                                  str(index), f"Show or hide the {layer.name} layer", checkable=True)
            layers_menu.addAction(action)
            self.layer_actions[layer.name] = action
        layers_menu.addSeparator()
        layers_menu.addAction(edit_menu.actions()[-2])  # the same "Show all" (key 0)

        self.atlas_menu = menu.addMenu("&Atlas")
        self.atlas_menu.aboutToShow.connect(self.refresh_atlas_menu)
        self.atlas_actions: dict[str, QAction] = {}
        self.refresh_atlas_menu()

        view_menu.addSeparator()
        view_menu.addAction(self._action("&Compare with healthy", self.open_comparison, "F7",
                                         "Healthy and wasted side by side, turning together"))

        self._build_scenario_menu(menu.addMenu("&Scenario"))

        quiz_menu = menu.addMenu("&Quiz")
        quiz_menu.addAction(self._action("&Start a round of 10 questions", lambda: self.start_quiz(), "F6",
                                         "Test yourself on the muscles of this atlas"))

        help_menu = menu.addMenu("&Help")
        help_menu.addAction(self._action("&Keyboard shortcuts", self.show_shortcuts, "F1"))

        toolbar = self.addToolBar("View")
        toolbar.setObjectName("view-toolbar")
        toolbar.setMovable(False)
        for name in TOOLBAR_VIEWS:
            toolbar.addAction(self.view_actions[name])
            self.view_actions[name].setIconText(SHORT_VIEW_NAMES.get(name, VIEWS[name].label))
        toolbar.addAction(self.reset_view_action)
        toolbar.addSeparator()
        toolbar.addAction(self.labels_action)
        toolbar.addSeparator()
        toolbar.addAction(self.undo_action)
        toolbar.addAction(self.redo_action)
        toolbar.addSeparator()
        self.screenshot_action.setIconText("Screenshot…")
        toolbar.addAction(self.screenshot_action)
        self.copy_action.setIconText("Copy image")
        toolbar.addAction(self.copy_action)

    # -- atlases -------------------------------------------------------------------------------
    def refresh_atlas_menu(self) -> None:
        """List the installed atlases (built-in and imported), the one shown ticked."""
        self.atlas_menu.clear()
        for action in self.atlas_actions.values():
            self.removeAction(action)
        self.atlas_actions = {}
        group = QActionGroup(self)
        current = self.model.atlas.root
        for entry in list_atlases():
            text = f"{entry.name} — {entry.title}" if entry.title else entry.name
            if entry.default:
                text += " (default)"
            action = QAction(text, self, checkable=True)
            action.setChecked(_same_folder(entry.path, current))
            action.setStatusTip(f"Show the scene on the atlas in {entry.path}")
            action.triggered.connect(lambda _checked=False, name=entry.name: self.switch_atlas(name))
            group.addAction(action)
            self.atlas_menu.addAction(action)
            self.atlas_actions[entry.name] = action
        self.atlas_menu.addSeparator()
        hint = self.atlas_menu.addAction("Import BodyParts3D: dorsum atlas import FOLDER_OR_ZIP")
        hint.setEnabled(False)

    def switch_atlas(self, name: str) -> MainWindow | None:
        """Show the scene on the installed atlas ``name`` in a new window that replaces this one.

        The new window is built as at start-up (a model of the atlas, then the window); the view
        preset and the labels carry over. Returns it, or None if the user cancelled or it failed
        (this window then stays as it was).
        """
        try:
            folder = resolve_atlas(name)
        except DorsumError as exc:
            self._error("Cannot open the atlas", str(exc))
            self.refresh_atlas_menu()
            return None
        if _same_folder(folder, self.model.atlas.root):
            self.refresh_atlas_menu()
            return None  # already shown
        if not self._maybe_save():
            self.refresh_atlas_menu()
            return None
        try:
            with _busy():
                model = SceneModel(load_atlas(folder))
        except DorsumError as exc:
            self._error("Cannot open the atlas", str(exc))
            self.refresh_atlas_menu()
            return None
        successor = MainWindow(model, settings=self.renderer.settings)
        successor.setGeometry(self.geometry())
        successor.set_view(self.current_view() or DEFAULT_VIEW)
        if self.labels_shown:
            successor.set_labels_shown(True)
        self.successor = successor
        if self.isVisible():
            successor.show()
        self.undo_stack.setClean()  # asked above; closing must not ask again
        self.close()
        return successor

    # -- events --------------------------------------------------------------------------------
    def showEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().showEvent(event)
        # The view's real size is known only now: frame the preset again for it.
        if not self._framed_on_show:
            self._framed_on_show = True
            view = self.current_view()
            if view is not None and self._preset_camera == self.renderer.camera:
                # Not once closed (a switch of atlas may close the window before this runs).
                QTimer.singleShot(0, lambda: None if getattr(self.plotter, "_closed", True) else self.set_view(view))

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt API)
        # Keys reach the 3D view only through our actions: VTK's default bindings (w: wireframe,
        # 3: stereo, q/e: quit...) would change the picture behind the lecturer's back.
        if watched is self.plotter.interactor and event.type() in (event.Type.KeyPress, event.Type.KeyRelease):
            return True
        if watched is self.plotter.interactor and event.type() == event.Type.MouseMove and self.renderer.moving:
            self.plotter.iren.interactor.EnableRenderOff()  # see _paint_drag_frame
        return super().eventFilter(watched, event)

    def _on_model_changed(self, *_: object) -> None:
        self.update_status()
        self._refresh_labels()

    def _on_geometry(self, _ids: tuple[str, ...]) -> None:
        self._refresh_labels()

    def _on_highlight(self, _sid: str | None) -> None:
        self.update_status()

    def _on_clean_changed(self, _clean: bool) -> None:
        self._update_title()

    def _start_warmup(self, *_: object) -> None:
        if self._warm_observer is None or not self.plotter.interactor.isVisible():
            return
        self.plotter.render_window.RemoveObserver(self._warm_observer)
        self._warm_observer = None
        params = self.atrophy_panel.params_dict()
        warm_viewer(self.warmer, self.renderer, self.model, params["muscle"], params["segments"])

    def _warm_atrophy_range(self, *_: object) -> None:
        params = self.atrophy_panel.params_dict()
        # With an amount set the panel calibrates the new range itself, right now.
        if params["amount"] == 0 and params["fat"] == 0 and params["muscle"] in self.model.atlas.muscles:
            self.warmer.add(lambda: warm_atrophy(self.model, params["muscle"], params["segments"]))

    def _on_camera_starts(self, *_: object) -> None:
        self.renderer.set_moving(True)

    # While the camera is dragged, VTK's interactor style renders after each mouse move and the
    # widget's paint handler then renders the same frame again before showing it. The style's
    # render is switched off for the move (see eventFilter); the paint handler draws it once.
    def _paint_drag_frame(self, *_: object) -> None:
        self.plotter.iren.interactor.EnableRenderOn()
        self.plotter.interactor.update()

    def _on_camera_moved(self, *_: object) -> None:
        self.plotter.iren.interactor.EnableRenderOn()
        self.renderer.set_moving(False)  # full detail as soon as the camera stops
        if self._preset_camera is not None and self.renderer.camera != self._preset_camera:
            self._preset_camera = None
            for action in self.view_actions.values():
                action.setChecked(False)
            self.update_status()
        self._refresh_labels()

    def update_status(self) -> None:
        """Status bar: what is shown, the view and the atrophy."""
        self.status_label.setText(status_text(self.model, self.current_view()))
        for layer, action in self.layer_actions.items():
            action.setChecked(self.model.layer_shown(layer))  # ticked when some of it is drawn

    def _update_title(self) -> None:
        name = self.state_path.name if self.state_path else "untitled view"
        self.setWindowTitle(f"Dorsum — {name}{'' if self.undo_stack.isClean() else ' *'}")

    def _show_hover_name(self, name: str | None) -> None:
        self.hover_label.setText(name or "")

    # -- camera --------------------------------------------------------------------------------
    def set_view(self, name: str) -> None:
        """Camera preset ``name``, framing the visible structures."""
        self.renderer.set_view(name)
        self._preset_camera = self.renderer.camera
        self.view_actions[name].setChecked(True)
        self._refresh_labels()
        self.update_status()

    def reset_view(self) -> None:
        self.set_view(DEFAULT_VIEW)

    def current_view(self) -> str | None:
        """Name of the preset the camera shows, or None after the user turned it."""
        return self.renderer.view_name if self._preset_camera is not None else None

    def show_session_view(self, session: Session, view: str | None = None) -> None:
        """The camera and labels of a saved state (the preset ``view`` instead, if given)."""
        if view is not None or session.camera is None:
            self.set_view(view or DEFAULT_VIEW)
        else:
            self.set_camera(Camera(**session.camera.camera_fields()), session.camera.view)
        self.set_labels_shown(session.labels)

    def set_camera(self, camera: Camera, view: str | None = None) -> None:
        """Exactly this camera (e.g. from a saved state): kept as it is when the window first shows."""
        self._framed_on_show = True
        self.renderer.set_camera(camera)
        self._preset_camera = self.renderer.camera if view is not None else None
        if view is not None:
            self.renderer.view_name = view
        for name, action in self.view_actions.items():
            action.setChecked(name == view)
        self._refresh_labels()
        self.update_status()

    # -- labels and hover ------------------------------------------------------------------------
    def set_labels_shown(self, shown: bool) -> None:
        self.labels_shown = bool(shown)
        self.labels_action.setChecked(self.labels_shown)
        if not self.labels_shown:
            self.live_labels.clear()
            self.plotter.render()
        self._refresh_labels()

    def _refresh_labels(self) -> None:
        if self.labels_shown and not self._labels_timer.isActive():
            self._labels_timer.start()

    def _show_labels(self) -> None:
        if self.labels_shown and not getattr(self.plotter, "_closed", True):
            self.live_labels.show()
            self.plotter.render()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        if self.labels_shown:
            QTimer.singleShot(0, self._refresh_labels)  # the columns beside the body move with the size

    def set_hover(self, enabled: bool) -> None:
        self.picker.hover_enabled = bool(enabled)
        if not enabled:
            self.hover_label.clear()

    # -- scenarios -------------------------------------------------------------------------------
    def _build_scenario_menu(self, scenario_menu) -> None:
        from viewer.presets import builtin_presets

        scenario_menu.addAction(self._action("&Healthy", self.clear_scenario, tip="Every muscle healthy again"))
        scenario_menu.addSeparator()
        for preset in builtin_presets():
            if preset.age is None:
                scenario_menu.addAction(self._action(preset.title, lambda _c=False, n=preset.name: self.apply_scenario(n),
                                                     tip=preset.summary))
                continue
            ages = scenario_menu.addMenu(preset.title)
            for age in range(int(preset.age.low) // 10 * 10 + 10, int(preset.age.high) + 1, 10):
                ages.addAction(self._action(f"Age {age}", lambda _c=False, n=preset.name, a=age: self.apply_scenario(n, a),
                                            tip=preset.summary))

    def apply_scenario(self, name: str, age: float | None = None) -> bool:
        """Show a scenario (undoable): its wasting, what covers it peeled, and its card with sources."""
        from viewer.atrophy import apply_atrophy
        from viewer.presets import load_preset, preset_wasting

        try:
            preset = load_preset(name)
            wasting, notes = preset_wasting(preset, self.model.atlas, age)
        except DorsumError as exc:
            self._error("Cannot show the scenario", str(exc))
            return False

        def change() -> None:
            apply_atrophy(self.model, wasting)
            for layer in preset.hide:
                if layer in self.model.atlas.layer_names:
                    self.model.show_layer(layer, False)

        with _busy():
            self.undo.edit(f"Scenario: {preset.caption(age)}", change)
        self._scenario_wasting = self.model.atrophy
        self.scenario_card.show_preset(preset, age, notes)
        self.scenario_box.show()
        if preset.view is not None:
            self.set_view(preset.view)
        return True

    def clear_scenario(self) -> None:
        from viewer.atrophy import apply_atrophy

        with _busy():
            self.undo.edit("Healthy", lambda: apply_atrophy(self.model, None))

    def _on_scenario_atrophy(self, wasting: object) -> None:
        if self.scenario_card.preset is not None and wasting != self._scenario_wasting:
            self.scenario_card.clear()  # the wasting was changed by hand, or undone: no longer the scenario
            self.scenario_box.hide()

    # -- comparison ------------------------------------------------------------------------------
    def open_comparison(self) -> None:
        """Open (or bring forward) the side-by-side window: healthy beside the scene as it is now."""
        from viewer.app.compare import CompareWindow

        if self.compare_window is None or not self.compare_window.isVisible():
            self.compare_window = CompareWindow(self.model, self.renderer.camera, settings=self.renderer.settings,
                                                parent=self)
        self.compare_window.show()
        self.compare_window.raise_()

    # -- quiz ----------------------------------------------------------------------------------
    def start_quiz(self, count: int = 10, seed: int | None = None, kinds: tuple[str, ...] = ()) -> None:
        """Ask a round of questions made from this atlas in the Quiz tab (same seed, same round)."""
        from viewer.quiz import KINDS, make_round

        self.quiz_panel.start(make_round(self.model.atlas, count, seed=seed, kinds=kinds or KINDS))
        self.tabs.setCurrentWidget(self.quiz_panel)

    # -- sessions ------------------------------------------------------------------------------
    def session(self) -> Session:
        """Everything the window shows, as a session."""
        return capture_session(self.model, self.renderer.camera, self.current_view(), self.labels_shown)

    def load_state(self, session: Session, path: Path | None = None) -> None:
        """Show ``session``: its visibility, opacities, atrophy, camera and labels."""
        with _busy():
            apply_session(session, self.model)
        self.show_session_view(session)
        self.undo.reset()
        self.state_path = path
        self._update_title()

    def open_state(self, path: Path) -> bool:
        try:
            self.load_state(load_session(path), path)
        except DorsumError as exc:
            self._error("Cannot open the view state", str(exc))
            return False
        self.statusBar().showMessage(f"Opened {path}", 5000)
        return True

    def open_state_dialog(self) -> None:
        if not self._maybe_save():
            return
        name, _ = QFileDialog.getOpenFileName(self, "Open view state", str(self._folder()), "Dorsum view (*.toml)")
        if name:
            self.open_state(Path(name))

    def save_state(self, ask: bool = False) -> bool:
        """Save the view to its file (asking for a name the first time or when ``ask``)."""
        path = self.state_path
        if path is None or ask:
            suggested = str(path or self._folder() / "view.toml")
            name, _ = QFileDialog.getSaveFileName(self, "Save view state", suggested, "Dorsum view (*.toml)")
            if not name:
                return False
            path = Path(name if name.lower().endswith(".toml") else name + ".toml")
        return self.save_state_to(path)

    def save_state_to(self, path: Path) -> bool:
        # The file dialog asked before replacing a file; saving the open file again replaces it.
        try:
            save_session(path, self.session(), overwrite=True)
        except DorsumError as exc:
            self._error("Cannot save the view state", str(exc))
            return False
        self.state_path = path
        self.undo_stack.setClean()
        self._update_title()
        self.statusBar().showMessage(f"Saved {path}", 5000)
        return True

    # -- pictures ------------------------------------------------------------------------------
    def render_pixels(self, options: ExportOptions) -> np.ndarray:
        """The picture the export writes: the window's camera and scene at ``options.size``."""
        with _busy():
            return export_pixels(self.model, self.renderer.camera, options, self.renderer.settings)

    def screenshot_dialog(self) -> None:
        dialog = ExportDialog(tuple(self.plotter.window_size), self.labels_shown, self._folder() / "dorsum.png", self)
        while dialog.exec():
            if self.save_screenshot(dialog.path(), dialog.options(), confirm=True):
                return

    def save_screenshot(self, path: Path, options: ExportOptions, confirm: bool = False) -> bool:
        """Write the picture to ``path`` (PNG); an existing file is replaced only after asking."""
        overwrite = False
        if path.exists() and confirm:
            answer = QMessageBox.question(self, "Replace file?", f"{path} exists. Replace it?")
            if answer != QMessageBox.StandardButton.Yes:
                return False
            overwrite = True
        try:
            pixels = self.render_pixels(options)
            parameters = {"command": "view", **dataclasses.asdict(options),
                          "camera": self.renderer.camera.as_dict(), "view": self.current_view()}
            save_png(path, pixels, parameters=parameters, overwrite=overwrite, credits=credit_lines(self.model.atlas))
        except DorsumError as exc:
            self._error("Cannot save the screenshot", str(exc))
            return False
        self.statusBar().showMessage(f"Saved {path} ({options.size[0]}×{options.size[1]})", 5000)
        return True

    def copy_image(self) -> None:
        """Put a picture of the view (at the window's size, twice for sharp slides) on the clipboard."""
        width, height = self.plotter.window_size
        pixels = np.ascontiguousarray(self.render_pixels(ExportOptions(size=(2 * width, 2 * height),
                                                                       labels=self.labels_shown)))
        image = QImage(pixels.data, pixels.shape[1], pixels.shape[0], 3 * pixels.shape[1],
                       QImage.Format.Format_RGB888).copy()
        QGuiApplication.clipboard().setImage(image)
        self.statusBar().showMessage("Copied the picture; paste it into your slides", 5000)

    # -- closing -------------------------------------------------------------------------------
    def _maybe_save(self) -> bool:
        """Ask to save unsaved changes; False if the user cancels."""
        if self.undo_stack.isClean():
            return True
        answer = QMessageBox.question(
            self, "Save the view?", "The view has changes that are not saved. Save them first?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Save:
            return self.save_state()
        return answer == QMessageBox.StandardButton.Discard

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        if not self._maybe_save():
            event.ignore()
            return
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Disconnect from the model and release the render window."""
        if getattr(self.plotter, "_closed", True):
            return
        self.render_scheduler.stop()
        if self.compare_window is not None:
            self.compare_window.close()
        self._labels_timer.stop()
        self.live_labels.close()
        self.undo_stack.cleanChanged.disconnect(self._on_clean_changed)
        self.picker.close()
        self.renderer.close()
        for signal, slot in ((self.model.events.visibility, self._on_model_changed),
                             (self.model.events.opacity, self._on_model_changed),
                             (self.model.events.atrophy, self._on_model_changed),
                             (self.model.events.atrophy, self._on_scenario_atrophy),
                             (self.model.events.geometry, self._on_geometry),
                             (self.model.events.highlight, self._on_highlight)):
            signal.disconnect(slot)
        self.layers_panel.disconnect_model()
        self.atrophy_panel.disconnect_model()
        self.info_card.disconnect_model()
        self.plotter.close()

    # -- helpers -------------------------------------------------------------------------------
    def _folder(self) -> Path:
        return self.state_path.parent if self.state_path else Path.home()

    def _error(self, title: str, message: str) -> None:
        self.statusBar().showMessage(message, 10000)
        QMessageBox.warning(self, title, message)

    def show_shortcuts(self) -> None:
        rows = [(a.text().replace("&", ""), a.shortcut().toString()) for a in self.actions() if not a.shortcut().isEmpty()]
        text = "".join(f"<tr><td>{name}</td><td><b>{key}</b></td></tr>" for name, key in rows)
        QMessageBox.information(self, "Keyboard shortcuts",
                                f"<table cellspacing=4>{text}</table><p>Drag to turn, right-drag or wheel to "
                                "zoom, shift-drag to move. Click a structure to select it.</p>")


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def status_text(model: SceneModel, view: str | None) -> str:
    """One line: what is shown, from where, and the atrophy."""
    visible = model.visible_ids()
    layers = [name for name in model.atlas.layer_names if any(model.is_visible(s) for s in model.resolve(name))]
    parts = [f"Showing {len(visible)} of {len(model.atlas.structure_ids)} structures"
             f" ({', '.join(layers) if layers else 'nothing'})",
             f"view: {VIEWS[view].label.lower() if view else 'turned by hand'}"]
    from viewer.atrophy import wasting_entries

    for atrophy in wasting_entries(model.atrophy):
        parts.append(f"{atrophy.muscle.replace('_', ' ')} atrophy {atrophy.amount:.0f}% at {atrophy.segments}, "
                     f"{atrophy.side}, fat {atrophy.fat:.0f}%")
    if model.highlight is not None:
        parts.append(f"selected: {structure_title(model.atlas.structure(model.highlight))}")
    return " · ".join(parts)


class _busy:
    """Wait cursor while something takes a moment."""

    def __enter__(self) -> None:
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)

    def __exit__(self, *_: object) -> None:
        QApplication.restoreOverrideCursor()
