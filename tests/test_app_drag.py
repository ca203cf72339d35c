"""Dragging the camera in the real window: coarse surfaces while moving, one render per frame, and
full detail (the exact still picture) as soon as the button is released."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication
from test_app import make_window


def send(widget, kind, x: float, y: float, buttons) -> None:
    point = QPointF(x, y)
    QApplication.sendEvent(widget, QMouseEvent(kind, point, widget.mapToGlobal(point), Qt.MouseButton.LeftButton,
                                               buttons, Qt.KeyboardModifier.NoModifier))
    QApplication.processEvents()


def test_a_drag_draws_coarse_frames_once_each_then_full_detail(qtbot, real_atlas):
    window = make_window(qtbot, real_atlas)
    window.warmer.wait(120)
    view = window.plotter.interactor
    renderer = window.renderer
    full = renderer.actor("multifidus_right").GetMapper().GetInput().GetNumberOfCells()
    renders = []
    view._RenderWindow.AddObserver("EndEvent", lambda *_: renders.append(1))
    x, y = view.width() * 0.3, view.height() * 0.5
    send(view, QEvent.Type.MouseButtonPress, x, y, Qt.MouseButton.LeftButton)
    frames = []
    for step in range(1, 7):
        before = len(renders)
        send(view, QEvent.Type.MouseMove, x + 12 * step, y, Qt.MouseButton.LeftButton)
        assert renderer.moving
        assert renderer.actor("multifidus_right").GetMapper().GetInput().GetNumberOfCells() < 0.4 * full
        assert len(renders) - before == 1  # drawn once per move, not twice
        frames.append(np.asarray(view.grabFramebuffer().convertToFormat(view.grabFramebuffer().Format.Format_RGB888)
                                 .constBits()).copy())
    assert not np.array_equal(frames[0], frames[-1])  # the view turned on screen while dragging
    send(view, QEvent.Type.MouseButtonRelease, x + 72, y, Qt.MouseButton.NoButton)
    window.render_scheduler.render_now()
    assert not renderer.moving
    assert renderer.actor("multifidus_right").GetMapper().GetInput().GetNumberOfCells() == full
    assert window.plotter.iren.interactor.GetEnableRender()
