"""Starting the application: ``dorsum view`` and plain ``dorsum``."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from viewer.app.window import MainWindow
from viewer.model import SceneModel
from viewer.quiz import Question
from viewer.render import Camera
from viewer.session import Session, scene_from_args


def run_app(args: argparse.Namespace, scene: tuple[Any, Any, Any] | None = None) -> int:
    """Open the window for the scene of ``args`` (atlas, --state, --view, --hide...) until it closes.

    ``scene`` is ``scene_from_args(args)`` if the caller loaded it before Qt started.
    """
    model, options, session = scene if scene is not None else scene_from_args(args)
    return run_scene(model, view=options.view, session=session,
                     state_path=args.state if session is not None else None)


def run_scene(model: SceneModel, *, view: str | None = None, camera: Camera | None = None,
              camera_view: str | None = None, session: Session | None = None,
              state_path: Path | None = None, quiz: Sequence[Question] = ()) -> int:
    """Open the window on ``model`` (see :func:`open_window`) until it closes; returns the exit code.

    With ``quiz`` questions, the window opens on the Quiz tab asking them.
    """
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Dorsum")
    app.setOrganizationName("Dorsum")
    window = open_window(model, view=view, camera=camera, camera_view=camera_view, session=session,
                         state_path=state_path)
    if quiz:
        window.quiz_panel.start(quiz)
        window.tabs.setCurrentWidget(window.quiz_panel)
    _fit_to_screen(app, window)
    window.show()
    _quit_on_signals(app, window)
    code = app.exec()
    _latest(window).shutdown()
    return int(code)


def _latest(window: MainWindow) -> MainWindow:
    """The window shown now: a switch of atlas replaces the window by its successor."""
    while window.successor is not None:
        window = window.successor
    return window


def open_window(model: SceneModel, *, view: str | None = None, camera: Camera | None = None,
                camera_view: str | None = None, session: Session | None = None,
                state_path: Path | None = None) -> MainWindow:
    """The main window on ``model`` as ``dorsum view [--state FILE] [--view NAME]`` asks (not shown yet).

    A state ``session``'s camera and labels are kept exactly as saved; a preset ``view`` replaces its
    camera. Without a session, an explicit ``camera`` (named ``camera_view`` if it is a preset's) or
    the preset ``view``.
    """
    window = MainWindow(model, state_path=state_path)
    if session is not None:
        window.show_session_view(session, view)
    elif camera is not None:
        window.set_camera(camera, camera_view)
    elif view is not None:
        window.set_view(view)
    return window


def _fit_to_screen(app: QApplication, window: MainWindow) -> None:
    """Open at the usual size, but never larger than the screen (a 1366x768 lecture-room laptop)."""
    screen = app.primaryScreen()
    if screen is None:
        return
    available = screen.availableGeometry()
    width = min(window.width(), int(available.width() * 0.95))
    height = min(window.height(), int(available.height() * 0.9))
    window.resize(width, height)


def _quit_on_signals(app: QApplication, window: MainWindow) -> None:
    """Ctrl+C in the terminal and SIGTERM close the window cleanly instead of killing Qt mid-render."""
    def close(*_: object) -> None:
        current = _latest(window)
        current.undo_stack.setClean()  # a signal cannot answer the "save changes?" question
        current.close()
        app.quit()

    signal.signal(signal.SIGINT, close)
    signal.signal(signal.SIGTERM, close)
    # Python runs signal handlers only between bytecodes: wake the interpreter regularly.
    timer = QTimer(app, interval=200)
    timer.timeout.connect(lambda: None)
    timer.start()
