"""``dorsum shot``: render the scene off-screen to a PNG."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import Any

from viewer.checks import DPI_RANGE, check_dpi, parse_size
from viewer.output import check_output_path
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
    parser.add_argument("--dpi", default=None, metavar="DPI",
                        help=f"DPI to record in the PNG for print layout, {DPI_RANGE[0]:g} to {DPI_RANGE[1]:g}")
    parser.add_argument("--overwrite", action="store_true", help="replace PATH if it exists")
    add_annotation_arguments(parser)
    section = parser.add_argument_group("axial section instead of the 3D view (see docs/atrophy.md)")
    section.add_argument("--section", default=None, metavar="DISC",
                         help="draw the axial slice at a disc level, e.g. L4-L5, with CSA labels if --labels is given")
    section.add_argument("--style", default="diagram", choices=("diagram", "mri"),
                         help="section style: coloured diagram, or grey levels as on a T1-weighted MRI (fat bright)")
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


def _run_section(args: argparse.Namespace, model, options, size: tuple[int, int], out) -> int:
    """``shot --section DISC [--style mri]``: the axial slice (no 3D rendering, so no VTK)."""
    from viewer import __version__
    from viewer.figures.section import section_figure
    from viewer.levels import parse_disc_list
    from viewer.output import save_png

    disc = parse_disc_list(args.section.upper())[0]
    labels = None if args.labels is None else tuple(args.labels)
    pixels = section_figure(model, disc, size, style=args.style, labels=labels, title=args.title,
                            caption=args.caption, scale_bar=args.scale_bar, transparent=args.transparent)
    parameters = {"command": "shot", "dorsum": __version__, "atlas": f"{model.atlas.name} {model.atlas.version}",
                  **options.as_dict(), "size": list(size), "section": disc, "style": args.style}
    dpi = check_dpi(args.dpi) if args.dpi is not None else None
    save_png(out, pixels, parameters=parameters, overwrite=args.overwrite, dpi=dpi)
    print(f"wrote {out} ({size[0]}x{size[1]})")
    return 0


def reveal_atrophy(model, atrophy, size: tuple[int, int]) -> tuple[tuple[str, ...], Camera]:
    """Hide what covers the wasting muscle and a posterior camera on its wasting levels."""
    from viewer.figures.reveal import reveal_wasting_muscle

    return reveal_wasting_muscle(model, atrophy), frame_wasting(model, size)


def frame_wasting(model, size: tuple[int, int]) -> Camera:
    """A posterior camera on the levels where the model's muscles waste (one or a scenario's several)."""
    from viewer.figures.figure import framing_camera
    from viewer.figures.reveal import wasting_points
    from viewer.render import RenderSettings
    from viewer.views import DEFAULT_VIEW

    return framing_camera(wasting_points(model, model.atrophy), DEFAULT_VIEW, size, RenderSettings().view_angle)


def run(args: argparse.Namespace) -> int:
    from viewer.api import Scene
    from viewer.figures.reveal import user_set_the_scene
    from viewer.render import Camera  # VTK loads only when a picture is made

    size = parse_size(args.size)
    dpi = check_dpi(args.dpi) if args.dpi is not None else None
    out = check_output_path(args.out, overwrite=args.overwrite, suffixes=(".png",))
    view_given = args.view is not None
    model, options, session = scene_from_args(args)
    if session is not None and session.labels and args.labels is None:
        args.labels = []  # the state was saved with its muscles labelled: label them here too
    camera = Camera(**session.camera.camera_fields()) if options.view is None else None
    if args.section is not None:
        return _run_section(args, model, options, size, out)
    revealed = None
    user_framed = session is not None or user_set_the_scene(args.hide, args.only, args.opacity,
                                                            args.view if view_given else None)
    if options.atrophy is not None and not user_framed:
        revealed, camera = reveal_atrophy(model, options.atrophy, size)
    elif options.preset is not None and model.atrophy is not None and not user_framed:
        camera = frame_wasting(model, size)  # the scenario file peeled the layers over it already
    scene = Scene.of_model(model, options, camera)
    labels = True if args.labels == [] else tuple(args.labels or ())
    picture = scene.render(size, labels=labels, legend=args.legend, title=args.title, caption=args.caption,
                           scale_bar=args.scale_bar, transparent=args.transparent)
    for note in scene.notes:
        print(f"dorsum shot: note: {note}", file=sys.stderr)
    extra = {"state": str(args.state)} if session is not None else {}
    if revealed is not None:
        extra["hidden_to_show_atrophy"] = list(revealed)
    picture = replace(picture, parameters={"command": "shot", **picture.parameters, **extra})
    picture.save(out, overwrite=args.overwrite, dpi=dpi)
    print(f"wrote {out} ({size[0]}x{size[1]})")
    return 0
