"""``dorsum view``: the interactive window."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from viewer.errors import NoDisplayError
from viewer.scene_options import add_scene_arguments, model_from_args


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("view", help="open the interactive 3D viewer (default command)")
    add_scene_arguments(parser)
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
    import pyvista as pv

    from viewer.render import SceneRenderer

    model, options = model_from_args(args)
    plotter = pv.Plotter(title="Dorsum", window_size=[1280, 900])
    renderer = SceneRenderer(plotter, model)
    renderer.set_view(options.view)
    plotter.show()
    return 0
