"""``dorsum view`` (and plain ``dorsum``): the desktop application."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from viewer.errors import NoDisplayError
from viewer.scene_options import add_scene_arguments
from viewer.session import add_state_argument


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("view", help="open the interactive 3D viewer (default command)")
    add_scene_arguments(parser)
    add_state_argument(parser)
    parser.set_defaults(run=run)


def require_display() -> None:
    """Raise :class:`NoDisplayError` when no window can be opened on this machine."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise NoDisplayError(
            "no display found (DISPLAY is not set): to make a picture without a display use "
            "'dorsum shot --out back.png'"
        )


def run(args: argparse.Namespace) -> int:
    require_display()
    from viewer.app import run_app  # Qt is imported only when a window is really wanted

    return run_app(args)
