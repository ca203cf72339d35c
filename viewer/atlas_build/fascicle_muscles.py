"""Muscles built from the model's fascicle paths: multifidus, iliocostalis, longissimus.

Each fascicle becomes a tube along its neutral-posture path. The tube radius starts from the
fascicle's force (PCSA = Fmax / specific tension), swells toward the middle of the fascicle
(tendinous ends, fleshy belly) and is multiplied by a per-level gain that is calibrated so that
cross-sectional areas at the lumbar discs match published imaging values (see ``docs/atlas.md``).
The tubes of one muscle and side are fused into one closed surface by :mod:`.volume`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import trimesh
from scipy.spatial import cKDTree

from viewer.atlas_build import spine, volume
from viewer.atlas_build.source import Fascicle
from viewer.levels import VERTEBRAE

#: Specific tension used to turn peak force into PCSA (N/mm^2); mid-range of 0.3-0.6.
SPECIFIC_TENSION = 0.45
#: Resampling step of fascicle paths (mm): fine enough for per-vertex radii.
PATH_STEP_MM = 3.0
#: Fraction of the belly radius kept at the attachments.
END_RADIUS_FRACTION = 0.45
#: Attachments farther than this from any bone are left where they are (mm).
MAX_SNAP_MM = 45.0
#: Longissimus (pars thoracis) fascicles end in the erector spinae aponeurosis caudal to this level
#: (L3 = 21): the part below is tendon sheet over the multifidus, not muscle belly.
LONGISSIMUS_APONEUROSIS_LEVEL = 21.0

#: The erector spinae is laid behind the landmark-built deep muscles down to L1 (level 19),
#: fading out by this level (L2 = 20).
THORACIC_LIFT_END = 20.0

#: Smooth-union width of the multifidus fascicles (mm): wide enough that the fascicles read as
#: one muscle mass, as they do in cadavers (few cleavage planes), not as separate rods.
MULTIFIDUS_BLEND_MM = 4.5

#: Belly radius (mm) of the thoracic multifidus fascicles built from landmarks; not calibrated
#: (no published thoracic CSA in the reference), so their gain is fixed at 1 above T12.
THORACIC_MULTIFIDUS_RADIUS_MM = 3.0
#: The thoracic multifidus is laid behind the rotatores (the deepest layer) down to L1 (level 19),
#: fading out by the L1-L2 disc; the lumbar fascicles from the model already lie over them.
MULTIFIDUS_LIFT_END = 19.5
#: Lowest origin of the landmark-built multifidus fascicles: down to L2, so that the thoracic part
#: joins the model's lumbar fascicles (which reach up only to the L1 spinous process).
THORACIC_MULTIFIDUS_LOWEST = "L2"
THORACIC_GAIN_KNOT = (18.0, 1.0)

#: Bones that fascicle attachments are snapped onto.
ATTACHMENT_BONES: tuple[str, ...] = (
    "hip_bone_left", "hip_bone_right", "rib_cage", "sacrum",
    *(f"vertebra_t{i}" for i in range(1, 13)), *(f"vertebra_l{i}" for i in range(1, 6)),
)

#: Lumbar disc levels (level coordinate) at which cross-sections are calibrated.
DISC_LEVELS: dict[str, float] = {"L1-L2": 19.5, "L2-L3": 20.5, "L3-L4": 21.5, "L4-L5": 22.5, "L5-S1": 23.5}

#: Target multifidus CSA per side (cm^2) at each disc. L4-L5 and L5-S1 lie inside the healthy
#: adult ranges of anatomy.md section 2 (Stokes 2005, Danneels 2000, Niemelainen 2011, Fortin);
#: the upper levels follow the caudal gradient of Hides' and the seated-MRI data.
MULTIFIDUS_CSA_CM2: dict[str, float] = {
    "L1-L2": 2.5, "L2-L3": 3.8, "L3-L4": 5.5, "L4-L5": 7.5, "L5-S1": 8.5,
}
#: Target erector spinae (iliocostalis + longissimus) CSA per side (cm^2); L3-L4 is the MRI
#: mean of Fortin et al. (20.0 +- 4.4 cm^2, via the BMRI 2017 review table) rounded down.
ERECTOR_SPINAE_CSA_CM2: dict[str, float] = {
    "L1-L2": 19.0, "L2-L3": 19.0, "L3-L4": 18.0, "L4-L5": 14.0,
}


@dataclass(frozen=True)
class TubeBundle:
    """Paths and per-vertex radii of one muscle on one side, ready for :func:`volume.tube_union_surface`.

    Attributes
    ----------
    paths : list of (n_i, 3) float ndarray
        Resampled fascicle paths, mm.
    base_radii : list of (n_i,) float ndarray
        Radius before the level gain (force and belly profile), mm.
    levels : list of (n_i,) float ndarray
        Level coordinate of every path vertex (C1 = 0 ... S1 = 24).
    """

    paths: list[np.ndarray]
    base_radii: list[np.ndarray]
    levels: list[np.ndarray]

    def radii(self, gain: Callable[[np.ndarray], np.ndarray]) -> list[np.ndarray]:
        """Per-vertex radii (mm) after multiplying by ``gain(levels)``."""
        return [r * gain(lv) for r, lv in zip(self.base_radii, self.levels)]


def force_radius(max_force: float, specific_tension: float = SPECIFIC_TENSION) -> float:
    """Radius (mm) of a circle whose area is the PCSA of a fascicle of peak force ``max_force`` (N)."""
    return float(np.sqrt(max_force / specific_tension / np.pi))


def resample(points: np.ndarray, step: float) -> np.ndarray:
    """Polyline resampled at (about) equal arc-length steps, keeping both ends.

    Parameters
    ----------
    points : (n, 3) float ndarray
        Polyline, mm.
    step : float
        Target spacing, mm.

    Returns
    -------
    (m, 3) float ndarray
    """
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    n = max(int(np.ceil(s[-1] / step)), 1) + 1
    t = np.linspace(0.0, s[-1], n)
    return np.column_stack([np.interp(t, s, points[:, i]) for i in range(3)])


def belly_profile(n: int, floor: float = END_RADIUS_FRACTION) -> np.ndarray:
    """Radius factor along a fascicle of ``n`` vertices: ``floor`` at the ends, 1 mid-belly."""
    t = np.linspace(0.0, 1.0, n)
    return floor + (1.0 - floor) * np.sqrt(np.sin(np.pi * t))


def attachment_surface(bones: Mapping[str, trimesh.Trimesh], ids: Sequence[str] = ATTACHMENT_BONES) -> cKDTree:
    """KD-tree over the vertices (dense after subdivision) of the bones attachments snap onto."""
    pts = np.concatenate([np.asarray(bones[i].vertices) for i in ids if i in bones])
    return cKDTree(pts)


def snap_ends(path: np.ndarray, surface: cKDTree, max_shift: float = MAX_SNAP_MM) -> np.ndarray:
    """Move a path's first and last points onto the nearest bone surface point.

    Several model attachments float 10-37 mm off the sacrum and pelvis; muscles must visibly
    attach to bone. Interior path points move with the ends, fading linearly toward the middle.

    Parameters
    ----------
    path : (n, 3) float ndarray
        Path, mm.
    surface : cKDTree
        Bone surface points (from :func:`attachment_surface`).
    max_shift : float
        Ends farther than this from bone stay put, mm.

    Returns
    -------
    (n, 3) float ndarray
    """
    out = np.asarray(path, dtype=float).copy()
    n = len(out)
    t = np.linspace(0.0, 1.0, n)
    for end, weight in ((0, np.clip(1.0 - 2.0 * t, 0, 1)), (n - 1, np.clip(2.0 * t - 1.0, 0, 1))):
        dist, idx = surface.query(out[end])
        if dist <= max_shift:
            out += weight[:, None] * (surface.data[idx] - out[end])
    return out


def multifidus_gain(knots: Sequence[float], gains: Sequence[float]) -> Callable[[np.ndarray], np.ndarray]:
    """Calibrated lumbar gains plus the fixed thoracic knot (see :data:`THORACIC_GAIN_KNOT`)."""
    return level_gain([THORACIC_GAIN_KNOT[0], *knots], [THORACIC_GAIN_KNOT[1], *gains])


def level_gain(knots: Sequence[float], gains: Sequence[float]) -> Callable[[np.ndarray], np.ndarray]:
    """Piecewise-linear gain over the level coordinate, constant beyond the end knots."""
    k, g = np.asarray(knots, float), np.asarray(gains, float)
    return lambda levels: np.interp(levels, k, g)


def make_bundle(
    fascicles: Sequence[Fascicle],
    surface: cKDTree,
    centres: Mapping[str, np.ndarray],
    *,
    max_level: float | None = None,
) -> TubeBundle:
    """Resample, snap and profile the fascicles of one muscle on one side.

    Parameters
    ----------
    fascicles : sequence of Fascicle
        In a fixed (sorted) order.
    surface : cKDTree
        Bone surface for snapping attachments.
    centres : mapping of str to (3,) float ndarray
        Vertebral body centres (level coordinate).
    max_level : float, optional
        Cut each path caudal to this level (aponeurotic part); the cut end becomes the
        tendinous end of the fascicle.
    """
    paths, radii, levels = [], [], []
    for fascicle in fascicles:
        path = resample(snap_ends(fascicle.points, surface), PATH_STEP_MM)
        lv = spine.level_coordinate(path, centres)
        if max_level is not None:
            keep = lv <= max_level
            if keep.sum() < 3:
                continue
            path, lv = path[keep], lv[keep]
        paths.append(path)
        radii.append(force_radius(fascicle.max_force) * belly_profile(len(path)))
        levels.append(lv.astype(float))
    return TubeBundle(paths, radii, levels)


def disc_plane(centres: Mapping[str, np.ndarray], disc: str) -> tuple[np.ndarray, np.ndarray]:
    """Origin and unit normal of a disc plane such as ``"L4-L5"`` (see :func:`spine.local_axis`)."""
    upper, lower = disc.split("-")
    return spine.local_axis(centres, upper, lower)


def side_filter(side: str, origin: np.ndarray, reach_mm: float = 160.0) -> Callable[[np.ndarray], bool]:
    """Predicate on a section loop centroid: on the given body side, within ``reach_mm`` of origin."""
    sign = 1.0 if side == "right" else -1.0
    return lambda c: bool(sign * c[0] > 0 and np.linalg.norm(c - origin) < reach_mm)


def csa_cm2(
    meshes: Sequence[trimesh.Trimesh], centres: Mapping[str, np.ndarray], disc: str, side: str
) -> float:
    """Summed cross-sectional area (cm^2) of meshes on one side at a disc plane."""
    origin, normal = disc_plane(centres, disc)
    keep = side_filter(side, origin)
    return sum(volume.cross_section_area(m, origin, normal, keep) for m in meshes if not m.is_empty) / 100.0


def calibrate_gains(
    build: Callable[[Callable[[np.ndarray], np.ndarray]], Sequence[trimesh.Trimesh]],
    centres: Mapping[str, np.ndarray],
    side: str,
    targets_cm2: Mapping[str, float],
    *,
    start: float = 1.0,
    iterations: int = 4,
    fixed: Sequence[tuple[float, float]] = (),
) -> tuple[list[float], list[float], dict[str, float]]:
    """Fit per-disc radius gains so that the built muscle's CSA meets the targets.

    Parameters
    ----------
    build : callable
        Takes a gain function of the level coordinate and returns the meshes whose summed CSA is
        compared with the targets.
    centres : mapping
        Vertebral body centres.
    side : str
        Body side measured.
    targets_cm2 : mapping of str to float
        Disc name -> target CSA (cm^2).
    start : float
        Initial gain at every knot.
    iterations : int
        Fixed number of multiplicative updates (keeps the build deterministic and bounded).
    fixed : sequence of (float, float)
        Extra (level, gain) knots that are not fitted, all cranial to the calibrated ones.

    Returns
    -------
    knots, gains : list of float
        The gain function's knots (level coordinate) and values.
    achieved : dict of str to float
        CSA (cm^2) measured with the returned gains, before final decimation.
    """
    discs = sorted(targets_cm2, key=lambda d: DISC_LEVELS[d])
    knots = [DISC_LEVELS[d] for d in discs]
    gains = [start] * len(discs)
    achieved: dict[str, float] = {}
    for it in range(iterations + 1):
        meshes = build(level_gain([k for k, _ in fixed] + knots, [g for _, g in fixed] + gains))
        achieved = {d: csa_cm2(meshes, centres, d, side) for d in discs}
        if it == iterations:
            break
        # CSA of fused, overlapping tubes grows slower than r^2: a 0.6 power damps overshoot.
        gains = [
            g * float(np.clip(targets_cm2[d] / max(achieved[d], 0.05), 0.4, 2.5)) ** 0.6
            for g, d in zip(gains, discs)
        ]
    return knots, gains, achieved


@dataclass(frozen=True)
class PosteriorSurface:
    """Posterior-most y of some structures over an x-z grid (the surface seen from behind).

    Attributes
    ----------
    x, z : (nx,), (nz,) float ndarray
        Grid coordinates, mm.
    y : (nx, nz) float ndarray
        Smallest y (most posterior point) per column, mm; ``inf`` where nothing is hit.
    """

    x: np.ndarray
    z: np.ndarray
    y: np.ndarray

    def lookup(self, points: np.ndarray) -> np.ndarray:
        """Posterior surface y at each point's (x, z) (nearest column), mm."""
        i = np.clip(np.round((points[:, 0] - self.x[0]) / (self.x[1] - self.x[0])).astype(int), 0, len(self.x) - 1)
        j = np.clip(np.round((points[:, 2] - self.z[0]) / (self.z[1] - self.z[0])).astype(int), 0, len(self.z) - 1)
        return self.y[i, j]


def posterior_surface(
    meshes: Sequence[trimesh.Trimesh], spacing: float = 2.0, widen_mm: float = 8.0
) -> PosteriorSurface:
    """Posterior surface of meshes, widened sideways so tubes of radius ~``widen_mm`` clear it."""
    from scipy import ndimage

    lo = np.min([m.bounds[0] for m in meshes], axis=0) - widen_mm
    hi = np.max([m.bounds[1] for m in meshes], axis=0) + widen_mm
    x = np.arange(lo[0], hi[0] + spacing, spacing)
    z = np.arange(lo[2], hi[2] + spacing, spacing)
    gx, gz = np.meshgrid(x, z, indexing="ij")
    y = np.full(gx.size, np.inf)
    for mesh in meshes:
        y = np.minimum(y, volume.first_hits_along_y(mesh, gx.ravel(), gz.ravel()))
    size = 2 * int(round(widen_mm / spacing)) + 1
    return PosteriorSurface(x, z, ndimage.minimum_filter(y.reshape(gx.shape), size=size))


def lift_behind(
    path: np.ndarray,
    radius: np.ndarray,
    surface: PosteriorSurface,
    gap: float = 1.0,
    weight: np.ndarray | None = None,
) -> np.ndarray:
    """Move a path backward (to smaller y) so its tube passes behind a posterior surface.

    The attachments stay where they are: the lift fades in over the first and last 15 % of
    the path, so the fascicle still reaches its bone.

    Parameters
    ----------
    path : (n, 3) float ndarray
        Fascicle path, mm.
    radius : (n,) float ndarray
        Tube radius per vertex, mm.
    surface : PosteriorSurface
        What the tube must pass behind.
    gap : float
        Clearance, mm.
    weight : (n,) float ndarray, optional
        Extra per-vertex factor in [0, 1] on the lift (default 1).
    """
    t = np.linspace(0.0, 1.0, len(path))
    fade = np.clip(np.minimum(t, 1.0 - t) / 0.15, 0.0, 1.0)
    weight = fade if weight is None else fade * weight
    limit = surface.lookup(path) - radius - gap
    shift = np.where(np.isfinite(limit), np.minimum(limit - path[:, 1], 0.0), 0.0)
    shift = np.convolve(np.pad(shift, 2, mode="edge"), np.ones(5) / 5.0, mode="valid")
    out = path.copy()
    out[:, 1] += weight * np.minimum(shift, 0.0)
    return out


def transverse_root(vertebra: trimesh.Trimesh, side: str) -> np.ndarray:
    """Posterior surface of a transverse process near its root (origin of thoracic multifidus), mm."""
    v = np.asarray(vertebra.vertices)
    sign = 1.0 if side == "right" else -1.0
    lateral = sign * v[:, 0]
    band = v[(lateral > 0.45 * lateral.max()) & (lateral < 0.7 * lateral.max())]
    back = band[band[:, 1] <= np.quantile(band[:, 1], 0.2)]
    return back.mean(axis=0)


def spinous_base(vertebra: trimesh.Trimesh, side: str) -> np.ndarray:
    """Side of a spinous process about 15 mm in front of its tip (multifidus insertion), mm."""
    v = np.asarray(vertebra.vertices)
    tip = spinous_tip(vertebra)
    sign = 1.0 if side == "right" else -1.0
    shaft = v[(np.abs(v[:, 0]) < 6.0) & (v[:, 1] > tip[1] + 10.0) & (v[:, 1] < tip[1] + 20.0)]
    base = shaft.mean(axis=0) if len(shaft) else tip + [0.0, 15.0, 0.0]
    return base + [sign * 4.0, 0.0, 0.0]


def thoracic_multifidus_paths(bones: Mapping[str, trimesh.Trimesh], side: str) -> list[np.ndarray]:
    """Thoracic multifidus fascicles, mm: from the transverse process root (T2 to L2) to the side
    of the spinous processes 2, 3 and 4 levels higher (not above C7), plus one longitudinal
    fascicle along the groove between them from C7 to L2.

    The source model only has the lumbar part; Gray's describes the same pattern up to the axis.
    Neighbouring fascicles overlap level by level, so the muscle is one continuous column in the
    groove beside the spinous processes, not a chain of separate bundles.
    """
    order = list(VERTEBRAE)
    levels = order[order.index("T2") : order.index(THORACIC_MULTIFIDUS_LOWEST) + 1]
    paths = []
    for origin_level in levels:
        start = transverse_root(bones[spine.bone_id_of_level(origin_level)], side)
        for span in (2, 3, 4):
            target = order.index(origin_level) - span
            if target < order.index("C7"):
                continue
            end = spinous_base(bones[spine.bone_id_of_level(order[target])], side)
            paths.append(np.array([start, end]))
    groove = [
        0.5 * (transverse_root(bones[spine.bone_id_of_level(lv)], side)
               + spinous_base(bones[spine.bone_id_of_level(lv)], side))
        for lv in ["C7", *levels[:-1]]
    ]
    paths.append(np.array(groove))
    return paths


#: Actuator name prefixes of each muscle.
MUSCLE_PREFIXES: dict[str, tuple[str, ...]] = {
    "multifidus": ("MF_",),
    "iliocostalis": ("IL_",),
    "longissimus": ("LTpT_", "LTpL_"),
}


def select_fascicles(fascicles: Mapping[str, Fascicle], muscle: str, side: str) -> list[Fascicle]:
    """Fascicles of one muscle and side, sorted by actuator name."""
    prefixes = MUSCLE_PREFIXES[muscle]
    return [f for name, f in sorted(fascicles.items()) if name.startswith(prefixes) and f.side == side]


@dataclass(frozen=True)
class FascicleMuscles:
    """Result of :func:`build_fascicle_muscles`.

    Attributes
    ----------
    meshes : dict of str to trimesh.Trimesh
        Closed surfaces keyed by structure id (``multifidus_left`` ...), mm.
    calibration : dict
        Per muscle group: knots, gains and CSA achieved / targeted (cm^2), for provenance.
    """

    meshes: dict[str, trimesh.Trimesh]
    calibration: dict[str, dict[str, object]]


def build_fascicle_muscles(
    fascicles: Mapping[str, Fascicle],
    bones: Mapping[str, trimesh.Trimesh],
    centres: Mapping[str, np.ndarray],
    *,
    voxel_mm: float = 1.5,
    tolerance_mm: float = 0.2,
    calibration_iterations: int = 4,
    deep_extra: Mapping[str, trimesh.Trimesh] | None = None,
    beside: Mapping[str, trimesh.Trimesh] | None = None,
    reuse: FascicleMuscles | None = None,
) -> FascicleMuscles:
    """Multifidus, iliocostalis and longissimus on both sides, calibrated and overlap-free.

    Overlaps are resolved in a fixed priority: bone > multifidus > longissimus > iliocostalis;
    each muscle is carved out of the higher-priority volumes in the distance-field domain.
    Gains are fitted on the right side and applied to both sides (the model is symmetric).

    Parameters
    ----------
    fascicles : mapping of str to Fascicle
        From :func:`source.load_fascicles`.
    bones : mapping of str to trimesh.Trimesh
        From :func:`source.load_bones`.
    centres : mapping of str to (3,) float ndarray
        From :func:`spine.spine_centres`.
    voxel_mm, tolerance_mm : float
        Grid spacing and decimation tolerance, mm.
    calibration_iterations : int
        Gain updates per muscle group.
    deep_extra : mapping of str to trimesh.Trimesh, optional
        Other deep-layer muscles keyed by structure id (``rotatores_left``, ``semispinalis_left``
        ...). The multifidus is carved around the rotatores and its thoracic fascicles are lifted
        behind them; the erector spinae is kept from reaching in front of all of them, as seen
        from behind.
    beside : mapping of str to trimesh.Trimesh, optional
        Muscles of the same layer keyed by structure id (``spinalis_left`` ...) that keep their
        volume where they overlap the erector spinae.
    reuse : FascicleMuscles, optional
        An earlier result: its calibrated gains and its multifidus are reused (no recalibration);
        the erector spinae is rebuilt against everything in ``deep_extra`` and ``beside``.

    Every surface keeps off the midline and off the spinous ridge (``midline=True``, ``ridge``
    in :func:`volume.tube_union_surface`).
    """
    surface = attachment_surface(bones)
    solid_bones = [bones[b] for b in sorted(bones) if b.startswith(("vertebra_t", "vertebra_l", "sacrum", "hip_bone"))]
    ridge = [bones[b] for b in sorted(bones) if b.startswith(("vertebra_", "sacrum"))]

    def bundle(muscle: str, side: str) -> TubeBundle:
        cut = LONGISSIMUS_APONEUROSIS_LEVEL if muscle == "longissimus" else None
        if muscle == "multifidus":
            lumbar = make_bundle(select_fascicles(fascicles, muscle, side), surface, centres)
            paths = [resample(p, PATH_STEP_MM) for p in thoracic_multifidus_paths(bones, side)]
            radii = [THORACIC_MULTIFIDUS_RADIUS_MM * belly_profile(len(p)) for p in paths]
            levels = [spine.level_coordinate(p, centres).astype(float) for p in paths]
            return TubeBundle(lumbar.paths + paths, lumbar.base_radii + radii, lumbar.levels + levels)
        if muscle != "longissimus":
            return make_bundle(select_fascicles(fascicles, muscle, side), surface, centres)
        # Only the pars thoracis (LTpT) ends in the aponeurosis; the lumbar part (LTpL) is fleshy.
        thoracic = [f for f in select_fascicles(fascicles, muscle, side) if f.name.startswith("LTpT_")]
        lumbar = [f for f in select_fascicles(fascicles, muscle, side) if f.name.startswith("LTpL_")]
        a = make_bundle(thoracic, surface, centres, max_level=cut)
        b = make_bundle(lumbar, surface, centres)
        return TubeBundle(a.paths + b.paths, a.base_radii + b.base_radii, a.levels + b.levels)

    bundles = {(m, s): bundle(m, s) for m in MUSCLE_PREFIXES for s in ("left", "right")}
    calibration: dict[str, dict[str, object]] = {}
    meshes: dict[str, trimesh.Trimesh] = {}
    extra = dict(deep_extra or {})
    rotatores = {s: [extra[k] for k in sorted(extra) if k.startswith("rotatores") and k.endswith(s)]
                 for s in ("left", "right")}
    rot_back = {s: posterior_surface(rotatores[s], widen_mm=2.0) for s in rotatores if rotatores[s]}

    def multifidus_surface(side: str, gain, tol: float) -> trimesh.Trimesh:
        # The rotatores (deepest) keep the floor of the groove; the thoracic multifidus lies over them.
        b = bundles["multifidus", side]
        radii = b.radii(gain)
        paths = b.paths
        if side in rot_back:
            paths = [lift_behind(p, r, rot_back[side], weight=np.clip(MULTIFIDUS_LIFT_END - lv, 0.0, 1.0))
                     for p, r, lv in zip(paths, radii, b.levels)]
        return volume.tube_union_surface(
            paths, radii, voxel_mm, [*solid_bones, *rotatores[side]], tolerance_mm=tol,
            blend_mm=MULTIFIDUS_BLEND_MM, midline=True, ridge=ridge,
        )
    es_gain_now = None
    if reuse is not None:
        rec = reuse.calibration["erector_spinae"]
        es_gain_now = level_gain(rec["knots_level"], rec["radius_gain"])
    for side in ("left", "right"):
        deep_side = [extra[k] for k in sorted(extra) if k.endswith(side)]
        if not deep_side or es_gain_now is None:
            continue
        # The model's erector spinae paths hug the transverse processes; the semispinalis and
        # rotatores built from landmarks lie there too. Lay the erector spinae behind them.
        surf = posterior_surface(deep_side)
        for muscle in ("longissimus", "iliocostalis"):
            b = bundles[muscle, side]
            radii = b.radii(es_gain_now)
            # Thoracic only: in the lumbar region the columns sit beside the multifidus, not on it.
            paths = [
                lift_behind(p, r, surf, weight=np.clip(THORACIC_LIFT_END - lv, 0.0, 1.0))
                for p, r, lv in zip(b.paths, radii, b.levels)
            ]
            levels = [spine.level_coordinate(p, centres).astype(float) for p in paths]
            bundles[muscle, side] = TubeBundle(paths, b.base_radii, levels)

    if reuse is None:
        mf_knots, mf_gains, mf_csa = calibrate_gains(
            lambda g: [multifidus_surface("right", g, 0.0)],
            centres, "right", MULTIFIDUS_CSA_CM2, iterations=calibration_iterations,
            fixed=[THORACIC_GAIN_KNOT],
        )
        calibration["multifidus"] = _calibration_record(mf_knots, mf_gains, mf_csa, MULTIFIDUS_CSA_CM2)
        calibration["multifidus"]["fixed_knot_level_gain"] = list(THORACIC_GAIN_KNOT)
        for side in ("left", "right"):
            meshes[f"multifidus_{side}"] = multifidus_surface(side, multifidus_gain(mf_knots, mf_gains), tolerance_mm)
    else:
        # Built over the rotatores in the first pass already: same inputs, same mesh.
        calibration["multifidus"] = dict(reuse.calibration["multifidus"])
        for side in ("left", "right"):
            meshes[f"multifidus_{side}"] = reuse.meshes[f"multifidus_{side}"]

    def erector(side: str, gain, tol: float) -> list[trimesh.Trimesh]:
        mf = meshes[f"multifidus_{side}"]
        deeper = [*solid_bones, mf, *(v for k, v in sorted((beside or {}).items()) if k.endswith(side))]
        # The spinalis is the medial column: the longissimus keeps beside it, not on top of it.
        behind = [mf, *(extra[k] for k in sorted(extra) if k.endswith(side)),
                  *(v for k, v in sorted((beside or {}).items()) if k.endswith(side))]
        lt = volume.tube_union_surface(
            bundles["longissimus", side].paths, bundles["longissimus", side].radii(gain), voxel_mm,
            deeper, tolerance_mm=tol, shadow=behind, midline=True, ridge=ridge,
        )
        il = volume.tube_union_surface(
            bundles["iliocostalis", side].paths, bundles["iliocostalis", side].radii(gain), voxel_mm,
            [*deeper, lt], tolerance_mm=tol, shadow=behind, midline=True, ridge=ridge,
        )
        return [lt, il]

    if reuse is None:
        es_knots, es_gains, es_csa = calibrate_gains(
            lambda g: erector("right", g, 0.0), centres, "right", ERECTOR_SPINAE_CSA_CM2,
            iterations=calibration_iterations,
        )
        calibration["erector_spinae"] = _calibration_record(es_knots, es_gains, es_csa, ERECTOR_SPINAE_CSA_CM2)
    else:
        calibration["erector_spinae"] = dict(reuse.calibration["erector_spinae"])
        es_knots = list(calibration["erector_spinae"]["knots_level"])
        es_gains = list(calibration["erector_spinae"]["radius_gain"])
    for side in ("left", "right"):
        lt, il = erector(side, level_gain(es_knots, es_gains), tolerance_mm)
        meshes[f"longissimus_{side}"] = lt
        meshes[f"iliocostalis_{side}"] = il
    return FascicleMuscles(dict(sorted(meshes.items())), calibration)


def _calibration_record(
    knots: Sequence[float], gains: Sequence[float], achieved: Mapping[str, float], targets: Mapping[str, float]
) -> dict[str, object]:
    return {
        "knots_level": [round(float(k), 3) for k in knots],
        "radius_gain": [round(float(g), 4) for g in gains],
        "csa_target_cm2": {d: float(v) for d, v in targets.items()},
        "csa_built_cm2": {d: round(float(v), 2) for d, v in achieved.items()},
    }


# --- latissimus dorsi -------------------------------------------------------------------------

#: Vertical axis (x, y in mm) around which the trunk's outer surface is mapped for shrink-wrapping.
WRAP_AXIS_XY = (0.0, -190.0)
#: Number of fascicles in the latissimus fan, T7 spinous process to the iliac crest.
LATISSIMUS_FASCICLES = 110
#: Points per latissimus fascicle (same for all, so the fan can be smoothed across).
LATISSIMUS_POINTS = 120
#: Sheet half-thickness at the origin and near the axilla (mm).
LATISSIMUS_RADIUS_MM = (3.0, 6.5)


@dataclass(frozen=True)
class RadialMap:
    """Outer radius of a body around a vertical axis, binned by angle and height.

    Attributes
    ----------
    theta : (nt,) float ndarray
        Bin centres of the angle from the posterior midline (rad, + toward the patient's right).
    z : (nz,) float ndarray
        Bin centres of the height (mm).
    radius : (nt, nz) float ndarray
        Largest radius of the body in each bin (mm); 0 where the body is absent.
    """

    theta: np.ndarray
    z: np.ndarray
    radius: np.ndarray

    def lookup(self, points: np.ndarray) -> np.ndarray:
        """Outer radius at the angle and height of each point (nearest bin), mm."""
        t, _, z = cylindrical(points)
        i = np.clip(np.searchsorted(self.theta, t), 0, len(self.theta) - 1)
        j = np.clip(np.searchsorted(self.z, z), 0, len(self.z) - 1)
        return self.radius[i, j]


def cylindrical(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Angle from the posterior midline (rad), radius (mm) and height (mm) about the wrap axis."""
    dx = points[:, 0] - WRAP_AXIS_XY[0]
    dy = points[:, 1] - WRAP_AXIS_XY[1]
    return np.arctan2(dx, -dy), np.hypot(dx, dy), points[:, 2]


def from_cylindrical(theta: np.ndarray, radius: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Inverse of :func:`cylindrical`."""
    return np.column_stack([WRAP_AXIS_XY[0] + radius * np.sin(theta), WRAP_AXIS_XY[1] - radius * np.cos(theta), z])


def radial_map(points: np.ndarray, dtheta_deg: float = 3.0, dz_mm: float = 6.0) -> RadialMap:
    """Outer-surface map of a point cloud (bone and muscle vertices), gaps closed by a max filter.

    Parameters
    ----------
    points : (n, 3) float ndarray
        Vertices of everything the sheet must lie over, mm.
    dtheta_deg, dz_mm : float
        Bin sizes.
    """
    from scipy import ndimage

    t, r, z = cylindrical(points)
    tb = np.arange(-np.pi, np.pi + 1e-9, np.radians(dtheta_deg))
    zb = np.arange(np.floor(z.min()), z.max() + dz_mm, dz_mm)
    i = np.clip(np.searchsorted(tb, t), 0, len(tb) - 1)
    j = np.clip(np.searchsorted(zb, z), 0, len(zb) - 1)
    grid = np.zeros((len(tb), len(zb)))
    np.maximum.at(grid, (i, j), r)
    # Ribs leave gaps between them; the sheet spans them like skin over a rib cage.
    grid = ndimage.maximum_filter(grid, size=(3, 5))
    grid = ndimage.gaussian_filter(grid, sigma=(1.0, 1.5))
    return RadialMap(tb, zb, grid)


def wrap_over(path: np.ndarray, body: RadialMap, offset: np.ndarray, free: np.ndarray) -> np.ndarray:
    """Push path points radially out so they clear the body surface by ``offset`` mm.

    Parameters
    ----------
    path : (n, 3) float ndarray
        Path, mm.
    body : RadialMap
        Outer surface of the structures underneath.
    offset : (n,) float ndarray
        Required clearance per point, mm (typically the tube radius plus a gap).
    free : (n,) bool ndarray
        Points that may move (attachments stay put).
    """
    t, r, z = cylindrical(path)
    target = np.maximum(r, body.lookup(path) + offset)
    out = from_cylindrical(t, np.where(free, target, r), z)
    # One smoothing pass so bins do not print through as kinks.
    inner = out[1:-1].copy()
    out[1:-1] = np.where(free[1:-1, None], 0.25 * out[:-2] + 0.5 * inner + 0.25 * out[2:], inner)
    return out


def resample_count(points: np.ndarray, n: int) -> np.ndarray:
    """Polyline resampled to exactly ``n`` points at equal arc-length steps, mm."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    t = np.linspace(0.0, s[-1], n)
    return np.column_stack([np.interp(t, s, points[:, i]) for i in range(3)])


def smooth_fan(fan: np.ndarray, body: RadialMap, offset: np.ndarray, free: np.ndarray) -> np.ndarray:
    """Even out the depth of neighbouring fascicles of a sheet, then re-clear the body.

    Wrapping each fascicle on its own leaves neighbours at slightly different depths, which
    shows as a comb of separate strands; averaging the radius across the fan closes the sheet.

    Parameters
    ----------
    fan : (k, n, 3) float ndarray
        Fascicles in order across the sheet, each with the same number of points, mm.
    body : RadialMap
        Surface underneath.
    offset : (n,) float ndarray
        Clearance per point, mm.
    free : (n,) bool ndarray
        Points that may move.
    """
    from scipy.ndimage import uniform_filter1d

    k, n, _ = fan.shape
    t, r, z = cylindrical(fan.reshape(-1, 3))
    r = uniform_filter1d(r.reshape(k, n), size=7, axis=0, mode="nearest")
    r = np.where(free[None, :], r, cylindrical(fan.reshape(-1, 3))[1].reshape(k, n))
    smoothed = from_cylindrical(t, r.ravel(), z).reshape(k, n, 3)
    return np.array([wrap_over(p, body, offset, free) for p in smoothed])


def crest_points(hip_bone: trimesh.Trimesh, x_range: tuple[float, float], n: int) -> np.ndarray:
    """Highest hip-bone point in each of ``n`` bins of |x| between ``x_range`` (the iliac crest), mm."""
    v = np.asarray(hip_bone.vertices)
    ax = np.abs(v[:, 0])
    edges = np.linspace(x_range[0], x_range[1], n + 1)
    out = []
    for a, b in zip(edges[:-1], edges[1:]):
        sel = v[(ax >= a) & (ax < b)]
        if len(sel):
            out.append(sel[np.argmax(sel[:, 2])])
    return np.array(out)


def spinous_tip(vertebra: trimesh.Trimesh) -> np.ndarray:
    """Most posterior point of a vertebra (tip of its spinous process), mm."""
    v = np.asarray(vertebra.vertices)
    return v[np.argmin(v[:, 1])]


def latissimus_origin_line(
    bones: Mapping[str, trimesh.Trimesh], side: str, model_origins: np.ndarray
) -> np.ndarray:
    """Fleshy origin line of latissimus dorsi, from the T7 spinous process to the iliac crest.

    Upper fibres arise from the T7-T12 spinous processes (the model's own attachments); lower
    fibres arise from the thoracolumbar fascia along a line running down and out to the posterior
    iliac crest, medial to which the fascia is aponeurotic.

    Returns
    -------
    (k, 3) float ndarray
        Ordered polyline, mm.
    """
    sign = 1.0 if side == "right" else -1.0
    top = [spinous_tip(bones[f"vertebra_t{i}"]) + [sign * 4.0, 0.0, 0.0] for i in (7, 9, 11, 12)]
    l2 = spinous_tip(bones["vertebra_l2"])
    fascia = [l2 + [sign * 35.0, 8.0, 0.0]]
    crest = crest_points(bones[f"hip_bone_{side}"], (48.0, 100.0), 5)
    line = np.vstack([model_origins, *top, *fascia, crest])
    # Order by arc from the top: sort by height for the spinal part, then the crest outward.
    spinal = line[: len(model_origins) + len(top) + len(fascia)]
    spinal = spinal[np.argsort(-spinal[:, 2])]
    crest = crest[np.argsort(np.abs(crest[:, 0]))]
    return np.vstack([spinal, crest])


def _on_side(structure_id: str, side: str) -> bool:
    """Whether a structure lies on ``side`` (midline structures lie on both)."""
    return structure_id.endswith("_" + side) or not structure_id.endswith(("_left", "_right"))


def build_latissimus(
    fascicles: Mapping[str, Fascicle],
    bones: Mapping[str, trimesh.Trimesh],
    deeper: Mapping[str, trimesh.Trimesh],
    *,
    voxel_mm: float = 1.5,
    tolerance_mm: float = 0.2,
) -> dict[str, trimesh.Trimesh]:
    """Latissimus dorsi sheets (``latissimus_dorsi_left/right``) laid over the deeper structures.

    The model's three fascicles per side fix the humeral insertion, the axillary fold and the
    T7-T12 origins; a fan of fascicles is spread between the insertion and the whole origin line
    (:func:`latissimus_origin_line`) and shrink-wrapped over ribs, scapula and erector spinae.
    """
    out: dict[str, trimesh.Trimesh] = {}
    for side in ("left", "right"):
        suffix = "_l" if side == "left" else ""
        model = [fascicles[f"LAT{i}{suffix}"].points for i in (1, 2, 3)]
        insertion = np.mean([p[0] for p in model], axis=0)
        # The axillary fold: where the model paths leave the humerus wrap and turn medially.
        axilla = np.mean([p[4] for p in model], axis=0)
        line = latissimus_origin_line(bones, side, np.array([p[-1] for p in model]))
        arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(line, axis=0), axis=1))])
        u = np.linspace(0.0, arc[-1], LATISSIMUS_FASCICLES)
        origins = np.column_stack([np.interp(u, arc, line[:, i]) for i in range(3)])
        sign = 1.0 if side == "right" else -1.0
        body_ids = [b for b in sorted(bones) if b.startswith(("rib_cage", "scapula_" + side, "vertebra_t", "vertebra_l", "hip_bone_" + side))]
        body_pts = np.concatenate(
            [np.asarray(bones[b].vertices) for b in body_ids]
            + [np.asarray(deeper[m].vertices) for m in sorted(deeper) if _on_side(m, side)]
        )
        body = radial_map(body_pts[sign * body_pts[:, 0] > -5.0])
        paths, radii = [], []
        r0, r1 = LATISSIMUS_RADIUS_MM
        t = np.linspace(0.0, 1.0, LATISSIMUS_POINTS)
        radius = r1 + (r0 - r1) * np.clip(t / 0.6, 0, 1) ** 0.7
        radius = radius * (0.55 + 0.45 * np.clip(t / 0.08, 0, 1))
        free = (t > 0.12) & (t < 0.999)
        fan = []
        for k, origin in enumerate(origins):
            # Lower fibres twist to insert lowest and reach the axilla along its posterior fold.
            fold = axilla + [0.0, -6.0 * k / len(origins), -25.0 * k / len(origins)]
            head = np.array([insertion, 0.5 * (insertion + fold), fold])
            path = resample_count(np.vstack([head, origin]), LATISSIMUS_POINTS)
            for _ in range(3):
                path = wrap_over(path, body, radius + 2.0, free)
            fan.append(path)
        fan = smooth_fan(np.array(fan), body, radius + 2.0, free)
        paths = list(fan)
        radii = [radius] * len(paths)
        solid = [bones[b] for b in sorted(bones) if b.startswith(("vertebra_t", "vertebra_l", "sacrum"))]
        own_side = [deeper[m] for m in sorted(deeper) if _on_side(m, side)]
        out[f"latissimus_dorsi_{side}"] = volume.tube_union_surface(
            paths, radii, voxel_mm, solid + own_side, blend_mm=2.0, tolerance_mm=tolerance_mm,
            shadow=own_side, midline=True,
        )
    return out


# --- thoracolumbar fascia ---------------------------------------------------------------------

#: Half-width of the posterior layer of the thoracolumbar fascia from the midline (mm).
FASCIA_HALF_WIDTH_MM = 82.0
#: Thickness drawn (mm); the real sheet is thinner but must survive a 1 mm grid.
FASCIA_THICKNESS_MM = 2.4


def fill_missing(values: np.ndarray) -> np.ndarray:
    """Replace non-finite cells by their nearest finite neighbour (2D)."""
    from scipy import ndimage

    bad = ~np.isfinite(values)
    if not bad.any() or bad.all():
        return values
    idx = ndimage.distance_transform_edt(bad, return_distances=False, return_indices=True)
    return values[tuple(idx)]


def fascia_outline(bones: Mapping[str, trimesh.Trimesh], ax: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper height (mm) of the fascia's lumbar diamond at each distance ``ax`` from the midline.

    Medially it runs from the T12 spinous process down the sacrum; laterally from the lowest rib
    level down to the iliac crest, where the latissimus and the erector spinae arise from it.
    """
    top_mid = spinous_tip(bones["vertebra_t12"])[2]
    sacrum = np.asarray(bones["sacrum"].vertices)
    bottom_mid = sacrum[np.argmin(sacrum[:, 1]), 2] - 10.0
    crest = np.vstack([crest_points(bones[f"hip_bone_{s}"], (25.0, FASCIA_HALF_WIDTH_MM + 5.0), 10) for s in ("left", "right")])
    order = np.argsort(np.abs(crest[:, 0]))
    cx, cz = np.abs(crest[order, 0]), crest[order, 2]
    bottom = np.interp(ax, np.concatenate([[0.0], cx]), np.concatenate([[bottom_mid], cz]))
    top = top_mid - 0.55 * ax
    return bottom, top


def build_thoracolumbar_fascia(
    bones: Mapping[str, trimesh.Trimesh],
    under: Mapping[str, trimesh.Trimesh],
    *,
    voxel_mm: float = 1.0,
    tolerance_mm: float = 0.2,
) -> trimesh.Trimesh:
    """Posterior layer of the thoracolumbar fascia: a thin closed sheet over the lumbar muscles.

    Built as a slab in the distance-field domain: it follows the posterior surface of the
    erector spinae, multifidus and lumbar spinous processes (seen from behind, smoothed) at a
    1 mm gap, inside a diamond from T12 to the sacrum and out to the iliac crests.

    Parameters
    ----------
    bones : mapping of str to trimesh.Trimesh
        Bones by structure id.
    under : mapping of str to trimesh.Trimesh
        Muscles it lies on (both sides).
    voxel_mm, tolerance_mm : float
        Grid spacing and decimation tolerance, mm.
    """
    from scipy import ndimage

    spinal = [bones[f"vertebra_l{i}"] for i in range(1, 6)] + [bones["vertebra_t12"]]
    surf = posterior_surface([*spinal, *(under[k] for k in sorted(under))], spacing=voxel_mm, widen_mm=3.0)
    x0, x1 = -FASCIA_HALF_WIDTH_MM, FASCIA_HALF_WIDTH_MM
    zb, zt = fascia_outline(bones, np.array([0.0, FASCIA_HALF_WIDTH_MM]))
    z0, z1 = min(zb.min(), zt.min()) - 5.0, max(zb.max(), zt.max()) + 5.0
    ax = np.arange(x0 - 4.0, x1 + 4.0, voxel_mm)
    az = np.arange(z0 - 4.0, z1 + 4.0, voxel_mm)
    gx, gz = np.meshgrid(ax, az, indexing="ij")
    pts = np.column_stack([gx.ravel(), np.zeros(gx.size), gz.ravel()])
    raw = surf.lookup(pts).reshape(gx.shape)
    covered = ndimage.binary_closing(np.isfinite(raw), iterations=3)
    back = fill_missing(raw)
    # Smooth over the spinous processes and muscle bulges like a stretched sheet; the minimum
    # filter first keeps the smoothed sheet behind every bump.
    back = ndimage.gaussian_filter(ndimage.minimum_filter(back, size=9), sigma=4.0)
    half = FASCIA_THICKNESS_MM / 2.0
    centre = back - 1.0 - half
    bottom, top = fascia_outline(bones, np.abs(gx))
    # Only over something: beyond the muscles' lateral edge the sheet would hang in the air.
    inside2d = (np.abs(gx) <= FASCIA_HALF_WIDTH_MM) & (gz >= bottom) & (gz <= top) & covered
    outline = (ndimage.distance_transform_edt(~inside2d) - ndimage.distance_transform_edt(inside2d)) * voxel_mm
    outline = ndimage.gaussian_filter(outline, sigma=2.5)  # rounds the ragged edge of the mask
    ay = np.arange(np.nanmin(centre) - 2 * half - 4.0, np.nanmax(centre) + 2 * half + 4.0, voxel_mm)
    grid = volume.Grid(np.array([ax[0], ay[0], az[0]]), (len(ax), len(ay), len(az)), voxel_mm)
    slab = np.abs(ay[None, :, None] - centre[:, None, :]) - half
    field = np.maximum(slab, outline[:, None, :]).astype(np.float32)
    mesh = volume.field_to_mesh(field, grid)
    mesh = volume.relax(volume.largest_components(mesh), 10)
    return volume.simplify(mesh, tolerance_mm) if tolerance_mm > 0 else mesh
