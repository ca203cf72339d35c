"""The viewer's Atlas menu (switching between installed atlases) and the layers tree of a muscle in parts."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from viewer.app.export import ExportOptions
from viewer.app.window import MainWindow
from viewer.atlas import load_atlas
from viewer.atlases import atlases_dir
from viewer.model import SceneModel
from viewer.output import read_png_credits

PARTS = {"descending": "Trapezius, descending part", "ascending": "Ascending part of right trapezius"}


def parts_atlas(root: Path, fixture_atlas_dir: Path) -> Path:
    """The fixture atlas whose superficial sheet is a trapezius in two parts, each left and right."""
    shutil.copytree(fixture_atlas_dir, root)
    text = (root / "atlas.toml").read_text().replace('name = "Fixture"', 'name = "Parts fixture"')
    sheet = text[text.index('[[structures]]\nid = "sheet"'):text.index('[[structures]]\nid = "column"')]
    entries = []
    for part, name in PARTS.items():
        for side in ("left", "right"):
            entries.append(sheet.replace('id = "sheet"', f'id = "trapezius_{part}_{side}"')
                           .replace('name = "Sheet"', f'name = "{name}"')
                           .replace('muscle = "sheet"', 'muscle = "trapezius"')
                           .replace('side = "midline"', f'side = "{side}"'))
    (root / "atlas.toml").write_text(text.replace(sheet, "\n".join(entries)))
    return root


def open_window(qtbot, folder: Path) -> MainWindow:
    window = MainWindow(SceneModel(load_atlas(folder)))
    window.resize(900, 600)
    qtbot.addWidget(window, before_close_func=lambda w: w.undo_stack.setClean())
    window.show()
    qtbot.waitExposed(window)
    return window


def test_atlas_menu_lists_installed_atlases_and_switches_the_scene(qtbot, fixture_atlas_dir, tmp_path):
    shutil.copytree(fixture_atlas_dir, atlases_dir() / "fx")
    parts_atlas(atlases_dir() / "parts", fixture_atlas_dir)
    window = open_window(qtbot, atlases_dir() / "fx")
    window.refresh_atlas_menu()
    assert list(window.atlas_actions) == ["builtin", "fx", "parts"]
    assert [n for n, a in window.atlas_actions.items() if a.isChecked()] == ["fx"]
    assert window.atlas_actions["builtin"].text().endswith("(default)")

    window.set_view("posterolateral_left")
    window.atlas_actions["parts"].trigger()
    successor = window.successor
    assert successor is not None
    qtbot.addWidget(successor, before_close_func=lambda w: w.undo_stack.setClean())
    qtbot.waitExposed(successor)
    assert not window.isVisible() and successor.isVisible()
    assert successor.model.atlas.name == "Parts fixture"
    assert successor.current_view() == "posterolateral_left"
    assert [n for n, a in successor.atlas_actions.items() if a.isChecked()] == ["parts"]
    # The new scene is drawn: the red trapezius parts cover the middle of the view.
    QApplication.processEvents()
    successor.render_scheduler.render_now()
    pixels = np.asarray(successor.plotter.screenshot(return_img=True))[..., :3].astype(int)
    red = (pixels[..., 0] > 120) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)
    assert red.mean() > 0.05
    # Its screenshots carry the atlas's credits.
    shot = tmp_path / "gui.png"
    assert successor.save_screenshot(shot, ExportOptions(size=(240, 180)))
    assert read_png_credits(shot) == ["made by the tests"]
    # Choosing the atlas already shown changes nothing.
    successor.atlas_actions["parts"].trigger()
    assert successor.successor is None and successor.isVisible()


def test_layers_tree_groups_parts_under_their_muscle(qtbot, fixture_atlas_dir, tmp_path):
    window = open_window(qtbot, parts_atlas(tmp_path / "parts", fixture_atlas_dir))
    panel = window.layers_panel
    muscle = panel.muscle_items[("superficial", "trapezius")]
    assert muscle.text(0) == "Trapezius"
    # Part rows drop the muscle's name where it leads ("Trapezius, descending part") and the side.
    assert [muscle.child(i).text(0) for i in range(muscle.childCount())] == ["Descending part",
                                                                              "Ascending part of trapezius"]
    descending = panel.part_items[("superficial", "trapezius", "Trapezius, descending part")]
    assert [descending.child(i).text(0) for i in range(descending.childCount())] == ["Left", "Right"]
    descending.setCheckState(0, Qt.CheckState.Unchecked)  # hide the descending part, both sides
    model = window.model
    assert not model.is_visible("trapezius_descending_left") and not model.is_visible("trapezius_descending_right")
    assert model.is_visible("trapezius_ascending_left") and model.is_visible("trapezius_ascending_right")
    assert muscle.checkState(0) == Qt.CheckState.PartiallyChecked
    model.set_visible("trapezius_left", False)  # <muscle>_<side>: every part on the left
    assert panel.structure_items["trapezius_ascending_left"].checkState(0) == Qt.CheckState.Unchecked
    assert panel.structure_items["trapezius_ascending_right"].checkState(0) == Qt.CheckState.Checked
