"""``dorsum shot``: render the scene off-screen to a PNG."""

from __future__ import annotations

import argparse
from typing import Any

from viewer import __version__
from viewer.checks import parse_size
from viewer.output import check_output_path, save_png
from viewer.render import Camera, render_image
from viewer.scene_options import add_scene_arguments
from viewer.session import add_state_argument, scene_from_args


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("shot", help="render a picture to a PNG file (no display needed)")
    parser.add_argument("--out", required=True, metavar="PATH", help="PNG file to write")
    add_scene_arguments(parser)
    add_state_argument(parser)
    parser.add_argument("--size", default="1600x1200", metavar="WxH",
                        help="picture size in pixels, up to 7680x4320 (default: 1600x1200)")
    parser.add_argument("--transparent", action="store_true", help="transparent background")
    parser.add_argument("--dpi", type=float, default=None, help="DPI to record in the PNG (for print layout)")
    parser.add_argument("--overwrite", action="store_true", help="replace PATH if it exists")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    size = parse_size(args.size)
    out = check_output_path(args.out, overwrite=args.overwrite, suffixes=(".png",))
    model, options, session = scene_from_args(args)
    camera = Camera(**session.camera.camera_fields()) if options.view is None else None
    pixels = render_image(model, size, view=options.view, camera=camera, transparent=args.transparent)
    parameters = {
        "command": "shot", "dorsum": __version__, "atlas": f"{model.atlas.name} {model.atlas.version}",
        **options.as_dict(), "size": list(size), "transparent": bool(args.transparent),
    }
    if session is not None:
        parameters["state"] = str(args.state)
    if camera is not None:
        parameters["camera"] = camera.as_dict()
    save_png(out, pixels, parameters=parameters, overwrite=args.overwrite, dpi=args.dpi)
    print(f"wrote {out} ({size[0]}x{size[1]})")
    return 0
