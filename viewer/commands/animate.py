"""``dorsum animate``: GIF or MP4 of progressive atrophy, a turntable or a layer peel."""

from __future__ import annotations

import argparse
from typing import Any

from viewer.checks import check_range, parse_size
from viewer.errors import DorsumError
from viewer.output import check_output_path
from viewer.figures import ANIMATION_KINDS, ANIMATION_SUFFIXES
from viewer.scene_options import add_scene_arguments, model_from_args


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "animate", help="write a GIF or MP4: atrophy 0 to N%%, a scenario over time, a turntable, or a layer peel",
        description="atrophy: the muscle wastes from healthy to --atrophy PERCENT at --segments/--side; "
                    "turntable: the camera circles the body; peel: the visible muscle layers fade away, "
                    "outermost first.")
    parser.add_argument("--kind", required=True, choices=ANIMATION_KINDS, metavar="KIND",
                        help=f"one of {', '.join(ANIMATION_KINDS)}")
    parser.add_argument("--out", required=True, metavar="FILE", help="output file, .gif or .mp4")
    add_scene_arguments(parser)
    parser.set_defaults(view=None)  # posterior unless given; a given view keeps the layers as they are
    parser.add_argument("--frames", type=int, default=36, metavar="N", help="number of frames (default: 36)")
    parser.add_argument("--fps", default="12", metavar="N", help="frames per second (default: 12)")
    parser.add_argument("--size", default="800x600", metavar="WxH", help="frame size in pixels (default: 800x600)")
    parser.add_argument("--frame", nargs="+", default=[], metavar="NAME",
                        help="close-up: the camera fits these layers/muscles/structures (default: everything shown; "
                             "for --kind atrophy, the wasting muscle)")
    parser.add_argument("--overwrite", action="store_true", help="replace FILE if it exists")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from viewer.api import Scene
    from viewer.figures.animation import AnimationSpec, check_animation
    from viewer.figures.reveal import reveal_wasting_muscle, user_set_the_scene

    size = parse_size(args.size)
    spec = AnimationSpec(args.kind, args.frames, check_range("fps", args.fps, 1, 60), size)
    out = check_output_path(args.out, overwrite=args.overwrite, suffixes=ANIMATION_SUFFIXES)
    check_animation(spec, out.suffix.lower())  # before the atlas loads, as Scene.animate checks again
    if args.kind == "scenario" and getattr(args, "preset", None) is None:
        raise DorsumError("scenario animation: give the scenario with --preset NAME ('dorsum preset list')")
    model, options = model_from_args(args)
    atrophy = getattr(options, "atrophy", None)
    if args.kind == "atrophy" and atrophy is not None and not user_set_the_scene(
            args.hide, args.only, args.opacity, args.view):
        reveal_wasting_muscle(model, atrophy)  # the wasting muscle, not the layers over it
    scene = Scene.of_model(model, options)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        disable=args.quiet, console=Console(stderr=True))  # stdout holds only the result
    with progress:
        task = progress.add_task(f"{args.kind} -> {out.name}", total=spec.frames)
        scene.animate(out, args.kind, frames=spec.frames, fps=spec.fps, size=size, frame=tuple(args.frame),
                      overwrite=args.overwrite, on_frame=lambda _: progress.advance(task))
    print(f"wrote {out} ({spec.frames} frames, {size[0]}x{size[1]})")
    return 0
