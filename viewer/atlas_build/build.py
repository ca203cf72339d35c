"""Build the Dorsum atlas folder: bone and muscle meshes, ``atlas.toml``, provenance and licences.

:func:`build_atlas` is deterministic: the same installed packages give byte-identical files
(sorted iteration, fixed iteration counts, no random sampling, no timestamps), on any x86-64
machine: the build runs in a child process whose numerical libraries are pinned to one code path
(:data:`PINNED_ENVIRONMENT`); without that, numpy's AVX-512 and AVX2 loops and OpenBLAS's
per-CPU kernels order ties and round sums differently, and the files differ from CPU to CPU.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import trimesh

from viewer.atlas_build import fascicle_muscles, source, spine, volume
from viewer.atlas_build.fascicle_muscles import build_latissimus
from viewer.errors import DorsumError
from viewer.levels import VERTEBRAE

ATLAS_NAME = "Dorsum back-muscle atlas"
ATLAS_VERSION = "1.0.0"
VOXEL_MM = 1.5
TOLERANCE_MM = 0.2
CALIBRATION_ITERATIONS = 4
SIDE_CODE = {"left": 0, "right": 1, "midline": 2}


@dataclass(frozen=True)
class LayerInfo:
    """A layer of the atlas (see ``docs/atlas-format.md``)."""

    name: str
    depth: int
    colour: str
    description: str


LAYERS: tuple[LayerInfo, ...] = (
    LayerInfo("superficial", 1, "#b5433a",
              "Extrinsic back muscles of the superficial group: they lie on the back but move the "
              "shoulder girdle and arm, and are supplied by ventral rami or the accessory nerve."),
    LayerInfo("intermediate", 2, "#d9774b",
              "Intrinsic back muscles, intermediate layer: the erector spinae columns (iliocostalis "
              "laterally, longissimus in the middle, spinalis medially). Dorsal rami supply them. "
              "The serratus posterior muscles and splenius are not modelled."),
    LayerInfo("deep", 3, "#8e2a4b",
              "Intrinsic back muscles, deep layer: the transversospinales (semispinalis, multifidus, "
              "rotatores), short fascicles running from transverse to spinous processes, in the "
              "groove beside the spinous processes. Segmental supply from medial branches of dorsal rami."),
    LayerInfo("skeleton", 4, "#e8dcc0",
              "Skull, vertebral column, rib cage, pelvis and shoulder girdle from the MyoSuite models."),
)


@dataclass(frozen=True)
class MuscleInfo:
    """Teaching metadata of one muscle (both sides share it)."""

    name: str
    group: str
    layer: str
    origin: str
    insertion: str
    innervation: str
    action: str
    notes: str = ""


MUSCLES: dict[str, MuscleInfo] = {
    "trapezius": MuscleInfo(
        "Trapezius", "extrinsic_superficial", "superficial",
        "Medial third of the superior nuchal line, external occipital protuberance, ligamentum "
        "nuchae and the spinous processes of C7 to T12.",
        "Lateral third of the clavicle, the acromion and the spine of the scapula.",
        "Accessory nerve (cranial nerve XI) for movement; C3-C4 branches carry sensation.",
        "Upper fibres lift the shoulder, middle fibres pull the scapula toward the spine, lower "
        "fibres draw it down; upper and lower fibres together turn the glenoid upward.",
    ),
    "latissimus_dorsi": MuscleInfo(
        "Latissimus dorsi", "extrinsic_superficial", "superficial",
        "Spinous processes of T7 to T12, the thoracolumbar fascia (and through it the lumbar and "
        "sacral spinous processes), the posterior iliac crest and the lowest three or four ribs.",
        "Floor of the intertubercular groove of the humerus.",
        "Thoracodorsal nerve (C6-C8).",
        "Extends, adducts and medially rotates the arm; pulls the trunk up toward fixed arms.",
        "The model provides three fibre bundles from the lower thoracic spine; the lumbar and iliac "
        "part is added along the same fan, and the sheet is laid over the deeper muscles.",
    ),
    "rhomboid_major": MuscleInfo(
        "Rhomboid major", "extrinsic_superficial", "superficial",
        "Spinous processes of T2 to T5 and the supraspinous ligament.",
        "Medial border of the scapula from the root of its spine to the inferior angle.",
        "Dorsal scapular nerve (C5, sometimes C4).",
        "Pulls the scapula toward the spine, turns the glenoid down and holds the scapula on the chest wall.",
    ),
    "rhomboid_minor": MuscleInfo(
        "Rhomboid minor", "extrinsic_superficial", "superficial",
        "Lower ligamentum nuchae and the spinous processes of C7 and T1.",
        "Medial border of the scapula at the root of the scapular spine.",
        "Dorsal scapular nerve (C5, sometimes C4 or C6).",
        "Works with rhomboid major: retracts the scapula and turns the glenoid downward.",
    ),
    "levator_scapulae": MuscleInfo(
        "Levator scapulae", "extrinsic_superficial", "superficial",
        "Transverse processes of C1 to C4.",
        "Superior angle and upper medial border of the scapula.",
        "Branches of C3-C4 and the dorsal scapular nerve (C5).",
        "Raises the scapula and turns the glenoid down; with the scapula fixed, bends the neck to its side.",
    ),
    "iliocostalis": MuscleInfo(
        "Iliocostalis", "erector_spinae", "intermediate",
        "Lumbar part: posterior iliac crest and the common erector spinae tendon on the sacrum. "
        "Thoracic part: angles of the lower six ribs.",
        "Lumbar part: tips of the L1-L4 transverse processes and the angles of the lower ribs. "
        "Thoracic part: angles of the upper ribs and the C7 transverse process.",
        "Lateral branches of the dorsal rami.",
        "Both sides: extend the trunk. One side: bends the trunk to that side.",
        "Lateral column of the erector spinae. Built from the model's lumbar fascicles (IL_L*) and "
        "its iliac-to-rib fascicles (IL_R5-R12).",
    ),
    "longissimus": MuscleInfo(
        "Longissimus", "erector_spinae", "intermediate",
        "Lumbar part: accessory and transverse processes of L1-L5, reaching down to the iliac crest "
        "near the posterior superior iliac spine. Thoracic part: the erector spinae aponeurosis on "
        "the sacrum and lumbar spinous processes.",
        "Tips of the thoracic transverse processes and the lower nine or ten ribs.",
        "Dorsal rami (the lumbar part by their intermediate branches).",
        "Extends the spine and bends it to the same side.",
        "Middle column of the erector spinae. Below L3 the thoracic part is a flat tendon sheet "
        "(the erector spinae aponeurosis) lying over the multifidus, so it is not drawn as muscle there.",
    ),
    "spinalis": MuscleInfo(
        "Spinalis", "erector_spinae", "intermediate",
        "Spinous processes of T11 to L2.",
        "Spinous processes of the upper thoracic vertebrae (about T2 to T8).",
        "Dorsal rami.",
        "Extends the thoracic spine.",
        "Medial, thinnest column of the erector spinae; its cervical part is inconstant.",
    ),
    "semispinalis": MuscleInfo(
        "Semispinalis", "transversospinales", "deep",
        "Transverse processes of the thoracic vertebrae (thoracis and cervicis) and the articular "
        "processes of C4-C7 (capitis).",
        "Spinous processes four to six levels higher (thoracis, cervicis) and the occiput between "
        "the nuchal lines (capitis).",
        "Dorsal rami.",
        "Extends the spine and head and turns them to the opposite side.",
        "The longest transversospinalis fascicles; no lumbar part.",
    ),
    "multifidus": MuscleInfo(
        "Multifidus", "transversospinales", "deep",
        "Dorsal surface of the sacrum down to the fourth sacral foramen, the erector spinae "
        "aponeurosis, the posterior superior iliac spine and posterior sacroiliac ligaments, and "
        "the mammillary processes of the lumbar vertebrae.",
        "Spinous processes and laminae two to five levels higher (in the lumbar spine, L1 to L5).",
        "Medial branch of the dorsal ramus of the same segment: the fascicles hanging from one "
        "spinous process are supplied by that segment's nerve alone.",
        "Holds and extends the lumbar segments and turns the spine to the opposite side.",
        "Origin is taken at the caudal end, as in Gray's anatomy; Bogduk describes the same fascicles "
        "from the spinous processes downward. Only the lumbar part (L1 to the sacrum) is in the "
        "source model. The per-vertex 'segment' data gives each point's vertebral level.",
    ),
    "rotatores": MuscleInfo(
        "Rotatores", "transversospinales", "deep",
        "Transverse process of a vertebra.",
        "Lamina and base of the spinous process one level higher (brevis) or two levels higher (longus).",
        "Medial branches of the dorsal rami.",
        "Rotate and extend the spine segment by segment; rich in muscle spindles, so they also sense position.",
        "Best developed in the thoracic spine.",
    ),
}

FASCIA_ID = "thoracolumbar_fascia"
FASCIA_ENTRY: dict[str, object] = {
    "name": "Thoracolumbar fascia (posterior layer)", "muscle": FASCIA_ID, "group": "fasciae",
    "side": "midline", "kind": "fascia", "layer": "superficial", "colour": "#ece6d6",
    "teaching": {
        "origin": "Medially: the lumbar and sacral spinous processes and supraspinous ligaments.",
        "insertion": "Laterally and below: the iliac crest; it blends with the aponeurosis of "
                     "latissimus dorsi and, at the lateral border of the erector spinae, with the "
                     "deeper layers of the fascia.",
        "innervation": "Richly supplied with sensory endings by the dorsal rami; a recognised pain source.",
        "action": "Encloses the erector spinae and multifidus like a retinaculum; transmits the pull "
                  "of latissimus dorsi and the abdominal muscles to the lumbar spine.",
        "notes": "Drawn as its posterior layer over the lumbar region only (T12 to the sacrum), "
                 "about 2 mm thick so that it renders. It is dissected after latissimus dorsi and "
                 "before the erector spinae, so it sits in the superficial layer.",
    },
}

#: Muscles this module builds itself; the rest come from the landmark builder.
FASCICLE_MUSCLES = ("multifidus", "iliocostalis", "longissimus", "latissimus_dorsi")

BONE_NAMES: dict[str, tuple[str, str]] = {
    "skull": ("Skull", "skull"),
    "sacrum": ("Sacrum", "vertebral_column"),
    "hip_bone_left": ("Hip bone", "pelvic_girdle"),
    "hip_bone_right": ("Hip bone", "pelvic_girdle"),
    "rib_cage": ("Rib cage and sternum", "thoracic_cage"),
    "scapula_left": ("Scapula", "shoulder_girdle"),
    "scapula_right": ("Scapula", "shoulder_girdle"),
    "clavicle_left": ("Clavicle", "shoulder_girdle"),
    "clavicle_right": ("Clavicle", "shoulder_girdle"),
    "humerus_left": ("Humerus", "upper_limb"),
    "humerus_right": ("Humerus", "upper_limb"),
    **{f"vertebra_{v.lower()}": (f"{v} vertebra", "vertebral_column") for v in VERTEBRAE if v != "S1"},
}
BONE_NAMES["vertebra_c1"] = ("C1 vertebra (atlas)", "vertebral_column")
BONE_NAMES["vertebra_c2"] = ("C2 vertebra (axis)", "vertebral_column")

ATTRIBUTION = (
    "Bone meshes and muscle fascicle paths from the MyoSuite musculoskeletal models (myo-sim "
    "package, Apache-2.0; MyoHub / MyoSuite authors). The torso model derives from the SimTK "
    "'Constrained Lumbar Spine model - 210'. Dorsum converted the geometry to RAS millimetres, "
    "smoothed the bones and built muscle volumes from the fascicle paths and bone landmarks."
)


def side_of(structure_id: str) -> str:
    """``"left"``, ``"right"`` or ``"midline"`` from a structure id's suffix."""
    for side in ("left", "right"):
        if structure_id.endswith("_" + side):
            return side
    return "midline"


def _muscle_of(structure_id: str) -> str:
    side = side_of(structure_id)
    return structure_id if side == "midline" else structure_id[: -len(side) - 1]


def levels_spanned(mesh: trimesh.Trimesh, centres: Mapping[str, np.ndarray]) -> list[str]:
    """Vertebral levels the mesh spans beside the spine (|x| < 45 mm), by height."""
    v = np.asarray(mesh.vertices)
    # Far behind the curved spine the level planes cross; for this summary the height of the
    # part beside the spine, read against the body centres' heights, is the robust measure.
    near = v[np.abs(v[:, 0]) < 45.0]
    z = (near if len(near) else v)[:, 2]
    zc = np.array([centres[level][2] for level in VERTEBRAE])
    lv = np.interp(-z, -zc, np.arange(len(VERTEBRAE), dtype=float))
    lo, hi = int(np.floor(lv.min() + 0.5)), int(np.floor(lv.max() + 0.5))
    return list(VERTEBRAE[lo : hi + 1])


def with_level_data(mesh: trimesh.Trimesh, centres: Mapping[str, np.ndarray], side: str) -> trimesh.Trimesh:
    """Copy of a mesh carrying per-vertex ``segment`` (float32) and ``side`` (int32) data."""
    out = trimesh.Trimesh(np.asarray(mesh.vertices, dtype=np.float32).astype(np.float64), mesh.faces, process=False)
    out.vertex_attributes["segment"] = spine.level_coordinate(out.vertices, centres).astype(np.float32)
    out.vertex_attributes["side"] = np.full(len(out.vertices), SIDE_CODE[side], dtype=np.int32)
    return out


def _landmark_muscles(
    bones: Mapping[str, trimesh.Trimesh], deeper: Mapping[str, trimesh.Trimesh],
    rotatores: Mapping[str, trimesh.Trimesh],
) -> dict[str, trimesh.Trimesh]:
    from viewer.atlas_build import landmark_muscles

    return symmetric(trimmed_at_midline(landmark_muscles.build_landmark_muscles(bones, deeper, rotatores)))


def mirrored(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Mirror image of a mesh in the midsagittal plane (x -> -x), still wound outward."""
    vertices = np.asarray(mesh.vertices, dtype=np.float64) * np.array([-1.0, 1.0, 1.0])
    return trimesh.Trimesh(vertices, np.asarray(mesh.faces)[:, ::-1].copy(), process=False)


def symmetric(meshes: Mapping[str, trimesh.Trimesh]) -> dict[str, trimesh.Trimesh]:
    """Copy of ``meshes`` whose left structures are the mirror images of the right ones.

    The bones are mirror-symmetric (the vertebrae to 0.04 mm, the sacrum to 0.7 mm) but the
    source model's fascicle paths are not; built side by side, the left longissimus reached 8 %
    of its vertices across the midline and its CSA differed from the right by up to 39 %. The
    right side is built and calibrated; the left one is its mirror image.
    """
    out = dict(meshes)
    for sid in sorted(meshes):
        if sid.endswith("_left") and sid[: -len("left")] + "right" in meshes:
            out[sid] = mirrored(meshes[sid[: -len("left")] + "right"])
    return out


#: Muscles that are not built in the distance-field domain (the sheets) and are trimmed at the
#: midline afterwards; the others are kept off it while they are built (``midline=True``).
SHEET_MUSCLES = ("trapezius", "rhomboid_major", "rhomboid_minor")


def trimmed_at_midline(meshes: Mapping[str, trimesh.Trimesh]) -> dict[str, trimesh.Trimesh]:
    """Copy of ``meshes`` in which the sheet muscles end ``MIDLINE_GAP_MM`` short of the midline."""
    out = dict(meshes)
    for sid in sorted(meshes):
        if _muscle_of(sid) not in SHEET_MUSCLES or side_of(sid) == "midline":
            continue
        solid = volume.as_manifold(meshes[sid])
        if solid is None:
            continue
        sign = 1.0 if side_of(sid) == "right" else -1.0
        kept = solid.trim_by_plane((sign, 0.0, 0.0), volume.MIDLINE_GAP_MM).to_mesh()
        mesh = trimesh.Trimesh(np.asarray(kept.vert_properties)[:, :3].astype(np.float64),
                               np.asarray(kept.tri_verts, dtype=np.int64), process=False)
        if mesh.is_watertight and len(mesh.faces):
            out[sid] = volume.largest_components(mesh, min_fraction=0.05)
    return out


def _symmetric_result(result: fascicle_muscles.FascicleMuscles) -> fascicle_muscles.FascicleMuscles:
    return fascicle_muscles.FascicleMuscles(symmetric(result.meshes), result.calibration)


def _toml_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _toml_str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(round(value, 4))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _table(header: str, items: Mapping[str, object]) -> list[str]:
    lines = [header] if header else []
    lines += [f"{k} = {_toml_value(v)}" for k, v in items.items()]
    return lines + [""]


def manifest_text(
    structures: list[dict[str, object]], centres: Mapping[str, np.ndarray], versions: Mapping[str, str]
) -> str:
    """The ``atlas.toml`` text (see ``docs/atlas-format.md``)."""
    lines = ["# Generated by viewer.atlas_build.build_atlas; do not edit by hand.", ""]
    lines += _table("[atlas]", {
        "name": ATLAS_NAME, "version": ATLAS_VERSION, "units": "mm", "frame": "RAS",
        "description": "Human back muscles layer by layer (superficial, intermediate, deep) on a "
                       "real skeleton, with the lumbar multifidus carrying vertebral-level data.",
    })
    lines += _table("[[atlas.sources]]", {
        "name": "myo-sim", "version": versions["myo-sim"], "licence": "Apache-2.0",
        "licence_file": "LICENSES/myo-sim-Apache-2.0.txt", "attribution": ATTRIBUTION,
    })
    for layer in LAYERS:
        lines += _table("[[layers]]", {
            "name": layer.name, "depth": layer.depth, "colour": layer.colour, "description": layer.description,
        })
    for level in VERTEBRAE:
        lines += _table("[[spine]]", {"name": level, "centre": [round(float(c), 2) for c in centres[level]]})
    for entry in structures:
        entry = dict(entry)
        teaching = entry.pop("teaching", None)
        lines += _table("[[structures]]", entry)
        if teaching:
            lines += _table("[structures.teaching]", teaching)
    return "\n".join(lines).rstrip("\n") + "\n"


def _structure_entry(sid: str, mesh_rel: str, levels: list[str]) -> dict[str, object]:
    side = side_of(sid)
    if sid == FASCIA_ID:
        return {"id": sid, **FASCIA_ENTRY, "mesh": mesh_rel, "levels": levels}
    if sid in BONE_NAMES:
        name, group = BONE_NAMES[sid]
        return {"id": sid, "name": name, "muscle": sid, "group": group, "side": side, "kind": "bone",
                "layer": "skeleton", "mesh": mesh_rel, "levels": levels}
    muscle = _muscle_of(sid)
    info = MUSCLES[muscle]
    teaching = {"origin": info.origin, "insertion": info.insertion, "innervation": info.innervation,
                "action": info.action}
    if info.notes:
        teaching["notes"] = info.notes
    return {"id": sid, "name": info.name, "muscle": muscle, "group": info.group, "side": side,
            "kind": "muscle", "layer": info.layer, "mesh": mesh_rel, "levels": levels, "teaching": teaching}


def closed_for_any_reader(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Copy of a closed mesh whose distinct vertices never share a (float32) position.

    Readers that merge equal positions (trimesh's default) would otherwise fuse pinch-point
    vertices into non-manifold ones and see the surface as open.
    """
    vertices = volume.separate_coincident(np.asarray(mesh.vertices), np.asarray(mesh.faces))
    out = trimesh.Trimesh(vertices, mesh.faces, process=False)
    out.vertex_attributes.update(mesh.vertex_attributes)
    return out


def write_ply(mesh: trimesh.Trimesh, path: Path) -> None:
    """Binary little-endian PLY with per-vertex attributes (deterministic bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(trimesh.exchange.ply.export_ply(mesh, encoding="binary", include_attributes=True))


def package_versions() -> dict[str, str]:
    """Versions of every package whose output shapes the atlas."""
    names = ("myo-sim", "mujoco", "numpy", "scipy", "scikit-image", "trimesh", "manifold3d")
    return {n: metadata.version(n) for n in names}


def provenance_text(versions: Mapping[str, str], calibration: Mapping[str, Mapping[str, object]]) -> str:
    """``PROVENANCE.toml``: package versions, build parameters and calibration results."""
    lines = ["# How this atlas was built (viewer.atlas_build.build_atlas).", ""]
    lines += _table("[packages]", {k: versions[k] for k in sorted(versions)})
    # Byte identity holds for these settings on x86-64 (see PINNED_ENVIRONMENT and docs/atlas.md).
    lines += _table("[build_environment]", dict(PINNED_ENVIRONMENT))
    lines += _table("[parameters]", {
        "model": source.MODEL_NAME, "posture": "neutral (qpos0)", "voxel_mm": VOXEL_MM,
        "decimation_tolerance_mm": TOLERANCE_MM, "specific_tension_n_per_mm2": fascicle_muscles.SPECIFIC_TENSION,
        "path_step_mm": fascicle_muscles.PATH_STEP_MM, "end_radius_fraction": fascicle_muscles.END_RADIUS_FRACTION,
        "max_snap_mm": fascicle_muscles.MAX_SNAP_MM,
        "longissimus_aponeurosis_level": fascicle_muscles.LONGISSIMUS_APONEUROSIS_LEVEL,
        "multifidus_blend_mm": fascicle_muscles.MULTIFIDUS_BLEND_MM,
        "thoracic_lift_end_level": fascicle_muscles.THORACIC_LIFT_END,
        "latissimus_fascicles": fascicle_muscles.LATISSIMUS_FASCICLES,
        "latissimus_radius_mm": list(fascicle_muscles.LATISSIMUS_RADIUS_MM),
        "fascia_thickness_mm": fascicle_muscles.FASCIA_THICKNESS_MM,
        "fascia_half_width_mm": fascicle_muscles.FASCIA_HALF_WIDTH_MM,
        "cut_blend_mm": volume.CUT_BLEND_MM,
        "midline_gap_mm": volume.MIDLINE_GAP_MM,
        "spinous_ridge_half_width_mm": volume.RIDGE_HALF_WIDTH_MM,
        "spinous_ridge_window_mm": volume.RIDGE_WINDOW_MM,
        "thoracic_multifidus_radius_mm": fascicle_muscles.THORACIC_MULTIFIDUS_RADIUS_MM,
        "thoracic_multifidus_lowest_origin": fascicle_muscles.THORACIC_MULTIFIDUS_LOWEST,
        "multifidus_lift_end_level": fascicle_muscles.MULTIFIDUS_LIFT_END,
        "symmetry": "right side built and calibrated, left side its mirror image",
        "calibration_iterations": CALIBRATION_ITERATIONS,
        "overlap_priority": ["bone", "multifidus", "longissimus", "iliocostalis", "superficial"],
        "landmark_muscles": "viewer.atlas_build.landmark_muscles (built in two passes, see docs/atlas.md)",
    })
    for group in sorted(calibration):
        record = dict(calibration[group])
        target = record.pop("csa_target_cm2")
        built = record.pop("csa_built_cm2")
        lines += _table(f"[calibration.{group}]", record)
        lines += _table(f"[calibration.{group}.csa_target_cm2]", {k: float(v) for k, v in target.items()})
        lines += _table(f"[calibration.{group}.csa_built_cm2]", {k: float(v) for k, v in built.items()})
    return "\n".join(lines).rstrip("\n") + "\n"


def licence_text() -> str:
    """The Apache-2.0 licence text shipped with myo-sim, with an attribution header."""
    dist = metadata.distribution("myo-sim")
    files = [f for f in (dist.files or []) if f.name.upper().startswith("LICENSE")]
    body = files[0].read_text() if files else ""
    header = (
        "The bone meshes and muscle paths in this atlas derive from myo-sim (MyoSuite models),\n"
        "https://github.com/MyoHub/myo_sim, licensed under the Apache License 2.0 reproduced below.\n"
        "Dorsum modified the geometry (frame conversion, smoothing, muscle volume construction).\n\n"
    )
    return header + body


#: Set in the child process that runs the build with :data:`PINNED_ENVIRONMENT`.
PINNED_MARKER = "DORSUM_ATLAS_BUILD_PINNED"
#: Environment of the build process. numpy dispatches its loops (sorting, sums, transcendental
#: functions) at run time to the widest SIMD the CPU has; unstable sorts then order equal keys
#: differently (trimesh's connected pieces, hence face order and the seeded surface samples) and
#: float results differ in the last bits. OpenBLAS likewise picks a kernel per CPU and may use
#: several threads. Measured: the same packages gave different cervical vertebrae (face order)
#: and every muscle on an AVX-512 CPU and on an AVX2 one. Pinned: numpy to its x86-64-v2
#: baseline loops, OpenBLAS to its Nehalem (SSE, no FMA) kernels and one thread, string hashing
#: to a fixed seed.
PINNED_ENVIRONMENT: dict[str, str] = {
    "NPY_ENABLE_CPU_FEATURES": "X86_V2",
    "OPENBLAS_CORETYPE": "Nehalem",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "PYTHONHASHSEED": "0",
}


def pinned_environment() -> dict[str, str]:
    """The current environment plus :data:`PINNED_ENVIRONMENT` (the CPU pins on x86-64 only)."""
    env = dict(os.environ)
    pins = dict(PINNED_ENVIRONMENT)
    if platform.machine().lower() not in ("x86_64", "amd64"):
        # Other architectures have other SIMD names and kernels: their atlas is not byte-identical.
        pins = {k: v for k, v in pins.items() if k not in ("NPY_ENABLE_CPU_FEATURES", "OPENBLAS_CORETYPE")}
    env.update(pins)
    env[PINNED_MARKER] = "1"
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([package_root, *filter(None, [env.get("PYTHONPATH")])])
    return env


def build_atlas(out_dir: Path) -> None:
    """Build the whole atlas into ``out_dir`` (created; earlier ``bones/`` and ``muscles/`` replaced).

    The work runs in a child Python process with :func:`pinned_environment`, so that the files do
    not depend on the CPU (see :data:`PINNED_ENVIRONMENT`); inside that process it runs directly.

    Parameters
    ----------
    out_dir : Path
        Atlas folder, e.g. the repository's ``meshes/``.

    Raises
    ------
    DorsumError
        If the build process fails (its own error is printed on stderr first).
    """
    if os.environ.get(PINNED_MARKER) == "1":
        _build_atlas_here(Path(out_dir))
        return
    done = subprocess.run([sys.executable, "-m", "viewer.atlas_build.build", str(Path(out_dir).resolve())],
                          env=pinned_environment(), check=False)
    if done.returncode != 0:
        raise DorsumError(f"the atlas build process failed (exit status {done.returncode}); see the error above")


def _build_atlas_here(out_dir: Path) -> None:
    bones = source.load_bones()
    centres = spine.spine_centres(bones)
    fascicles = source.load_fascicles()
    from viewer.atlas_build.landmark_muscles import build_rotatores

    # The rotatores are the deepest layer and rest on bone alone: built first, the multifidus
    # (calibrated) is laid over them. Every muscle is built on the right and mirrored.
    rotatores = symmetric(build_rotatores(bones))
    built = _symmetric_result(fascicle_muscles.build_fascicle_muscles(
        fascicles, bones, centres, voxel_mm=VOXEL_MM, tolerance_mm=TOLERANCE_MM,
        calibration_iterations=CALIBRATION_ITERATIONS, deep_extra=rotatores,
    ))
    first_ld = symmetric(build_latissimus(fascicles, bones, built.meshes, voxel_mm=VOXEL_MM, tolerance_mm=TOLERANCE_MM))
    landmark = _landmark_muscles(bones, {**built.meshes, **first_ld}, rotatores)
    # Second pass: now that semispinalis, rotatores and spinalis exist, keep the erector spinae
    # behind the deep layer and latissimus behind both, as seen from behind (layer order).
    deep_extra = {k: v for k, v in landmark.items() if MUSCLES[_muscle_of(k)].layer == "deep"}
    built = _symmetric_result(fascicle_muscles.build_fascicle_muscles(
        fascicles, bones, centres, voxel_mm=VOXEL_MM, tolerance_mm=TOLERANCE_MM,
        deep_extra=deep_extra, beside={k: v for k, v in landmark.items() if _muscle_of(k) == "spinalis"},
        reuse=built,
    ))
    under_ld = {**built.meshes, **{k: v for k, v in landmark.items() if MUSCLES[_muscle_of(k)].layer != "superficial"}}
    fascia = fascicle_muscles.build_thoracolumbar_fascia(bones, under_ld, tolerance_mm=TOLERANCE_MM)
    under_ld[FASCIA_ID] = fascia
    latissimus = symmetric(build_latissimus(fascicles, bones, under_ld, voxel_mm=VOXEL_MM, tolerance_mm=TOLERANCE_MM))
    if landmark:
        # The superficial sheets are draped over what lies beneath, which has just changed.
        landmark = _landmark_muscles(bones, {**built.meshes, **latissimus}, rotatores)
    muscles = {**built.meshes, **landmark, **latissimus, FASCIA_ID: fascia}
    for sub in ("bones", "muscles"):
        shutil.rmtree(out_dir / sub, ignore_errors=True)
    entries: list[dict[str, object]] = []
    for sid in sorted(bones):
        rel = f"bones/{sid}.ply"
        write_ply(bones[sid], out_dir / rel)
        levels = [lv for lv in VERTEBRAE if spine.bone_id_of_level(lv) == sid]
        entries.append(_structure_entry(sid, rel, levels))
    for sid in sorted(muscles):
        mesh = muscles[sid]
        if mesh.is_empty:
            continue
        rel = f"muscles/{sid}.ply"
        mesh = closed_for_any_reader(mesh)
        if _muscle_of(sid) == "multifidus":
            mesh = with_level_data(mesh, centres, side_of(sid))
        write_ply(mesh, out_dir / rel)
        entries.append(_structure_entry(sid, rel, levels_spanned(mesh, centres)))
    entries.sort(key=lambda e: (e["kind"] != "muscle", str(e["id"])))
    versions = package_versions()
    (out_dir / "atlas.toml").write_text(manifest_text(entries, centres, versions))
    (out_dir / "PROVENANCE.toml").write_text(provenance_text(versions, built.calibration))
    (out_dir / "LICENSES").mkdir(parents=True, exist_ok=True)
    (out_dir / "LICENSES" / "myo-sim-Apache-2.0.txt").write_text(licence_text())


if __name__ == "__main__":
    build_atlas(Path(sys.argv[1]))
