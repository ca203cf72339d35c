"""A small synthetic atlas for tests: one structure per layer plus a two-sided muscle with level data.

Shapes are simple capsules stacked front to back so that, seen from behind, each layer covers the
next one partly: the superficial sheet at the back, the skeleton at the front.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh
from trimesh.exchange.ply import export_ply

LAYERS = {
    "superficial": (1, "#c81e1e"),
    "intermediate": (2, "#1ec81e"),
    "deep": (3, "#1e1ec8"),
    "skeleton": (4, "#e8dcc0"),
}


def _capsule(centre: tuple[float, float, float], radius: float, height: float) -> trimesh.Trimesh:
    mesh = trimesh.creation.capsule(height=height, radius=radius, count=[24, 24])
    mesh.apply_translation(centre)
    return mesh


def _write(mesh: trimesh.Trimesh, path: Path, segment: bool = False, side: int = 2) -> None:
    if segment:
        z = mesh.vertices[:, 2]
        # L1 (19) at the top of the muscle, S1 (24) at the bottom: 20 mm per level.
        mesh.vertex_attributes["segment"] = (19.0 + (50.0 - z) / 20.0).astype(np.float32)
        mesh.vertex_attributes["side"] = np.full(len(mesh.vertices), side, dtype=np.int32)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(export_ply(mesh, include_attributes=True))


def structure_entry(sid: str, layer: str, mesh: str, side: str = "midline", kind: str = "muscle",
                    muscle: str | None = None) -> str:
    return (
        f'[[structures]]\nid = "{sid}"\nname = "{sid.replace("_", " ").title()}"\n'
        f'muscle = "{muscle or sid}"\ngroup = "{layer}_group"\nside = "{side}"\nkind = "{kind}"\n'
        f'layer = "{layer}"\nmesh = "{mesh}"\n'
    )


def make_atlas(root: Path) -> Path:
    """Write the fixture atlas into ``root`` and return it."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "LICENSE.txt").write_text("fixture data, public domain\n")
    _write(_capsule((0, -60, 0), 45, 120), root / "sheet.ply")
    _write(_capsule((0, -45, 0), 30, 100), root / "column.ply")
    _write(_capsule((18, -20, 0), 12, 80), root / "mf_right.ply", segment=True, side=1)
    _write(_capsule((-18, -20, 0), 12, 80), root / "mf_left.ply", segment=True, side=0)
    _write(_capsule((0, 30, 0), 40, 140), root / "bone.ply")
    text = [
        '[atlas]\nname = "Fixture"\nversion = "0.1"\nunits = "mm"\nframe = "RAS"\n',
        '[[atlas.sources]]\nname = "tests"\nlicence = "CC0-1.0"\nattribution = "made by the tests"\n'
        'licence_file = "LICENSE.txt"\n',
    ]
    for name, (depth, colour) in LAYERS.items():
        text.append(f'[[layers]]\nname = "{name}"\ndepth = {depth}\ncolour = "{colour}"\n')
    for level, z in (("L4", 0.0), ("L5", -20.0), ("S1", -40.0), ("L3", 20.0)):
        text.append(f'[[spine]]\nname = "{level}"\ncentre = [0.0, 20.0, {z}]\n')
    text += [
        structure_entry("sheet", "superficial", "sheet.ply"),
        structure_entry("column", "intermediate", "column.ply"),
        structure_entry("mf_right", "deep", "mf_right.ply", side="right", muscle="multifidus"),
        structure_entry("mf_left", "deep", "mf_left.ply", side="left", muscle="multifidus"),
        structure_entry("bone", "skeleton", "bone.ply", kind="bone"),
    ]
    (root / "atlas.toml").write_text("\n".join(text))
    return root
