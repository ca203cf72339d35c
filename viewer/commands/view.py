"""``dorsum view`` (and plain ``dorsum``): the desktop application."""

from __future__ import annotations

import argparse
from typing import Any

from viewer.display import require_display
from viewer.scene_options import add_scene_arguments
from viewer.session import add_state_argument


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("view", help="open the interactive 3D viewer (default command)")
    add_scene_arguments(parser)
    add_state_argument(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    require_display()
    from viewer.session import scene_from_args

    scene = scene_from_args(args)  # a bad atlas or state file is one line before any window opens
    from viewer.app import run_app  # Qt is imported only when a window is really wanted

    return run_app(args, scene)
