"""Healthy and wasted side by side: a window of two 3D views that share one camera.

The right view shows the scene as the main window has it (a scenario, an atrophy); the left shows the
same layers and opacities with healthy muscles. Turning or zooming either view moves both.
"""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget
from pyvistaqt import QtInteractor

from viewer.model import SceneModel
from viewer.render import Camera, RenderSettings, SceneRenderer
from viewer.session import apply_session, capture_session


class CompareWindow(QWidget):
    """Two views of one atlas, healthy (left) and as shown in ``model`` (right), with linked cameras."""

    def __init__(self, model: SceneModel, camera: Camera | None = None, *, title: str = "",
                 settings: RenderSettings = RenderSettings(), parent: QWidget | None = None):
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle("Dorsum: healthy and wasted side by side")
        self.model = model
        self.healthy = SceneModel(model.atlas)
        self._plotters = [QtInteractor(self, auto_update=False, multi_samples=0) for _ in range(2)]
        for plotter in self._plotters:
            plotter.window_size = (680, 700)  # a size before the first show, for the first framing
        self.renderers = [SceneRenderer(self._plotters[0], self.healthy, settings),
                          SceneRenderer(self._plotters[1], model, settings)]
        shared = self._plotters[0].renderer.GetActiveCamera()
        self._plotters[1].renderer.SetActiveCamera(shared)  # one camera: both views move together
        for plotter in self._plotters:
            plotter.iren.interactor.AddObserver("InteractionEvent", lambda *_: self.render())
        self.captions = [QLabel("Healthy"), QLabel(title or self._scenario_text())]
        layout = QHBoxLayout(self)
        for plotter, caption in zip(self._plotters, self.captions):
            column = QVBoxLayout()
            caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
            caption.setStyleSheet("font-weight: bold")
            column.addWidget(caption)
            column.addWidget(plotter.interactor, 1)
            layout.addLayout(column, 1)
        self.follow()
        for signal in (model.events.visibility, model.events.opacity, model.events.atrophy):
            signal.connect(self.follow)
        if camera is not None:
            self.renderers[1].set_camera(camera)
        else:
            self.renderers[1].set_view("posterior")
        self.resize(1400, 760)

    def _scenario_text(self) -> str:
        atrophy = self.model.atrophy
        if atrophy is None:
            return "As shown (healthy)"
        entries = atrophy if isinstance(atrophy, tuple) else (atrophy,)
        return "; ".join(f"{a.muscle.replace('_', ' ').capitalize()} -{a.amount:g}% {a.segments} {a.side}"
                         + (f", fat {a.fat:g}%" if a.fat else "") for a in entries)

    def follow(self, *_: object) -> None:
        """Show the main scene's layers and opacities on the healthy side (never its atrophy)."""
        session = dataclasses.replace(capture_session(self.model), atrophy=None, highlight=None)
        apply_session(session, self.healthy)
        self.captions[1].setText(self._scenario_text())
        self.render()

    def render(self) -> None:
        for plotter in self._plotters:
            if not getattr(plotter, "_closed", True):
                plotter.render()

    def pixels(self, side: int) -> object:
        """What view ``side`` (0 healthy, 1 wasted) shows, (h, w, 3) uint8 (for tests and screenshots)."""
        self._plotters[side].render()
        return self._plotters[side].screenshot(return_img=True)

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        for signal in (self.model.events.visibility, self.model.events.opacity, self.model.events.atrophy):
            signal.disconnect(self.follow)
        for renderer, plotter in zip(self.renderers, self._plotters):
            renderer.close()
            plotter.close()
        super().closeEvent(event)
