"""Where pictures and windows can be drawn on this machine (no VTK or Qt imported here)."""

from __future__ import annotations

import os
import sys

from viewer.errors import NoDisplayError


def prefer_headless_vtk() -> None:
    """Without a display, make VTK render off-screen through EGL instead of trying X11 first."""
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")


def require_display() -> None:
    """Raise :class:`NoDisplayError` when no window can be opened on this machine."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise NoDisplayError(
            "no display found (DISPLAY is not set): to make a picture without a display use "
            "'dorsum shot --out back.png'"
        )
