"""Where pictures and windows can be drawn on this machine (no VTK or Qt imported here)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading

from viewer.errors import NoDisplayError

#: Seconds to wait for an X server to answer (a remote display over a dead SSH tunnel may hang).
DISPLAY_TIMEOUT_S = 5.0
NO_DISPLAY_FIX = ("connect with 'ssh -X' (or -Y), start the viewer on the machine's own screen, "
                  "or make a picture without a display with 'dorsum shot --out back.png'")


def prefer_headless_vtk() -> None:
    """Without a display, make VTK render off-screen through EGL instead of trying X11 first."""
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")


def require_display() -> None:
    """Raise :class:`NoDisplayError` when no window can be opened on this machine.

    Qt aborts the process (exit 134) with a hint about reinstalling when its X display cannot be
    reached, so an X display is opened here first, with libxcb, and the failure is put in words.
    """
    if not sys.platform.startswith("linux"):
        return
    display = os.environ.get("DISPLAY", "")
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform and not platform.startswith("xcb"):
        return  # offscreen, wayland...: Qt does not need an X server
    if not display:
        if os.environ.get("WAYLAND_DISPLAY") and not platform:
            return
        raise NoDisplayError(f"no display found (DISPLAY is not set): {NO_DISPLAY_FIX}")
    if os.environ.get("WAYLAND_DISPLAY") and not platform:
        return  # Qt may use Wayland; it reports its own errors there
    if not x_display_reachable(display):
        raise NoDisplayError(f"cannot reach the X display {display!r} (DISPLAY): {NO_DISPLAY_FIX}")


def x_display_reachable(display: str, timeout: float = DISPLAY_TIMEOUT_S) -> bool:
    """Whether an X server answers at ``display`` (e.g. ":0", "localhost:10.0").

    True also when libxcb cannot be found: then Qt's own error is the more useful one.
    """
    library = ctypes.util.find_library("xcb")
    if library is None:
        return True
    xcb = ctypes.CDLL(library)
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    result: list[bool] = []

    def connect() -> None:
        connection = xcb.xcb_connect(display.encode(), None)
        result.append(bool(connection) and xcb.xcb_connection_has_error(connection) == 0)
        if connection:
            xcb.xcb_disconnect(connection)

    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(timeout)
    return bool(result and result[0])
