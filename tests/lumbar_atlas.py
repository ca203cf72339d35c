"""A lumbar test atlas made from the shared BodyParts3D data with :func:`rebuild_lumbar`.

Until the importer (``dorsum atlas import``) is on main, the lumbar tests build their own small
atlas: the BodyParts3D bones from T10 to the pelvis (frame flipped to RAS), body centres from the
disc centres, and the meshes :func:`viewer.atlas_import.lumbar.rebuild_lumbar` returns. Nothing made
from BodyParts3D is written inside the repository: the atlas goes to a pytest temporary folder.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import trimesh
from trimesh.exchange.ply import export_ply

from viewer.atlas import MeshData
from viewer.atlas_import.lumbar import rebuild_lumbar

BODYPARTS3D = Path(__file__).resolve().parents[1].parent / "shared" / "anatomy" / "bodyparts3d"
_ORDINALS = ("First", "Second", "Third", "Fourth", "Fifth")
_THORACIC = {"t10": "Tenth", "t11": "Eleventh", "t12": "Twelfth"}
BONES = {
    **{f"vertebra_{k}": f"{v} thoracic vertebra" for k, v in _THORACIC.items()},
    **{f"vertebra_l{i + 1}": f"{o} lumbar vertebra" for i, o in enumerate(_ORDINALS)},
    "sacrum": "Sacrum", "hip_bone_left": "Left hip bone", "hip_bone_right": "Right hip bone",
    "rib_11_left": "Left eleventh rib", "rib_11_right": "Right eleventh rib",
    "rib_12_left": "Left twelfth rib", "rib_12_right": "Right twelfth rib",
    "disc_t11_t12": "Intervertebral disk of eleventh thoracic vertebra",
    "disc_t12_l1": "Intervertebral disk of twelfth thoracic vertebra",
    **{f"disc_l{i + 1}_{'s1' if i == 4 else f'l{i + 2}'}": f"Intervertebral disk of {o.lower()} lumbar vertebra"
       for i, o in enumerate(_ORDINALS)},
}
MUSCLE_META = {  # id stem: (muscle, group, layer, colour)
    "multifidus": ("multifidus", "transversospinales", "deep", "#b83c3c"),
    "longissimus_thoracis": ("longissimus", "erector_spinae", "intermediate", "#4f7fd0"),
    "iliocostalis_lumborum": ("iliocostalis", "erector_spinae", "intermediate", "#3fa060"),
    "quadratus_lumborum": ("quadratus_lumborum", "posterior_abdominal_wall", "context", "#d89a30"),
    "psoas_major": ("psoas_major", "posterior_abdominal_wall", "context", "#9a50c0"),
    "thoracolumbar_fascia": ("thoracolumbar_fascia", "fasciae", "superficial", "#d8d8e8"),
    "interspinous_ligament": ("interspinous_ligament", "ligaments", "skeleton", "#c8c0a8"),
}
#: Imported muscles over the lumbar region, passed to the rebuild (it keeps its muscles deep to them).
OVERLYING = {f"{stem}_{side}": f"{side.capitalize()} {name}" for side in ("left", "right")
             for stem, name in (("latissimus_dorsi", "latissimus dorsi"),
                                ("serratus_posterior_inferior", "serratus posterior inferior"),
                                ("gluteus_maximus", "gluteus maximus"))}
LAYERS = (("superficial", "#c85050"), ("intermediate", "#b04040"), ("deep", "#903030"),
          ("context", "#a06050"), ("skeleton", "#e8dcc0"))


def load_bodyparts3d(name: str) -> MeshData:
    """A BodyParts3D mesh by English name, in RAS mm (x and y flipped)."""
    rows = {r["name"]: r for r in csv.DictReader((BODYPARTS3D / "manifest.csv").open())}
    mesh = trimesh.load(BODYPARTS3D / "meshes" / rows[name]["file"], force="mesh")
    return MeshData(np.asarray(mesh.vertices, float) * np.array([-1.0, -1.0, 1.0]),
                    np.asarray(mesh.faces, np.int64))


def closed_bone(mesh: MeshData, pitch: float = 0.7) -> MeshData:
    """A closed version of an open BodyParts3D bone (as the importer closes vertebrae, sacrum and discs)."""
    from scipy import ndimage
    from skimage.measure import marching_cubes

    from viewer.atlas_import.lumbar import _simplify, _solid, _surface_points

    points = _surface_points(mesh.vertices, mesh.faces, pitch / 2)
    low = points.min(axis=0) - 3 * pitch
    cells = np.floor((points - low) / pitch).astype(int)
    grid = np.zeros(tuple(cells.max(axis=0) + 4), bool)
    grid[tuple(cells.T)] = True
    field = ndimage.gaussian_filter(_solid(grid).astype(np.float32), 0.6)
    vertices, faces, _, _ = marching_cubes(field, 0.5)
    solid = trimesh.Trimesh(vertices * pitch + low, faces[:, ::-1], process=True)
    solid = max(solid.split(only_watertight=False), key=lambda p: len(p.faces))
    if solid.volume < 0:
        solid.invert()
    solid = _simplify(solid)
    return MeshData(np.asarray(solid.vertices, float), np.asarray(solid.faces, np.int64))


def body_centres(bones: dict[str, MeshData]) -> dict[str, np.ndarray]:
    """Rough body centres T10-S1: midpoints of neighbouring disc centres (bounding-box centres)."""
    order = ["disc_t11_t12", "disc_t12_l1", "disc_l1_l2", "disc_l2_l3", "disc_l3_l4", "disc_l4_l5", "disc_l5_s1"]
    discs = [0.5 * (bones[k].vertices.min(axis=0) + bones[k].vertices.max(axis=0)) for k in order]
    spine = {"T11": 1.5 * discs[0] - 0.5 * discs[1]}
    for i, name in enumerate(("T12", "L1", "L2", "L3", "L4", "L5")):
        spine[name] = 0.5 * (discs[i] + discs[i + 1])
    spine["S1"] = discs[-1] + 0.6 * (discs[-1] - spine["L5"])
    spine["T10"] = 2 * spine["T11"] - spine["T12"]
    return spine


def _entry(sid: str, mesh: str, kind: str, muscle: str, group: str, layer: str, colour: str, side: str,
           levels: str = "") -> str:
    text = (f'[[structures]]\nid = "{sid}"\nname = "{sid.replace("_", " ").capitalize()}"\nmuscle = "{muscle}"\n'
            f'group = "{group}"\nside = "{side}"\nkind = "{kind}"\nlayer = "{layer}"\ncolour = "{colour}"\n'
            f'mesh = "{mesh}"\n')
    return text + (f'levels = ["{levels}"]\n' if levels else "")


def _side(sid: str) -> str:
    return "left" if sid.endswith("_left") else "right" if sid.endswith("_right") else "midline"


def write(mesh: MeshData, path: Path) -> None:
    out = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    for key, values in mesh.point_data.items():
        out.vertex_attributes[key] = values
    path.write_bytes(export_ply(out, include_attributes=True))


def build_lumbar_atlas(root: Path) -> tuple[Path, dict[str, MeshData]]:
    """Write the lumbar test atlas into ``root``; returns it and the rebuilt meshes.

    The overlying BodyParts3D muscles (latissimus dorsi, serratus posterior inferior, gluteus
    maximus) go in as they are (open surfaces): the rebuild only uses them as obstacles.
    """
    bones = {sid: load_bodyparts3d(name) for sid, name in BONES.items()}
    bones = {sid: mesh if sid.startswith(("hip", "rib")) else closed_bone(mesh) for sid, mesh in bones.items()}
    spine = body_centres(bones)
    overlying = {sid: load_bodyparts3d(name) for sid, name in OVERLYING.items()}
    rebuilt = rebuild_lumbar(bones, overlying, spine)
    root.mkdir(parents=True, exist_ok=True)
    (root / "LICENSE.txt").write_text("BodyParts3D, (c) The Database Center for Life Science, CC BY-SA 2.1 JP\n")
    text = ['[atlas]\nname = "lumbar-test"\nversion = "0.1"\nunits = "mm"\nframe = "RAS"\n',
            '[[atlas.sources]]\nname = "BodyParts3D"\nlicence = "CC-BY-SA-2.1-JP"\n'
            'attribution = "BodyParts3D, The Database Center for Life Science"\nlicence_file = "LICENSE.txt"\n']
    text += [f'[[layers]]\nname = "{n}"\ndepth = {i + 1}\ncolour = "{c}"\n' for i, (n, c) in enumerate(LAYERS)]
    text += [f'[[spine]]\nname = "{n}"\ncentre = [{c[0]:.3f}, {c[1]:.3f}, {c[2]:.3f}]\n' for n, c in spine.items()]
    for sid, mesh in rebuilt.items():
        stem = sid.removesuffix("_left").removesuffix("_right")
        muscle, group, layer, colour = MUSCLE_META[stem]
        kind = "fascia" if "fascia" in sid else "ligament" if "ligament" in sid else "muscle"
        write(mesh, root / f"{sid}.ply")
        text.append(_entry(sid, f"{sid}.ply", kind, muscle, group, layer, colour, _side(sid)))
    for sid, mesh in overlying.items():
        write(mesh, root / f"{sid}.ply")
        stem = sid.removesuffix("_left").removesuffix("_right")
        # Open surfaces as BodyParts3D ships them: drawn as context ("other"), never measured.
        text.append(_entry(sid, f"{sid}.ply", "other", stem, "extrinsic", "superficial", "#c06060", _side(sid)))
    for sid, mesh in bones.items():
        write(mesh, root / f"{sid}.ply")
        level = sid.split("_")[1].upper() if sid.startswith("vertebra_") else ""
        colour = "#a8c8d8" if sid.startswith("disc") else "#e8dcc0"
        text.append(_entry(sid, f"{sid}.ply", "bone", sid, "skeleton", "skeleton", colour, _side(sid), level))
    (root / "atlas.toml").write_text("\n".join(text))
    return root, rebuilt


def dev_atlas(root: Path) -> Path:
    """Build the test atlas into ``root`` (for looking at it: ``python tests/lumbar_atlas.py DIR``)."""
    return build_lumbar_atlas(root)[0]


if __name__ == "__main__":
    import sys

    print(dev_atlas(Path(sys.argv[1])))
