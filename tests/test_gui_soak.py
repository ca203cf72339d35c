"""Soak: 500 random GUI actions without a crash, a VTK error or memory that keeps growing."""

from __future__ import annotations

import random
import time

from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication

from viewer.app.window import MainWindow
from viewer.model import SceneModel

ACTIONS = 500


def resident_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def random_action(rng: random.Random, window: MainWindow, qtbot) -> None:
    panel, atrophy = window.layers_panel, window.atrophy_panel
    items = [*panel.layer_items.values(), *panel.muscle_items.values(), *panel.structure_items.values()]
    choice = rng.randrange(12)
    if choice == 0:
        item = rng.choice(items)
        item.setCheckState(0, rng.choice([Qt.CheckState.Checked, Qt.CheckState.Unchecked]))
    elif choice == 1:
        qtbot.keyClick(window, rng.choice([Qt.Key.Key_1, Qt.Key.Key_2, Qt.Key.Key_3, Qt.Key.Key_4]))
    elif choice == 2:
        rng.choice(list(panel.opacity_sliders.values())).setValue(rng.randrange(0, 101))
    elif choice == 3:
        atrophy.amount.setValue(rng.randrange(0, 25))
    elif choice == 4:
        atrophy.fat.setValue(rng.randrange(0, 101))
    elif choice == 5:
        rng.choice([atrophy.range_from, atrophy.range_to]).setCurrentIndex(rng.randrange(atrophy.range_from.count()))
        atrophy.side.setCurrentIndex(rng.randrange(atrophy.side.count()))
    elif choice == 6:
        rng.choice(list(window.view_actions.values())).trigger()
    elif choice == 7:
        rng.choice([window.undo_action, window.redo_action]).trigger()
    elif choice == 8:
        panel.show_only_items(rng.sample(items, rng.randint(1, 3)))
    elif choice == 9:
        rng.choice([panel.show_all_button.click, window.reset_view_action.trigger, window.labels_action.trigger])()
    elif choice == 10:
        width, height = window.plotter.window_size
        point = QPoint(rng.randrange(width), rng.randrange(height))
        qtbot.mouseClick(window.plotter.interactor, Qt.MouseButton.LeftButton, pos=point)
    else:
        widget = window.plotter.interactor
        start = QPoint(rng.randrange(50, 300), rng.randrange(50, 300))
        qtbot.mousePress(widget, Qt.MouseButton.LeftButton, pos=start)
        qtbot.mouseMove(widget, start + QPoint(rng.randrange(-40, 40), rng.randrange(-40, 40)))
        qtbot.mouseRelease(widget, Qt.MouseButton.LeftButton, pos=start + QPoint(5, 5))
    QApplication.processEvents()


def test_500_random_actions(qtbot, fixture_atlas):
    window = MainWindow(SceneModel(fixture_atlas))
    window.resize(720, 480)
    qtbot.addWidget(window, before_close_func=lambda w: w.undo_stack.setClean())
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    qtbot.waitActive(window)
    rng = random.Random(20261124)
    start = time.monotonic()
    for _ in range(100):  # warm-up: caches, calibrations, GL resources
        random_action(rng, window, qtbot)
    baseline = resident_mb()
    for _ in range(ACTIONS - 100):
        random_action(rng, window, qtbot)
    qtbot.wait(100)
    grown = resident_mb() - baseline
    elapsed = time.monotonic() - start
    assert grown < 80, f"memory grew by {grown:.0f} MB over {ACTIONS - 100} actions"
    assert window.isVisible()
    # Still consistent: the tree shows what the model shows.
    for sid, item in window.layers_panel.structure_items.items():
        assert (item.checkState(0) == Qt.CheckState.Checked) == window.model.is_visible(sid)
    print(f"{ACTIONS} actions in {elapsed:.1f} s, memory +{grown:.1f} MB after warm-up")
