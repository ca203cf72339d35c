"""``dorsum info``: atlas metadata, layers and structures."""

from __future__ import annotations

import argparse
import json
from typing import Any

from viewer.atlas import Atlas
from viewer.levels import anatomical_order
from viewer.scene_options import add_atlas_argument, load_atlas_from_args


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("info", help="list the atlas, its layers and structures")
    add_atlas_argument(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=run)


def atlas_info(atlas: Atlas) -> dict[str, Any]:
    """The ``dorsum info --json`` document (vertebrae and other levelled structures cranial to caudal)."""
    by_id = {s.id: s for s in atlas.structures}
    structures = [by_id[sid] for sid in anatomical_order(by_id)]
    return {
        "atlas": {
            "name": atlas.name, "version": atlas.version, "units": atlas.units, "frame": atlas.frame,
            "description": atlas.description, "root": str(atlas.root),
            "sources": [{"name": s.name, "version": s.version, "licence": s.licence,
                         "attribution": s.attribution, "licence_file": s.licence_file} for s in atlas.sources],
        },
        "layers": [{"name": layer.name, "depth": layer.depth, "colour": layer.colour,
                    "description": layer.description} for layer in atlas.layers],
        "structures": [
            {"id": s.id, "name": s.name, "muscle": s.muscle, "group": s.group, "side": s.side, "kind": s.kind,
             "layer": s.layer, "colour": s.colour, "mesh": str(s.mesh), "levels": list(s.levels),
             "n_triangles": atlas.meshes[s.id].n_triangles}
            for s in structures
        ],
    }


def run(args: argparse.Namespace) -> int:
    atlas = load_atlas_from_args(args)
    info = atlas_info(atlas)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{atlas.name} {atlas.version} ({atlas.units}, {atlas.frame}) at {atlas.root}")
    for source in atlas.sources:
        print(f"  data: {source.name} {source.version} ({source.licence}): {source.attribution}")
    for layer in atlas.layers:
        members = [s for s in info["structures"] if s["layer"] == layer.name]
        print(f"\n{layer.name} (depth {layer.depth}, {len(members)} structures)")
        for s in members:
            print(f"  {s['id']:<28} {s['name']:<34} {s['side']:<8} {s['n_triangles']:>7} triangles")
    total = sum(s["n_triangles"] for s in info["structures"])
    print(f"\n{len(info['structures'])} structures, {total} triangles")
    return 0
