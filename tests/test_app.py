"""The desktop application driven through its real widgets (pytest-qt, under Xvfb via pytest-xvfb)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QMessageBox

from viewer.app.export import ExportOptions
from viewer.app.export_dialog import ExportDialog
from viewer.app.window import MainWindow
from viewer.model import SceneModel
from viewer.output import read_png_parameters
from viewer.render import points_of
from viewer.session import load_session

ROOT = Path(__file__).resolve().parent.parent
RED, GREEN, BLUE = (200, 30, 30), (30, 200, 30), (30, 30, 200)


def colour_fraction(pixels: np.ndarray, colour: tuple[int, int, int]) -> float:
    """Fraction of pixels whose hue is that of a fixture layer colour (shading changes brightness only)."""
    rgb = pixels[..., :3].astype(float)
    total = rgb.sum(axis=2, keepdims=True)
    chroma = rgb / np.maximum(total, 1.0)
    target = np.asarray(colour, dtype=float) / sum(colour)
    return float(((np.abs(chroma - target).sum(axis=2) < 0.12) & (total[..., 0] > 60)).mean())


def grey_text_pixels(pixels: np.ndarray) -> int:
    """Pixels of dark grey text and leader lines (colourless, not white); the fixture body is coloured."""
    rgb = pixels[..., :3].astype(int)
    return int(((rgb.max(axis=2) - rgb.min(axis=2) < 25) & (rgb.sum(axis=2) < 450)).sum())


def view_pixels(window: MainWindow) -> np.ndarray:
    """What the 3D view shows right now, (h, w, 3) uint8."""
    QApplication.processEvents()
    window.render_scheduler.render_now()
    return np.asarray(window.plotter.screenshot(return_img=True))


def make_window(qtbot, atlas) -> MainWindow:
    window = MainWindow(SceneModel(atlas))
    window.resize(900, 600)
    qtbot.addWidget(window, before_close_func=lambda w: w.undo_stack.setClean())
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    qtbot.waitActive(window)
    qtbot.wait(50)
    return window


@pytest.fixture
def window(qtbot, fixture_atlas) -> MainWindow:
    return make_window(qtbot, fixture_atlas)


def click_view(qtbot, window: MainWindow, x: float, y: float) -> None:
    """Click the 3D view at widget pixel (x, y) (y down)."""
    qtbot.mouseClick(window.plotter.interactor, Qt.MouseButton.LeftButton, pos=QPoint(round(x), round(y)))
    QApplication.processEvents()


def test_layer_checkbox_hides_actor_and_pixels(window):
    before = view_pixels(window)
    assert colour_fraction(before, RED) > 0.05
    item = window.layers_panel.layer_items["superficial"]
    item.setCheckState(0, Qt.CheckState.Unchecked)
    assert not window.model.layer_visible("superficial")
    assert not window.renderer.actor("sheet").visibility
    after = view_pixels(window)
    assert colour_fraction(after, RED) == 0.0
    assert colour_fraction(after, GREEN) > 0.05  # the layer below shows through
    assert "Showing 4 of 5" in window.status_label.text()


def test_structure_row_and_tri_state(window):
    panel = window.layers_panel
    panel.structure_items["mf_left"].setCheckState(0, Qt.CheckState.Unchecked)
    assert not window.model.is_visible("mf_left") and window.model.is_visible("mf_right")
    assert panel.layer_items["deep"].checkState(0) == Qt.CheckState.PartiallyChecked
    panel.layer_items["deep"].setCheckState(0, Qt.CheckState.Checked)  # a click on a partial layer shows it whole
    assert window.model.is_visible("mf_left")
    assert panel.layer_items["deep"].checkState(0) == Qt.CheckState.Checked


def test_keyboard_toggles_layers_and_undo_redo(qtbot, window):
    window.plotter.interactor.setFocus()
    qtbot.keyClick(window.plotter.interactor, Qt.Key.Key_1)
    assert not window.model.layer_visible("superficial")
    assert window.layers_panel.layer_items["superficial"].checkState(0) == Qt.CheckState.Unchecked
    qtbot.keyClick(window.plotter.interactor, Qt.Key.Key_4)
    assert not window.model.layer_visible("skeleton")
    window.undo_action.trigger()
    assert window.model.layer_visible("skeleton") and not window.model.layer_visible("superficial")
    window.undo_action.trigger()
    assert window.model.layer_visible("superficial")
    window.redo_action.trigger()
    assert not window.model.layer_visible("superficial")
    # VTK's own keys do nothing: 'w' would switch every surface to wireframe.
    qtbot.keyClick(window.plotter.interactor, Qt.Key.Key_W)
    assert window.renderer.actor("column").prop.style == "Surface"


def test_closing_with_unsaved_changes_asks(qtbot, window, monkeypatch):
    window.layers_panel.toggle_layer("deep")
    assert window.windowTitle().endswith("*")
    asked = []

    def answer(choice):
        def question(*args, **kwargs):
            asked.append(args[1])
            return choice
        return question

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Cancel))
    window.close()
    assert window.isVisible() and asked == ["Save the view?"]
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Discard))
    window.close()
    assert not window.isVisible()


def test_key_0_shows_all(qtbot, window):
    window.layers_panel.show_only_items([window.layers_panel.layer_items["deep"]])
    qtbot.keyClick(window, Qt.Key.Key_0)
    assert len(window.model.visible_ids()) == 5


def test_opacity_slider_and_show_only(window):
    slider = window.layers_panel.opacity_sliders["superficial"]
    slider.setValue(30)
    assert window.model.opacity("sheet") == pytest.approx(0.3)
    assert window.renderer.actor("sheet").prop.opacity == pytest.approx(0.3)
    slider.setValue(20)
    window.undo_action.trigger()  # one drag, one undo step
    assert window.model.opacity("sheet") == pytest.approx(1.0)
    panel = window.layers_panel
    panel.tree.setCurrentItem(panel.structure_items["column"])
    panel.show_only_button.click()
    assert window.model.visible_ids() == ("column",)
    pixels = view_pixels(window)
    assert colour_fraction(pixels, RED) == 0.0 and colour_fraction(pixels, GREEN) > 0.05
    panel.show_all_button.click()
    assert len(window.model.visible_ids()) == 5


def test_atrophy_slider_changes_multifidus_and_readout(qtbot, window):
    panel = window.atrophy_panel
    assert panel.isEnabled()
    healthy = window.model.vertices("mf_left").copy()
    before = panel.readout_text("L5-S1", "left")
    panel.amount.setValue(20)
    qtbot.waitUntil(lambda: window.model.atrophy is not None and window.model.atrophy.amount == 20, timeout=20000)
    qtbot.waitUntil(lambda: panel.readout_text("L5-S1", "left") != before, timeout=20000)
    moved = np.linalg.norm(window.model.vertices("mf_left") - healthy, axis=1)
    assert moved.max() > 0.5  # mm
    # The polydata drawn is the model's geometry.
    assert np.allclose(points_of(window.renderer.polydata("mf_left")), window.model.vertices("mf_left"))
    from viewer.measure import measure_muscle

    measured = measure_muscle(window.model, "multifidus", panel.discs)["levels"]
    for disc in panel.discs:
        for side in ("left", "right"):
            change = measured[disc][side]["change_percent"]
            assert f"({change:+.0f}%)".replace("-", "−") in panel.readout_text(disc, side)
    assert "−20%" in panel.readout_text("L5-S1", "left")
    assert "20%" in window.status_label.text()
    panel.reset_button.click()
    qtbot.waitUntil(lambda: window.model.atrophy is None, timeout=5000)
    assert np.array_equal(window.model.vertices("mf_left"), healthy)
    assert panel.amount.value() == 0


def test_unreachable_atrophy_is_explained_not_applied(qtbot, window):
    panel = window.atrophy_panel
    panel.amount.setValue(85)
    qtbot.waitUntil(lambda: "at most" in panel.note.text(), timeout=20000)
    qtbot.waitUntil(lambda: panel.amount.value() == 0, timeout=5000)  # back to what the model shows
    assert window.model.atrophy is None


def test_slider_drag_is_coalesced(qtbot, window):
    panel = window.atrophy_panel
    applied = []
    window.model.events.atrophy.connect(applied.append)
    renders = window.render_scheduler.renders
    for value in range(1, 21):  # a fast drag: many value changes before the event loop runs
        panel.amount.setValue(value)
    qtbot.waitUntil(lambda: window.model.atrophy is not None and window.model.atrophy.amount == 20, timeout=20000)
    qtbot.wait(50)
    assert len(applied) == 1
    assert window.render_scheduler.renders - renders <= 2


def test_click_selects_structure_and_empty_space_clears(qtbot, window):
    # Seen from behind, the superficial sheet covers the middle of the view.
    sheet_centre = window.model.vertices("sheet").mean(axis=0)
    (x, y), = window.renderer.world_to_pixels(sheet_centre[None, :])
    click_view(qtbot, window, x, y)
    assert window.model.highlight == "sheet"
    assert "Sheet" in window.info_card.label.text()
    assert "selected: Sheet" in window.status_label.text()
    click_view(qtbot, window, 5, 5)
    assert window.model.highlight is None
    # With the upper layers hidden, the same place shows the multifidus next to the midline.
    window.layers_panel.show_only_items([window.layers_panel.layer_items["deep"]])
    right = window.model.vertices("mf_right").mean(axis=0)
    (x, y), = window.renderer.world_to_pixels(right[None, :])
    click_view(qtbot, window, x, y)
    assert window.model.highlight == "mf_right"


def test_hover_names_the_structure_under_the_pointer(qtbot, window):
    window.hover_action.trigger()
    centre = window.model.vertices("mf_left").mean(axis=0)
    window.layers_panel.show_only_items([window.layers_panel.layer_items["deep"]])
    (x, y), = window.renderer.world_to_pixels(centre[None, :])
    qtbot.mouseMove(window.plotter.interactor, QPoint(round(x), round(y)))
    qtbot.waitUntil(lambda: window.hover_label.text() == "Mf Left (left)", timeout=3000)
    qtbot.mouseMove(window.plotter.interactor, QPoint(3, 3))
    qtbot.waitUntil(lambda: window.hover_label.text() == "", timeout=3000)


def test_drag_turns_camera_without_selecting(qtbot, window):
    widget = window.plotter.interactor
    before = window.renderer.camera
    qtbot.mousePress(widget, Qt.MouseButton.LeftButton, pos=QPoint(200, 200))
    qtbot.mouseMove(widget, QPoint(260, 230))
    qtbot.mouseRelease(widget, Qt.MouseButton.LeftButton, pos=QPoint(260, 230))
    QApplication.processEvents()
    assert window.model.highlight is None
    assert window.renderer.camera != before
    assert "turned by hand" in window.status_label.text()


def test_view_presets_and_reset(qtbot, window):
    window.view_actions["left"].trigger()
    camera = window.renderer.camera
    assert camera.position[0] < camera.focal_point[0]  # looking from the patient's left (-x)
    qtbot.keyClick(window, Qt.Key.Key_A)
    camera = window.renderer.camera
    assert camera.position[1] > camera.focal_point[1]  # anterior: from +y
    window.reset_view_action.trigger()
    assert window.current_view() == "posterior"


def test_state_save_and_reopen_round_trips(qtbot, window, fixture_atlas, tmp_path):
    window.layers_panel.layer_items["superficial"].setCheckState(0, Qt.CheckState.Unchecked)
    window.layers_panel.structure_items["mf_left"].setCheckState(0, Qt.CheckState.Unchecked)
    window.layers_panel.opacity_sliders["intermediate"].setValue(40)
    window.atrophy_panel.amount.setValue(15)
    qtbot.waitUntil(lambda: window.model.atrophy is not None, timeout=20000)
    window.view_actions["posterolateral_left"].trigger()
    window.model.set_highlight("column")
    path = tmp_path / "lecture.toml"
    assert window.save_state_to(path)
    assert window.undo_stack.isClean() and "lecture.toml" in window.windowTitle()
    saved = window.session()
    assert load_session(path) == saved

    other = make_window(qtbot, fixture_atlas)
    assert other.open_state(path)
    reopened = other.session()
    assert reopened.without_camera() == saved.without_camera()
    assert np.allclose(reopened.camera.position, saved.camera.position, atol=1e-9)
    assert np.allclose(reopened.camera.focal_point, saved.camera.focal_point, atol=1e-9)
    assert np.allclose(reopened.camera.up, saved.camera.up, atol=1e-9)
    assert reopened.camera.view == "posterolateral_left"
    assert np.array_equal(other.model.vertices("mf_right"), window.model.vertices("mf_right"))
    assert other.atrophy_panel.amount.value() == 15
    assert other.layers_panel.opacity_sliders["intermediate"].value() == 40


def test_screenshot_dialog_writes_the_file(qtbot, window, tmp_path):
    out = tmp_path / "slide.png"

    def fill_in() -> None:
        dialog = next(w for w in QApplication.topLevelWidgets() if isinstance(w, ExportDialog) and w.isVisible())
        dialog.path_edit.setText(str(out))
        dialog.size_combo.setCurrentIndex(dialog.size_combo.findText("Custom…"))
        dialog.width_spin.setValue(320)
        dialog.height_spin.setValue(200)
        dialog.transparent_check.setChecked(True)
        dialog.accept()

    QTimer.singleShot(200, fill_in)
    window.screenshot_action.trigger()
    from PIL import Image

    with Image.open(out) as image:
        assert image.size == (320, 200)
        assert image.mode == "RGBA"
        pixels = np.asarray(image)
    assert pixels[0, 0, 3] == 0  # transparent corner
    assert colour_fraction(pixels, RED) > 0.05
    assert read_png_parameters(out)["size"] == [320, 200]


def test_screenshot_never_replaces_without_asking(qtbot, window, tmp_path, monkeypatch):
    out = tmp_path / "keep.png"
    out.write_bytes(b"precious")
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.No)
    assert not window.save_screenshot(out, ExportOptions(size=(64, 48)), confirm=True)
    assert out.read_bytes() == b"precious"


def test_export_with_labels_and_legend_matches_shot_with_state(window, fixture_atlas_dir, tmp_path):
    from viewer.cli import main
    from viewer.session import save_session

    options = ExportOptions(size=(480, 320), labels=True, legend=True)
    plain = window.render_pixels(ExportOptions(size=(480, 320)))
    labelled = window.render_pixels(options)
    assert plain.shape == labelled.shape == (320, 480, 3)
    assert grey_text_pixels(labelled) > grey_text_pixels(plain) + 100
    state = save_session(tmp_path / "view.toml", window.session())
    out = tmp_path / "shot.png"
    assert main(["shot", "--atlas", str(fixture_atlas_dir), "--state", str(state), "--labels", "--legend",
                 "--size", "480x320", "--out", str(out)]) == 0
    from PIL import Image

    shot = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert np.abs(shot - labelled.astype(int)).max() <= 2


def test_labels_toggle_adds_text_to_view(qtbot, window):
    plain = view_pixels(window)
    qtbot.keyClick(window, Qt.Key.Key_N)
    assert window.labels_shown
    labelled = view_pixels(window)
    assert grey_text_pixels(labelled) > grey_text_pixels(plain) + 100
    window.labels_action.trigger()
    assert not window.labels_shown


def test_copy_image_to_clipboard(window):
    window.copy_action.trigger()
    image = QGuiApplication.clipboard().image()
    width, height = window.plotter.window_size
    assert (image.width(), image.height()) == (2 * width, 2 * height)


def test_real_atlas_pick_and_atrophy(qtbot, real_atlas):
    window = make_window(qtbot, real_atlas)
    window.layers_panel.show_only_items([window.layers_panel.layer_items["deep"],
                                         window.layers_panel.layer_items["skeleton"]])
    window.set_view("posterior")
    # A point on the back of the left multifidus at the L4-L5 disc level.
    vertices = window.model.vertices("multifidus_left")
    from viewer.measure import vertex_levels

    near_disc = np.abs(vertex_levels(real_atlas, "multifidus_left") - 22.5) < 0.3
    back = vertices[near_disc][np.argmin(vertices[near_disc][:, 1])]
    (x, y), = window.renderer.world_to_pixels(back[None, :])
    click_view(qtbot, window, x, y)
    assert window.model.highlight == "multifidus_left"
    assert "Innervation" in window.info_card.label.text()
    panel = window.atrophy_panel
    panel.range_from.setCurrentText("L4")
    panel.range_to.setCurrentText("S1")
    panel.amount.setValue(30)
    qtbot.waitUntil(lambda: window.model.atrophy is not None and window.model.atrophy.amount == 30, timeout=60000)
    qtbot.waitUntil(lambda: "−30%" in panel.readout_text("L4-L5", "left"), timeout=60000)
    assert "−" not in panel.readout_text("L1-L2", "left")


def test_view_without_display_is_one_line_exit_2(fixture_atlas_dir):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    result = subprocess.run([sys.executable, "-m", "viewer.cli", "view", "--atlas", str(fixture_atlas_dir)],
                            capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "no display found" in result.stderr and "dorsum shot" in result.stderr


def test_cli_without_window_imports_no_qt():
    code = ("import sys, viewer, viewer.cli; viewer.cli.build_parser(); import viewer.session; "
            "print(sorted(m for m in sys.modules if m.startswith(('PySide6', 'pyvistaqt'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.stdout.strip() == "[]", result.stderr


def test_the_viewer_window_loads_no_scipy_until_labels_are_asked_for():
    # scipy.ndimage (label anchors) costs about 0.4 s of the viewer's start; the first frame needs none.
    code = ("import sys; import viewer.app.window; "
            "print(sorted(m for m in ('scipy', 'trimesh') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.stdout.strip() == "[]", result.stderr


def test_view_on_an_unreachable_display_is_one_line_exit_2(fixture_atlas_dir):
    # DISPLAY names an X server that is not there (an SSH session without -X, a stale variable).
    env = {**os.environ, "DISPLAY": ":987", "QT_QPA_PLATFORM": "xcb"}
    env.pop("WAYLAND_DISPLAY", None)
    result = subprocess.run([sys.executable, "-m", "viewer.cli", "view", "--atlas", str(fixture_atlas_dir)],
                            capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "cannot reach the X display ':987'" in result.stderr
    assert "ssh -X" in result.stderr and "dorsum shot" in result.stderr


def test_layer_keys_and_menu_after_show_only(qtbot, window):
    """After "Show only", keys 1-4 and the Layers menu show and hide what they name, ticks follow."""
    panel = window.layers_panel
    panel.show_only_items([panel.structure_items["mf_left"]])
    assert window.model.visible_ids() == ("mf_left",)

    def state(layer: str) -> tuple[bool, bool, bool]:
        """(drawn, menu ticked, tree row checked or partly checked) of a layer."""
        drawn = any(window.renderer.actor(sid).visibility for sid in window.model.resolve(layer))
        ticked = window.layer_actions[layer].isChecked()
        checked = panel.layer_items[layer].checkState(0) != Qt.CheckState.Unchecked
        return drawn, ticked, checked

    assert state("superficial") == (False, False, False)
    assert state("deep") == (True, True, True)
    entries = window.undo_stack.count()
    window.plotter.interactor.setFocus()
    qtbot.keyClick(window.plotter.interactor, Qt.Key.Key_1)  # the superficial layer comes back
    assert state("superficial") == (True, True, True)
    assert colour_fraction(view_pixels(window), RED) > 0.05
    qtbot.keyClick(window.plotter.interactor, Qt.Key.Key_1)
    assert state("superficial") == (False, False, False)
    assert colour_fraction(view_pixels(window), RED) == 0.0
    window.layer_actions["intermediate"].trigger()  # Layers > Show intermediate
    assert state("intermediate") == (True, True, True)
    assert colour_fraction(view_pixels(window), GREEN) > 0.01
    qtbot.keyClick(window.plotter.interactor, Qt.Key.Key_3)  # deep (only the left multifidus) hides
    assert state("deep") == (False, False, False)
    qtbot.keyClick(window.plotter.interactor, Qt.Key.Key_3)  # and comes back as it was
    assert state("deep") == (True, True, True)
    assert window.model.is_visible("mf_left") and not window.model.is_visible("mf_right")
    assert window.undo_stack.count() == entries + 5  # one entry per key or menu press, none empty
    for layer in window.model.atlas.layer_names:
        assert state(layer)[0] == state(layer)[1] == state(layer)[2]
    window.undo_action.trigger()
    assert state("deep") == (False, False, False) and window.layer_actions["deep"].isChecked() is False


LAYER_HUES = {"Sheet": RED, "Column": GREEN, "Mf Left": BLUE, "Mf Right": BLUE}


def labels_on(qtbot, window: MainWindow) -> list:
    """Turn the live labels on and return what they placed (text, anchor x, y in view pixels)."""
    window.set_labels_shown(True)
    qtbot.waitUntil(lambda: bool(window.live_labels.layout.placed), timeout=30000)
    return [(label.text, *label.anchor) for label in window.live_labels.layout.placed]


def hue_at(pixels: np.ndarray, x: float, y: float) -> tuple[int, int, int] | None:
    """The fixture layer colour at view pixel (x, y), or None."""
    spot = pixels[int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2]
    for colour in (RED, GREEN, BLUE):
        if colour_fraction(spot, colour) == 1.0:
            return colour
    return None


def hue_around(pixels: np.ndarray, x: float, y: float, radius: int = 7) -> tuple[int, int, int] | None:
    """The fixture layer colour that most of a ring around (x, y) shows (the anchor dot and leader line
    of a saved picture cover the point itself), or None if no colour has most of it."""
    angles = np.linspace(0.0, 2.0 * np.pi, 32, endpoint=False)
    ring = [hue_at(pixels, x + radius * np.cos(a), y + radius * np.sin(a)) for a in angles]
    best = max((RED, GREEN, BLUE), key=ring.count)
    return best if ring.count(best) >= 0.6 * len(ring) else None


@pytest.mark.parametrize("setting", ["all shown", "superficial hidden", "superficial see-through"])
def test_live_labels_name_only_what_is_seen_where_it_is_seen(qtbot, window, setting):
    if setting == "superficial hidden":
        window.layers_panel.toggle_layer("superficial")
    elif setting == "superficial see-through":
        window.layers_panel.opacity_sliders["superficial"].setValue(30)
    window.set_view("posterior")
    placed = labels_on(qtbot, window)
    window.set_labels_shown(False)
    pixels = view_pixels(window)  # the same camera, without the labels drawn over it
    assert placed
    for text, x, y in placed:
        if setting == "superficial see-through" and text != "Sheet":
            # Seen through the 30% sheet: the colour there is mixed; the structure behind is the one named.
            continue
        assert hue_at(pixels, x, y) == LAYER_HUES[text], f"{text} points at something else"
    texts = {text for text, _, _ in placed}
    if setting == "all shown":
        assert texts == {"Sheet"}  # the sheet covers everything else from behind
    elif setting == "superficial hidden":
        assert "Sheet" not in texts and "Column" in texts
    else:
        assert "Sheet" not in texts  # less than half opaque: the labels go to what is seen through it


def test_live_and_saved_labels_come_from_one_engine(qtbot, window, monkeypatch):
    import viewer.figures.figure as figure_module
    import viewer.figures.labels as labels_module

    window.layers_panel.toggle_layer("superficial")
    window.set_view("posterolateral_left")
    live = {text for text, _, _ in labels_on(qtbot, window)}
    calls = []
    engine = labels_module.place_visible_labels

    def spy(*args, **kwargs):
        calls.append(engine(*args, **kwargs))
        return calls[-1]

    monkeypatch.setattr(figure_module, "place_visible_labels", spy)
    width, height = window.plotter.window_size
    saved = window.render_pixels(ExportOptions(size=(width, height), labels=True))
    assert len(calls) == 1 and saved.shape == (height, width, 3)
    layout, hidden = calls[0]
    assert {label.text for label in layout.placed} == live
    for label in layout.placed:  # anchored on the named structure's own pixels in the saved picture too
        assert hue_around(saved, *label.anchor) == LAYER_HUES[label.text]


def test_reopened_state_has_the_saved_framing_and_labels(qtbot, window, fixture_atlas_dir, tmp_path):
    from viewer.app.main import open_window
    from viewer.cli import build_parser
    from viewer.session import save_session, scene_from_args

    window.set_view("posterior")
    window.layers_panel.toggle_layer("superficial")  # framing kept from before: the view is still "posterior"
    placed = labels_on(qtbot, window)
    saved = window.session()
    assert saved.labels and saved.camera.view == "posterior"
    path = save_session(tmp_path / "lecture.toml", saved)

    args = build_parser().parse_args(["view", "--atlas", str(fixture_atlas_dir), "--state", str(path)])
    model, options, session = scene_from_args(args)
    other = open_window(model, view=options.view, session=session, state_path=path)  # `dorsum view --state`
    other.resize(window.size())
    qtbot.addWidget(other, before_close_func=lambda w: w.undo_stack.setClean())
    other.show()
    qtbot.waitExposed(other)
    qtbot.wait(200)
    QApplication.processEvents()
    camera = other.renderer.camera
    for field in ("position", "focal_point", "up"):
        assert np.allclose(getattr(camera, field), getattr(saved.camera, field), atol=1e-6), field
    assert other.labels_shown and other.labels_action.isChecked()
    qtbot.waitUntil(lambda: bool(other.live_labels.layout.placed), timeout=30000)
    reopened = [(label.text, *label.anchor) for label in other.live_labels.layout.placed]
    assert [text for text, _, _ in reopened] == [text for text, _, _ in placed]
    assert np.allclose([xy for _, *xy in reopened], [xy for _, *xy in placed], atol=1.0)


def test_an_exported_picture_outlines_the_highlighted_structure(window, monkeypatch):
    # The viewer runs on a display, so its exports render through the X server as Qt does (the test
    # suite's default of EGL, mixed with Qt's GLX, loses wide lines in one process).
    monkeypatch.delenv("VTK_DEFAULT_OPENGL_WINDOW", raising=False)
    window.model.set_highlight("sheet")
    pixels = window.render_pixels(ExportOptions(size=(480, 320))).astype(int)
    outline = (np.abs(pixels[..., :3] - np.array([30, 140, 255])).max(axis=2) < 40).sum()
    assert outline > 100, outline
