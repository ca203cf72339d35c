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


def pixels(image, depth: int = 24) -> np.ndarray:
    """RGB of a QImage, at a screen's colour ``depth`` (16: as a 16-bit X server stores it)."""
    if depth < 24:
        image = image.convertToFormat(image.Format.Format_RGB16)
    image = image.convertToFormat(image.Format.Format_RGB888)
    rows = np.asarray(image.constBits()).reshape(image.height(), image.bytesPerLine())
    return rows[:, :3 * image.width()].reshape(image.height(), image.width(), 3).copy()


def test_the_screen_shows_exactly_the_pixels_pyvistaqt_would_before_and_after_a_drag(qtbot, real_atlas):
    from PySide6.QtCore import QPoint, QRect
    from pyvistaqt import QtInteractor

    window = make_window(qtbot, real_atlas)
    window.warmer.wait(120)
    view = window.plotter.interactor
    screen = QApplication.primaryScreen()

    def on_screen() -> tuple[np.ndarray, QRect]:
        """The part of the view the screen shows (the test screen may be smaller than the window)."""
        window.render_scheduler.render_now()
        qtbot.wait(100)
        corner = view.mapToGlobal(QPoint(0, 0))
        visible = QRect(corner, view.size()).intersected(screen.geometry())
        grab = screen.grabWindow(0, visible.x(), visible.y(), visible.width(), visible.height()).toImage()
        return pixels(grab, screen.depth()), visible.translated(-corner)

    def as_pyvistaqt_draws_it() -> np.ndarray:
        view._blit = lambda target, rect: QtInteractor._blit(view, target, rect)  # its own (filtering) copy
        try:
            return pixels(view.grabFramebuffer())
        finally:
            del view._blit

    for dragged in (False, True):
        if dragged:
            x, y = view.width() * 0.3, view.height() * 0.5
            send(view, QEvent.Type.MouseButtonPress, x, y, Qt.MouseButton.LeftButton)
            for step in range(1, 5):
                send(view, QEvent.Type.MouseMove, x + 15 * step, y, Qt.MouseButton.LeftButton)
            send(view, QEvent.Type.MouseButtonRelease, x + 60, y, Qt.MouseButton.NoButton)
        shown, part = on_screen()
        assert part.width() > 100 and part.height() > 100 and shown.std() > 10  # the body, not a blank view
        frame = view.grabFramebuffer()
        assert np.array_equal(pixels(frame), as_pyvistaqt_draws_it())
        assert np.array_equal(shown, pixels(frame.copy(part), screen.depth()))
