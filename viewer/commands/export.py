"""``dorsum export``: the scene as shown, as a 3D file (GLB) for slides and web viewers."""

from __future__ import annotations

import argparse
from typing import Any

from viewer.output import check_output_path
from viewer.scene_options import add_scene_arguments, model_from_args


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export", help="write the scene as a GLB 3D file (one named node per visible structure) or offline HTML",
        description="Write the visible structures, in their displayed shape and colour, to a GLB (binary glTF) "
                    "file that PowerPoint, Keynote and web viewers open, or to an HTML page that shows them in "
                    "any browser without network. --view is accepted but has no effect.")
    parser.add_argument("--out", required=True, metavar="FILE", help="file to write: .glb or .html")
    parser.add_argument("--title", default="Dorsum", metavar="TEXT", help="page title of an HTML export")
    add_scene_arguments(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace FILE.glb if it exists")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from viewer.api import Scene

    out = check_output_path(args.out, overwrite=args.overwrite, suffixes=(".glb", ".html"))
    model, options = model_from_args(args)
    Scene.of_model(model, options).export(out, title=args.title, overwrite=args.overwrite)
    print(f"wrote {out} ({len(model.visible_ids())} structures)")
    return 0
