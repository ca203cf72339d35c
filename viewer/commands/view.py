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
    from viewer.api import Scene
    from viewer.session import scene_from_args

    model, options, session = scene_from_args(args)  # a bad atlas or state file is one line before any window opens
    # The same call as Scene.show() outside a notebook.
    return Scene.of_model(model, options).open_window(state=session,
                                                      state_path=args.state if session is not None else None)
