"""Turn BodyParts3D mesh files into a complete Dorsum atlas folder.

Stages: read every concept into Dorsum's RAS frame; find the spine landmarks and centre the
column on x = 0; repair (close) the vertebrae, sacrum, discs and every muscle; rebuild the lumbar
region (:func:`viewer.atlas_import.lumbar.rebuild_lumbar`); bring each mesh to its triangle
budget; write the PLY files, ``atlas.toml`` and the licence notice. The caller (``dorsum atlas
import``) finds the files and moves the finished folder into place.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tomli_w
import trimesh

from viewer.atlas import MeshData
from viewer.atlas_import import landmarks, repair
from viewer.atlas_import.catalogue import Catalogue, Planned, load_catalogue
from viewer.errors import DorsumError
from viewer.levels import VERTEBRAE

SOURCE_NAME = "BodyParts3D"
CREDIT_LINE = ("BodyParts3D, © The Database Center for Life Science licensed under "
               "CC Attribution-Share Alike 2.1 Japan")
LICENCE = "CC-BY-SA-2.1-JP"
NOTICE_FILE = "NOTICE-BodyParts3D.md"
CITATION = ("Mitsuhashi N, Fujieda K, Tamura T, Kawamoto S, Takagi T, Okubo K. BodyParts3D: 3D structure "
            "database for anatomical concepts. Nucleic Acids Research 37 (Database issue): D782-D785 (2009).")
ATLAS_NAME = "BodyParts3D back atlas"
ATLAS_VERSION = "1.0.0"

#: Share of a muscle's source triangles kept, and the bounds of its budget (triangles).
MUSCLE_KEEP, MUSCLE_MIN, MUSCLE_MAX = 0.7, 1500, 24000
#: Triangles of a repaired vertebra or disc: a multiple of the source, with a floor; sacrum apart.
VERTEBRA_KEEP, VERTEBRA_MIN, SACRUM_TRIANGLES, DISC_MIN = 1.1, 3000, 12000, 1200
#: Largest budget of any other bone (their source meshes are already light, except ribs and skull).
BONE_MAX = {"skull": 24000, "scapula_left": 10000, "scapula_right": 10000}
OTHER_BONE_MAX = 4500
#: Structures closed through the voxel grid besides the muscles.
CLOSED_BONES = ("vertebra_", "sacrum", "disc_")

#: Worker processes for the repair (the machine's cores, at most this many).
MAX_WORKERS = 4

SIDE_CODE = {"left": 0, "right": 1, "midline": 2}

Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class ImportSummary:
    """What an import made and what its sources lacked."""

    structures: int
    triangles: int
    missing_optional: tuple[str, ...]
    notes: tuple[str, ...]


def missing_required(fma_ids: Iterable[int]) -> list[str]:
    """Lines such as ``"FMA13075 fourth lumbar vertebra"`` for each required concept absent."""
    return load_catalogue().missing(fma_ids, required=True)


def build_atlas_from_files(files: Mapping[int, Sequence[Path]], out: Path, *,
                           progress: Progress = lambda stage, fraction: None) -> ImportSummary:
    """Build a complete atlas in the empty folder ``out`` from BodyParts3D mesh files.

    Parameters
    ----------
    files : mapping of FMA concept id to mesh files
        One or more files per concept (element files of one concept are concatenated); OBJ,
        GLB/glTF, STL or PLY in BodyParts3D's frame. Unknown concepts are ignored.
    out : Path
        Empty folder; receives ``atlas.toml``, ``bones/*.ply``, ``muscles/*.ply`` and the notice.
    progress : callable(stage, fraction)
        Called as each stage advances, fraction in [0, 1].

    Raises
    ------
    DorsumError
        When required concepts are missing (naming them) or a mesh file is empty or corrupt.
    """
    catalogue = load_catalogue()
    lacking = catalogue.missing(files.keys(), required=True)
    if lacking:
        raise DorsumError("the source lacks required structures: " + "; ".join(lacking))
    timer = _StageTimer(progress)
    planned = [s for s in catalogue.structures if s.fma and all(f in files for f in s.fma)]
    partial = [s for s in catalogue.structures if s.fma and s not in planned and any(f in files for f in s.fma)]
    planned += [s for s in partial if s.id == "skull"]  # the skull is drawn from whatever bones are there

    sources = _read_sources(files, catalogue, timer)
    raw = {s.id: _assemble(s, sources) for s in planned}
    raw = {sid: mesh for sid, mesh in raw.items() if mesh is not None}

    timer.start("landmarks")
    spine = landmarks.spine_centres(raw)
    shift = np.array([-landmarks.midline_offset(spine), 0.0, 0.0])
    raw = {sid: MeshData(m.vertices + shift, m.faces) for sid, m in raw.items()}
    spine = {name: c + shift for name, c in spine.items()}
    timer.done()

    by_id = {s.id: s for s in planned}
    meshes = _repair_all(raw, by_id, timer)
    rebuilt = _lumbar(meshes, by_id, spine, timer)
    # The rebuild's joins can leave a crumb; every muscle is one clean closed surface.
    meshes.update({sid: repair.drop_small_pieces(mesh) for sid, mesh in rebuilt.items()})
    meshes = {sid: keep_to_own_side(mesh, _side_of(sid, by_id)) for sid, mesh in meshes.items()}
    present = [s for s in catalogue.structures if s.id in meshes]
    present += [catalogue.planned_or_guessed(sid) for sid in meshes if sid not in {s.id for s in present}]

    timer.start("writing")
    triangles = _write_atlas(out, catalogue, present, meshes, spine)
    timer.done()
    missing_optional = tuple(catalogue.missing(files.keys(), required=False))
    notes = (f"BodyParts3D x offset removed: {shift[0]:+.1f} mm (body centres centred on x = 0)",
             *timer.lines())
    return ImportSummary(len(present), triangles, missing_optional, notes)


# -- stages ------------------------------------------------------------------------------------
def _read_sources(files: Mapping[int, Sequence[Path]], catalogue: Catalogue,
                  timer: _StageTimer) -> dict[int, MeshData]:
    timer.start("reading")
    wanted = [f for f in catalogue.known_fma if f in files]
    sources = {}
    for i, fma in enumerate(wanted):
        sources[fma] = repair.read_source([Path(p) for p in files[fma]])
        timer.advance((i + 1) / len(wanted))
    timer.done()
    return sources


def _assemble(structure: Planned, sources: Mapping[int, MeshData]) -> MeshData | None:
    parts = [sources[f] for f in structure.fma if f in sources]
    if not parts:
        return None
    mesh = repair.concatenate(parts) if len(parts) > 1 else parts[0]
    if structure.upper_mm > 0:
        mesh = repair.keep_upper(mesh, structure.upper_mm)
    return repair.drop_strays(mesh, structure.side) if not structure.split else mesh


def _repair_all(raw: Mapping[str, MeshData], by_id: Mapping[str, Planned],
                timer: _StageTimer) -> dict[str, MeshData]:
    """Every structure repaired and within budget, the work shared among the CPU cores."""
    out: dict[str, MeshData] = {}
    workers = max(1, min(MAX_WORKERS, os.cpu_count() or 1))
    context = multiprocessing.get_context("spawn")  # fork is unsafe once VTK or Qt threads exist
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        for stage, members in (("bones", [s for s in raw if by_id[s].kind != "muscle"]),
                               ("muscles", [s for s in raw if by_id[s].kind == "muscle"])):
            timer.start(stage)
            # Largest first, so that no big job is left running alone at the end.
            members.sort(key=lambda sid: -float(np.prod(np.ptp(raw[sid].vertices, axis=0))))
            jobs = {pool.submit(_repair_one, by_id[sid], raw[sid]): sid for sid in members}
            for i, job in enumerate(as_completed(jobs)):
                result = job.result()
                if len(result.faces):  # half of a two-sided mesh with nothing on that side is left out
                    out[jobs[job]] = result
                timer.advance((i + 1) / len(members))
            timer.done()
    return out


def _repair_one(structure: Planned, mesh: MeshData) -> MeshData:
    n_source = len(mesh.faces)
    try:
        if structure.kind == "muscle":
            closed = repair.close_surface(mesh, repair.MUSCLE_SPACING_MM, split=structure.split)
            if len(closed.faces) == 0:
                return closed
            target = int(np.clip(MUSCLE_KEEP * n_source / (2 if structure.split else 1), MUSCLE_MIN, MUSCLE_MAX))
            return repair.snap_to_source(repair.decimate(closed, target), mesh, keep_plane_x=bool(structure.split))
        if structure.id.startswith(CLOSED_BONES):
            closed = repair.close_surface(mesh, repair.BONE_SPACING_MM)
            if structure.id == "sacrum":
                target = SACRUM_TRIANGLES
            elif structure.kind == "disc":
                target = max(DISC_MIN, n_source)
            else:
                target = max(VERTEBRA_MIN, int(VERTEBRA_KEEP * n_source))
            return repair.decimate(closed, target)
    except DorsumError as exc:
        raise DorsumError(f"{structure.id} (FMA{', FMA'.join(map(str, structure.fma))}): {exc}") from None
    return repair.decimate(mesh, BONE_MAX.get(structure.id, OTHER_BONE_MAX), closed=False)


def _lumbar(meshes: Mapping[str, MeshData], by_id: Mapping[str, Planned],
            spine: Mapping[str, np.ndarray], timer: _StageTimer) -> dict[str, MeshData]:
    """The lumbar rebuild's meshes, plus level data on whatever multifidus it leaves as imported."""
    from viewer.atlas_import.lumbar import rebuild_lumbar

    timer.start("lumbar")
    bones = {sid: m for sid, m in meshes.items() if by_id[sid].kind != "muscle"}
    muscles = {sid: m for sid, m in meshes.items() if by_id[sid].kind == "muscle"}
    rebuilt = dict(rebuild_lumbar(bones, muscles, spine))
    for side in ("left", "right"):
        sid = f"multifidus_{side}"
        mesh = rebuilt.get(sid, meshes.get(sid))
        if mesh is not None and not {"segment", "side"} <= set(mesh.point_data):
            rebuilt[sid] = with_level_data(mesh, spine, side)
    timer.done()
    return rebuilt


#: A muscle of one side keeps this far (mm) from the midline plane: left and right meet, never overlap.
MIDLINE_CLEARANCE_MM = 0.2


def _side_of(sid: str, by_id: Mapping[str, Planned]) -> str:
    planned = by_id.get(sid)
    if planned is not None:
        return planned.side if planned.kind == "muscle" else "midline"
    return "left" if sid.endswith("_left") else "right" if sid.endswith("_right") else "midline"


def keep_to_own_side(mesh: MeshData, side: str) -> MeshData:
    """A left or right muscle with the vertices that reach across the midline laid on it instead.

    BodyParts3D's paired muscles overlap their partners by up to 5 mm at the midline (trapezius,
    rhomboids); where the two halves meet at the nuchal and supraspinous ligaments they now touch.
    """
    if side not in ("left", "right"):
        return mesh
    x = mesh.vertices[:, 0]
    clamped = np.maximum(x, MIDLINE_CLEARANCE_MM) if side == "right" else np.minimum(x, -MIDLINE_CLEARANCE_MM)
    if np.array_equal(clamped, x):
        return mesh
    vertices = mesh.vertices.copy()
    vertices[:, 0] = clamped
    return MeshData(vertices, mesh.faces, mesh.point_data)


def with_level_data(mesh: MeshData, spine: Mapping[str, np.ndarray], side: str) -> MeshData:
    """``mesh`` carrying per-vertex ``segment`` (float32, level coordinate) and ``side`` (int32)."""
    from viewer.measure import spine_levels

    data = dict(mesh.point_data)
    data["segment"] = spine_levels(mesh.vertices, spine).astype(np.float32)
    data["side"] = np.full(len(mesh.vertices), SIDE_CODE[side], dtype=np.int32)
    return MeshData(mesh.vertices, mesh.faces, data)


# -- writing -----------------------------------------------------------------------------------
def _write_atlas(out: Path, catalogue: Catalogue, present: Sequence[Planned],
                 meshes: Mapping[str, MeshData], spine: Mapping[str, np.ndarray]) -> int:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for structure in present:
        folder = "muscles" if structure.kind in ("muscle", "fascia") else "bones"
        relative = f"{folder}/{structure.id}.ply"
        write_ply(meshes[structure.id], out / relative)
        entries.append(_entry(structure, relative, levels_spanned(structure, meshes[structure.id], spine)))
    (out / NOTICE_FILE).write_text(notice_text(), encoding="utf-8")
    manifest = {
        "atlas": {
            "name": ATLAS_NAME, "version": ATLAS_VERSION, "units": "mm", "frame": "RAS",
            "description": "Back muscles layer by layer on the BodyParts3D skeleton, imported by "
                           "'dorsum atlas import' (meshes repaired into closed surfaces).",
            "sources": [{"name": SOURCE_NAME, "version": "4.0", "licence": LICENCE,
                         "licence_file": NOTICE_FILE, "attribution": CREDIT_LINE}],
        },
        "layers": [{"name": layer.name, "depth": layer.depth, "colour": layer.colour,
                    "description": layer.description} for layer in catalogue.layers],
        "spine": [{"name": n, "centre": [round(float(c), 2) for c in spine[n]]} for n in VERTEBRAE if n in spine],
        "structures": entries,
    }
    text = "# Written by 'dorsum atlas import' from BodyParts3D files; do not edit by hand.\n\n"
    (out / "atlas.toml").write_text(text + tomli_w.dumps(manifest), encoding="utf-8")
    return int(sum(len(meshes[s.id].faces) for s in present))


def _entry(structure: Planned, relative: str, levels: list[str]) -> dict[str, object]:
    entry: dict[str, object] = {
        "id": structure.id, "name": structure.name, "muscle": structure.muscle, "group": structure.group,
        "side": structure.side, "kind": structure.kind, "layer": structure.layer,
        "colour": structure.colour, "mesh": relative,
    }
    if levels:
        entry["levels"] = levels
    teaching = {k: v for k, v in vars(structure.teaching).items() if v}
    if teaching:
        entry["teaching"] = teaching
    return entry


def levels_spanned(structure: Planned, mesh: MeshData, spine: Mapping[str, np.ndarray]) -> list[str]:
    """Vertebral levels a structure spans (vertebrae and discs: their own; others by height)."""
    if structure.id.startswith("vertebra_"):
        return [structure.id.split("_")[1].upper()]
    if structure.id == "sacrum":
        return ["S1"]
    if structure.kind == "disc":
        return [p.upper() for p in structure.id.split("_")[1:]]
    if structure.kind not in ("muscle", "fascia") or len(spine) < 2:
        return []
    names = [n for n in VERTEBRAE if n in spine]
    z = np.array([spine[n][2] for n in names])
    index = np.array([VERTEBRAE.index(n) for n in names], dtype=float)
    level = np.interp(-mesh.vertices[:, 2], -z, index)
    lo, hi = int(np.floor(level.min() + 0.5)), int(np.floor(level.max() + 0.5))
    return [n for n in VERTEBRAE[lo: hi + 1] if n in spine]


def write_ply(mesh: MeshData, path: Path) -> None:
    """Binary PLY with per-vertex data; distinct vertices never share a float32 position."""
    from viewer.atlas_build.volume import separate_coincident

    path.parent.mkdir(parents=True, exist_ok=True)
    vertices = separate_coincident(mesh.vertices, mesh.faces)
    tm = trimesh.Trimesh(vertices, mesh.faces, process=False)
    for name, values in mesh.point_data.items():
        tm.vertex_attributes[name] = np.asarray(values)
    path.write_bytes(trimesh.exchange.ply.export_ply(tm, encoding="binary", include_attributes=True))


def notice_text() -> str:
    """The licence notice written into an imported atlas folder."""
    return f"""# BodyParts3D in this atlas

The meshes in this folder were made by Dorsum's importer from files of **BodyParts3D**, the 3D
anatomy database of the Database Center for Life Science (DBCLS), Japan. Dorsum read the files
the user supplied, turned them into its own frame (RAS millimetres), closed the muscle, vertebra
and disc surfaces through a voxel grid, reduced their triangle counts and rebuilt the lumbar
muscles; the shapes are otherwise those of BodyParts3D.

Licence: Creative Commons Attribution-Share Alike 2.1 Japan (CC BY-SA 2.1 JP,
https://creativecommons.org/licenses/by-sa/2.1/jp/). The meshes here, being made from
BodyParts3D, carry the same licence: share them only under it, with the credit line below.
Dorsum's program code is not part of this data and keeps its own licence (Apache-2.0).

Credit line (show it wherever these meshes, or pictures made from them, are shown or shared):

> {CREDIT_LINE}

Cite: {CITATION}

Database licence page: https://dbarchive.biosciencedbc.jp/en/bodyparts3d/lic.html
"""


class _StageTimer:
    """Reports stage progress and keeps each stage's wall time for the summary."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.times: dict[str, float] = {}
        self.stage = ""
        self.t0 = 0.0

    def start(self, stage: str) -> None:
        self.stage, self.t0 = stage, time.perf_counter()
        self.progress(stage, 0.0)

    def advance(self, fraction: float) -> None:
        self.progress(self.stage, float(min(max(fraction, 0.0), 1.0)))

    def done(self) -> None:
        self.times[self.stage] = time.perf_counter() - self.t0
        self.progress(self.stage, 1.0)

    def lines(self) -> tuple[str, ...]:
        total = sum(self.times.values())
        return (f"time: {total:.0f} s (" + ", ".join(f"{k} {v:.1f} s" for k, v in self.times.items()) + ")",)
