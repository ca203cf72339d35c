"""Geometry from the myo-sim (MyoSuite) models, converted to the atlas frame.

The full-body model is compiled once in its neutral posture. Its world frame is metres with
+z superior, +y posterior and +x toward the patient's left, the midline at x = -0.025 m. The
atlas frame is RAS millimetres with the midline at x = 0 (see ``docs/atlas-format.md``).
"""

from __future__ import annotations

import functools
import re
import warnings
from dataclasses import dataclass
from importlib import metadata

import numpy as np
import trimesh

from viewer.atlas_build.volume import taubin

#: x of the model's midsagittal plane (m); checked against the vertebra meshes in the tests.
MIDLINE_X_M = -0.025
#: myo-sim model that holds the skeleton, the torso muscles and both arms.
MODEL_NAME = "myofullbody"

#: Atlas bone id -> geom names in the compiled model (their meshes are merged).
BONE_GEOMS: dict[str, tuple[str, ...]] = {
    "skull": ("hat_skull", "hat_jaw"),
    **{f"vertebra_t{13 - i}": (f"torso_geom_{i}",) for i in range(1, 13)},
    **{f"vertebra_l{i}": (f"lumbar{i}_geom_1",) for i in range(1, 6)},
    "sacrum": ("sacrum_geom_1",),
    "hip_bone_right": ("pelvis_r",),
    "hip_bone_left": ("pelvis_l",),
    "rib_cage": ("torso_geom_13",),
    "scapula_right": ("scapula_r",),
    "scapula_left": ("scapula_l",),
    "clavicle_right": ("clavicle_r",),
    "clavicle_left": ("clavicle_l",),
    "humerus_right": ("humerus_r",),
    "humerus_left": ("humerus_l",),
}
#: Geom of the one-piece cervical spine; it splits into one connected piece per vertebra.
CERVICAL_GEOM = "hat_cervical"

#: Muscles whose fascicle paths are taken from the model (actuator name prefixes).
FASCICLE_PATTERN = re.compile(r"^(MF_|IL_|LTpT_|LTpL_|LAT\d)")


@dataclass(frozen=True)
class Fascicle:
    """One muscle fascicle (one model actuator) in the atlas frame.

    Attributes
    ----------
    name : str
        Actuator name in the model, e.g. ``"MF_m4t.2_r"``.
    side : str
        ``"left"`` or ``"right"`` (the patient's side).
    points : (n, 3) float ndarray
        Path from the first to the last attachment, mm, atlas frame (n >= 2).
    max_force : float
        Peak isometric force of the actuator, N.
    """

    name: str
    side: str
    points: np.ndarray
    max_force: float

    @property
    def length(self) -> float:
        """Path length (mm)."""
        return float(np.linalg.norm(np.diff(self.points, axis=0), axis=1).sum())


def to_atlas_frame(points_m: np.ndarray) -> np.ndarray:
    """Convert model world coordinates to the atlas frame.

    Parameters
    ----------
    points_m : (n, 3) float ndarray
        Points in the model's neutral-posture world frame (m; +x left, +y posterior, +z up).

    Returns
    -------
    (n, 3) float64 ndarray
        The same points in RAS millimetres, midline at x = 0.
    """
    p = np.asarray(points_m, dtype=np.float64).reshape(-1, 3)
    return np.column_stack(
        [-(p[:, 0] - MIDLINE_X_M) * 1000.0, -p[:, 1] * 1000.0, p[:, 2] * 1000.0]
    )


def source_versions() -> dict[str, str]:
    """Versions of the packages the geometry comes from (for provenance)."""
    return {name: metadata.version(name) for name in ("myo-sim", "mujoco")}


@functools.lru_cache(maxsize=1)
def _neutral_model():
    # Compiling takes ~1 s; the model is immutable input, so one copy per process is enough.
    import mujoco
    from myo_sim.build.compose import build_spec

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_spec(MODEL_NAME).compile()
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    return model, data


def _geom_mesh(model, data, geom_name: str) -> trimesh.Trimesh:
    import mujoco

    gid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, geom_name)
    if gid < 0:
        raise KeyError(f"geom {geom_name!r} not found in the {MODEL_NAME} model")
    mid = model.geom_dataid[gid]
    v0, nv = model.mesh_vertadr[mid], model.mesh_vertnum[mid]
    f0, nf = model.mesh_faceadr[mid], model.mesh_facenum[mid]
    local = model.mesh_vert[v0 : v0 + nv].astype(np.float64)
    world = local @ data.geom_xmat[gid].reshape(3, 3).T + data.geom_xpos[gid]
    faces = model.mesh_face[f0 : f0 + nf].astype(np.int64)
    # Flipping both x and y is a rotation, so the winding (outward normals) is kept.
    return trimesh.Trimesh(to_atlas_frame(world), faces, process=True)


def _cervical_vertebrae(mesh: trimesh.Trimesh) -> dict[str, trimesh.Trimesh]:
    pieces = mesh.split(only_watertight=False)
    rings = sorted((p for p in pieces if len(p.faces) >= 200), key=lambda p: -p.vertices[:, 2].mean())
    if len(rings) != 7:
        raise ValueError(f"cervical spine mesh has {len(rings)} large pieces, expected 7")
    # Vertebral bodies and facet caps are separate small pieces: give each to the nearest ring.
    groups: list[list[trimesh.Trimesh]] = [[r] for r in rings]
    for piece in pieces:
        if len(piece.faces) >= 200:
            continue
        centre = piece.vertices.mean(axis=0)
        gaps = [float(np.linalg.norm(r.vertices - centre, axis=1).min()) for r in rings]
        groups[int(np.argmin(gaps))].append(piece)
    return {
        f"vertebra_c{i + 1}": trimesh.util.concatenate(g) if len(g) > 1 else g[0]
        for i, g in enumerate(groups)
    }


def without_logo(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """The rib cage without the MyoSuite logo that the model draws over the sternum.

    The logo is a disc of 15 180 triangles (ten times the costal cartilage plate that carries the
    real manubrium, sternal body and xiphoid) plus its figure, drawn as open, two-sided pieces
    in front of the sternum. Ribs and cartilage plate are closed pieces, so the logo is: the piece
    with the most triangles, and every open piece.
    """
    pieces = trimesh.graph.connected_components(mesh.face_adjacency, nodes=np.arange(len(mesh.faces)), min_len=1)
    pieces = sorted((np.sort(p) for p in pieces), key=lambda p: int(p[0]))
    largest = max(len(p) for p in pieces)
    keep = np.zeros(len(mesh.faces), dtype=bool)
    for faces in pieces:
        closed = mesh.submesh([faces], append=True).is_watertight
        keep[faces] = closed and len(faces) < largest
    out = mesh.copy()
    out.update_faces(keep)
    out.remove_unreferenced_vertices()
    return out


def single_sided(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """A copy without repeated triangles.

    Some model meshes (hip bones, scapulae, C5) hold small two-sided flaps: each triangle twice
    with opposite winding. Their normals cancel, which leaves zero-length vertex normals (invalid
    in glTF) and z-fighting; the first copy of each triangle is kept.
    """
    out = mesh.copy()
    out.update_faces(out.unique_faces())
    out.remove_unreferenced_vertices()
    return out


def load_raw_bones() -> dict[str, trimesh.Trimesh]:
    """Bone meshes exactly as in the model (low-poly), in the atlas frame.

    Returns
    -------
    dict of str to trimesh.Trimesh
        Keyed by atlas structure id (``"vertebra_l4"``, ``"hip_bone_left"``, ...), sorted by id;
        vertices in mm. Per-vertebra meshes and the sacrum are closed; the rest may be open.
    """
    model, data = _neutral_model()
    bones: dict[str, trimesh.Trimesh] = {}
    for bone_id, geoms in BONE_GEOMS.items():
        parts = [_geom_mesh(model, data, g) for g in geoms]
        bones[bone_id] = parts[0] if len(parts) == 1 else trimesh.util.concatenate(parts)
    bones.update(_cervical_vertebrae(_geom_mesh(model, data, CERVICAL_GEOM)))
    bones["rib_cage"] = without_logo(bones["rib_cage"])
    return {k: single_sided(v) for k, v in sorted(bones.items())}


def smooth_bone(mesh: trimesh.Trimesh, iterations: int = 1) -> trimesh.Trimesh:
    """Loop-subdivide a low-poly bone and relax it lightly so facets do not show.

    Parameters
    ----------
    mesh : trimesh.Trimesh
        Bone surface (mm); may be open.
    iterations : int
        Loop subdivision steps; each multiplies the triangle count by 4.

    Returns
    -------
    trimesh.Trimesh
        Smoother surface of the same shape; closed if the input was closed.
    """
    if iterations <= 0:
        return mesh.copy()
    if mesh.is_watertight:
        vertices, faces = trimesh.remesh.subdivide_loop(mesh.vertices, mesh.faces, iterations)
        passes = 3
    else:
        # Loop subdivision silently garbles open or non-manifold meshes: split edges at their
        # midpoints instead and let the relaxing round the facets off.
        vertices, faces = mesh.vertices, mesh.faces
        for _ in range(iterations):
            vertices, faces = trimesh.remesh.subdivide(vertices, faces)
        passes = 10
    out = trimesh.Trimesh(vertices, faces, process=True)
    return trimesh.Trimesh(taubin(out.vertices, out.faces, passes), out.faces, process=False)


#: Loop subdivision steps per bone (the rest are already dense enough).
BONE_SUBDIVISION: dict[str, int] = {
    "hip_bone_left": 2,
    "hip_bone_right": 2,
    "sacrum": 2,
    **{f"vertebra_c{i}": 1 for i in range(1, 8)},
    **{f"vertebra_t{i}": 1 for i in range(1, 13)},
    **{f"vertebra_l{i}": 1 for i in range(1, 6)},
    "clavicle_left": 1,
    "clavicle_right": 1,
    "humerus_left": 1,
    "humerus_right": 1,
    "scapula_left": 1,
    "scapula_right": 1,
}


def load_bones() -> dict[str, trimesh.Trimesh]:
    """Presentable bone meshes in the atlas frame (mm), keyed by structure id.

    Low-poly model bones are loop-subdivided (see :data:`BONE_SUBDIVISION`) and lightly smoothed.

    Returns
    -------
    dict of str to trimesh.Trimesh
        ``skull``, ``vertebra_c1`` .. ``vertebra_c7``, ``vertebra_t1`` .. ``vertebra_t12``,
        ``vertebra_l1`` .. ``vertebra_l5``, ``sacrum``, ``hip_bone_left/right``, ``rib_cage``,
        ``scapula_left/right``, ``clavicle_left/right``, ``humerus_left/right``; sorted by id.
    """
    return {
        bone_id: smooth_bone(mesh, BONE_SUBDIVISION.get(bone_id, 0))
        for bone_id, mesh in load_raw_bones().items()
    }


def _tendon_path(data, tendon: int) -> np.ndarray:
    points = data.wrap_xpos.reshape(-1, 3)
    objects = data.wrap_obj.reshape(-1)
    start, count = data.ten_wrapadr[tendon], data.ten_wrapnum[tendon]
    keep = objects[start : start + count] != -2  # -2 marks pulleys, which carry no position
    path = to_atlas_frame(points[start : start + count][keep])
    step = np.linalg.norm(np.diff(path, axis=0), axis=1)
    return path[np.concatenate([[True], step > 1e-6])]


def load_fascicles(pattern: re.Pattern[str] = FASCICLE_PATTERN) -> dict[str, Fascicle]:
    """Fascicle paths of the model's back muscles in the neutral posture.

    Parameters
    ----------
    pattern : re.Pattern
        Actuator names to keep (default: multifidus, iliocostalis, longissimus, latissimus).

    Returns
    -------
    dict of str to Fascicle
        Keyed by actuator name, sorted. Right-arm actuators without a side suffix (``LAT1``) are
        reported with side ``"right"``.
    """
    import mujoco

    model, data = _neutral_model()
    out: dict[str, Fascicle] = {}
    for a in range(model.nu):
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_ACTUATOR, a)
        if not name or not pattern.match(name):
            continue
        path = _tendon_path(data, int(model.actuator_trnid[a, 0]))
        side = "left" if name.endswith("_l") else "right"
        out[name] = Fascicle(name, side, path, float(model.actuator_gainprm[a, 2]))
    return dict(sorted(out.items()))
