"""``dorsum shot``: render the scene off-screen to a PNG."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from viewer import __version__
from viewer.atlas import credit_lines
from viewer.checks import parse_size
from viewer.output import check_output_path, save_png
from viewer.scene_options import add_scene_arguments
from viewer.session import add_state_argument, scene_from_args

if TYPE_CHECKING:
    from viewer.render import Camera


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
    add_annotation_arguments(parser)
    parser.set_defaults(run=run)


def add_annotation_arguments(parser: argparse.ArgumentParser) -> None:
    """--labels, --legend, --title, --caption and --scale-bar (see viewer.figures)."""
    group = parser.add_argument_group("annotations (as in lesson figures, see docs/lessons.md)")
    group.add_argument("--labels", nargs="*", default=None, metavar="NAME",
                       help="leader-line labels with anatomical names: of the named layers/muscles, or of every "
                            "visible muscle when no name is given")
    group.add_argument("--legend", action="store_true", help="a legend of the visible layers")
    group.add_argument("--title", default="", metavar="TEXT", help="a title above the picture")
    group.add_argument("--caption", default="", metavar="TEXT", help="a caption below the picture")
    group.add_argument("--scale-bar", action="store_true", help="a scale bar (true at the focal plane)")


def annotations_requested(args: argparse.Namespace) -> bool:
    return bool(args.labels is not None or args.legend or args.title or args.caption or args.scale_bar)


def render_annotated(model, size, args: argparse.Namespace, view: str | None, camera: Camera | None):
    """The picture with the requested labels, legend, title, caption and scale bar drawn around it."""
    from viewer.figures.figure import FigureRenderer

    labels = tuple(args.labels or ())
    for name in labels:
        model.resolve(name)  # unknown names fail before rendering
    with FigureRenderer(model.atlas, model=model, transparent=args.transparent) as renderer:
        pixels = renderer.render_current(size, view=view, camera=camera, title=args.title, caption=args.caption,
                                         legend=args.legend, labels=labels, label_all=args.labels == [],
                                         scale_bar=args.scale_bar)
        for note in renderer.notes:
            print(f"dorsum shot: note: {note}", file=sys.stderr)
    return pixels


def run(args: argparse.Namespace) -> int:
    from viewer.render import Camera, render_image  # VTK loads only when a picture is made

    size = parse_size(args.size)
    out = check_output_path(args.out, overwrite=args.overwrite, suffixes=(".png",))
    model, options, session = scene_from_args(args)
    camera = Camera(**session.camera.camera_fields()) if options.view is None else None
    if annotations_requested(args):
        pixels = render_annotated(model, size, args, options.view, camera)
    else:
        pixels = render_image(model, size, view=options.view, camera=camera, transparent=args.transparent)
    parameters = {
        "command": "shot", "dorsum": __version__, "atlas": f"{model.atlas.name} {model.atlas.version}",
        **options.as_dict(), "size": list(size), "transparent": bool(args.transparent),
    }
    if annotations_requested(args):
        parameters.update(labels=args.labels, legend=args.legend, title=args.title, caption=args.caption,
                          scale_bar=args.scale_bar)
    if session is not None:
        parameters["state"] = str(args.state)
    if camera is not None:
        parameters["camera"] = camera.as_dict()
    save_png(out, pixels, parameters=parameters, overwrite=args.overwrite, dpi=args.dpi,
             credits=credit_lines(model.atlas))
    print(f"wrote {out} ({size[0]}x{size[1]})")
    return 0
