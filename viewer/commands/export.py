"""``dorsum export``: the scene as shown, as a 3D file (GLB) for slides and web viewers."""

from __future__ import annotations

import argparse
from typing import Any

from viewer.output import check_output_path
from viewer.scene_options import add_scene_arguments, model_from_args


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export", help="write the scene as a GLB 3D file (one named node per visible structure)",
        description="Write the visible structures, in their displayed shape and colour, to a GLB (binary glTF) "
                    "file that PowerPoint, Keynote and web viewers open. --view is accepted but has no effect.")
    parser.add_argument("--out", required=True, metavar="FILE.glb", help="GLB file to write")
    add_scene_arguments(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace FILE.glb if it exists")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from viewer.figures.gltf import export_glb

    out = check_output_path(args.out, overwrite=args.overwrite, suffixes=(".glb",))
    model, _ = model_from_args(args)
    export_glb(model, out, overwrite=args.overwrite)
    print(f"wrote {out} ({len(model.visible_ids())} structures)")
    return 0
