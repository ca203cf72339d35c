"""Back muscles that the myo-sim model lacks, built from landmarks on its bone meshes.

Trapezius and the rhomboids are flat sheets: a grid of fibres is stretched between the origin and
insertion lines, shrink-wrapped over an offset envelope of the bones and the deeper muscles, then
thickened into a closed slab in the signed-distance domain. Levator scapulae, spinalis,
semispinalis and rotatores are bundles of fascicles whose paths are pushed out of the envelope of
what lies beneath them and merged with :func:`viewer.atlas_build.volume.tube_union_surface`.

All coordinates are in the atlas frame (RAS millimetres, +x patient's right, +y anterior,
+z superior, midline x = 0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import trimesh
from scipy import ndimage

from viewer.atlas_build import landmarks as lm
from viewer.atlas_build.volume import (
    Grid,
    as_manifold,
    field_to_mesh,
    grid_around,
    largest_components,
    occupancy,
    relax,
    signed_distance_from_occupancy,
    tube_union_surface,
)

SIDES = lm.SIDES
#: Structure ids returned by :func:`build_landmark_muscles`.
LANDMARK_MUSCLE_IDS: tuple[str, ...] = tuple(
    f"{muscle}_{side}"
    for muscle in (
        "trapezius",
        "rhomboid_major",
        "rhomboid_minor",
        "levator_scapulae",
        "spinalis",
        "semispinalis",
        "rotatores",
    )
    for side in SIDES
)
#: Layer of each muscle (by muscle name without the side).
LANDMARK_MUSCLE_LAYERS: dict[str, str] = {
    "trapezius": "superficial",
    "rhomboid_major": "superficial",
    "rhomboid_minor": "superficial",
    "levator_scapulae": "superficial",
    "spinalis": "intermediate",
    "semispinalis": "deep",
    "rotatores": "deep",
}

#: Region of the body the envelopes cover (mm): the back of the trunk, neck and head.
_ENVELOPE_BOX = np.array([[-215.0, -345.0, 1150.0], [215.0, -120.0, 1790.0]])
#: The part of it beside the spine, enough for the muscles in the vertebral grooves.
_SPINE_BOX = np.array([[-95.0, -345.0, 1150.0], [95.0, -150.0, 1790.0]])
_ENVELOPE_VOXEL_MM = 2.5
_BLUR_MARGIN_MM = 1.0
#: Thickening (mm) of a densely sampled tube by the blend between its own segments.
_JOINT_SWELL_MM = 0.5
#: Triangle budget per muscle.
_MAX_FACES = 24000


# --------------------------------------------------------------------------- envelope


@dataclass(frozen=True)
class Envelope:
    """Signed distance (mm) to a closed hull around bones and muscles, sampled on a grid.

    Attributes
    ----------
    grid : Grid
        Voxel grid of the field.
    field : (nx, ny, nz) float32 ndarray
        Negative inside the hull, positive outside (mm).
    """

    grid: Grid
    field: np.ndarray

    def distance(self, points: np.ndarray) -> np.ndarray:
        """Signed distance at ``(n, 3)`` points (mm), trilinear; constant outside the grid."""
        idx = ((np.asarray(points, dtype=np.float64) - self.grid.origin) / self.grid.spacing).T
        return ndimage.map_coordinates(self.field, idx, order=1, mode="nearest")

    def gradient(self, points: np.ndarray) -> np.ndarray:
        """Unit outward direction at ``(n, 3)`` points (central differences of the field)."""
        p = np.asarray(points, dtype=np.float64)
        h = self.grid.spacing
        g = np.column_stack(
            [self.distance(p + h * e) - self.distance(p - h * e) for e in np.eye(3)]
        )
        norm = np.linalg.norm(g, axis=1, keepdims=True)
        fallback = np.array([0.0, -1.0, 0.0])  # posterior: outward for the back
        return np.where(norm > 1e-9, g / np.maximum(norm, 1e-9), fallback)

    def push_out(self, points: np.ndarray, clearance: float | np.ndarray, steps: int = 6) -> np.ndarray:
        """Move points that lie closer than ``clearance`` (mm) to the hull out to that distance.

        Parameters
        ----------
        points : (n, 3) float ndarray
        clearance : float or (n,) float ndarray
            Wanted distance outside the hull, mm.
        steps : int
            Newton steps along the field gradient.

        Returns
        -------
        (n, 3) float ndarray
        """
        p = np.array(points, dtype=np.float64)
        c = np.broadcast_to(np.asarray(clearance, dtype=np.float64), (len(p),))
        for _ in range(steps):
            deficit = c - self.distance(p)
            if not (deficit > 1e-3).any():
                break
            p += np.clip(deficit, 0.0, None)[:, None] * self.gradient(p)
        return p


def _surface_mask(grid: Grid, mesh: trimesh.Trimesh) -> np.ndarray:
    """Voxels touched by a (possibly open) surface."""
    count = int(np.ceil(mesh.area / (0.5 * grid.spacing) ** 2)) + len(mesh.vertices)
    # Fixed seed: same mesh, same samples, same envelope.
    samples, _ = trimesh.sample.sample_surface(mesh, count, seed=0)
    v = np.vstack([mesh.vertices, samples])
    ijk = np.round((v - grid.origin) / grid.spacing).astype(int)
    ok = np.all((ijk >= 0) & (ijk < np.array(grid.shape)), axis=1)
    mask = np.zeros(grid.shape, dtype=bool)
    mask[tuple(ijk[ok].T)] = True
    return mask


def _solid_mask(grid: Grid, mesh: trimesh.Trimesh) -> np.ndarray:
    """Voxels inside a closed mesh, or on the surface of an open one."""
    if not _overlaps(mesh.bounds, grid):
        return np.zeros(grid.shape, dtype=bool)
    mask = _surface_mask(grid, mesh)
    if mesh.is_watertight:
        mask |= occupancy(grid, mesh)
    return mask


def _overlaps(bounds: np.ndarray, grid: Grid) -> bool:
    hi = grid.origin + grid.spacing * (np.array(grid.shape) - 1)
    return bool(np.all(bounds[0] <= hi) and np.all(bounds[1] >= grid.origin))


def envelope_grid() -> Grid:
    """The voxel grid shared by all envelopes, mirror-symmetric about the midline.

    An even number of columns puts voxel centres at +-h/2, +-3h/2, ... so the two sides are
    sampled alike (and no column runs along x = 0, where the vertebra meshes have vertices).
    """
    h = _ENVELOPE_VOXEL_MM
    base = grid_around(_ENVELOPE_BOX, 0.0, h)
    nx = 2 * int(np.ceil(_ENVELOPE_BOX[1, 0] / h))
    origin = base.origin.copy()
    origin[0] = -0.5 * h * (nx - 1)
    return Grid(origin, (nx, base.shape[1], base.shape[2]), h)


def crop(grid: Grid, mask: np.ndarray, box: np.ndarray) -> tuple[Grid, np.ndarray]:
    """The part of a voxel mask inside ``box`` ((2, 3) mm), with its own grid."""
    sl = grid.index_range(box[0], box[1])
    start = np.array([s.start for s in sl])
    sub = mask[sl]
    return Grid(grid.origin + grid.spacing * start, sub.shape, grid.spacing), sub


def envelope_from_mask(grid: Grid, mask: np.ndarray, closing_mm: float) -> Envelope:
    """Close gaps narrower than ``2 * closing_mm`` (between ribs, around thin bone) and fill cavities.

    Parameters
    ----------
    grid : Grid
    mask : (nx, ny, nz) bool ndarray
        Voxels occupied by bone or muscle.
    closing_mm : float
        Radius of the morphological closing, mm.

    Returns
    -------
    Envelope
    """
    h = grid.spacing
    dilated = ndimage.distance_transform_edt(~mask) * h <= closing_mm
    closed = ndimage.distance_transform_edt(dilated) * h > closing_mm - 0.5 * h
    closed = ndimage.binary_fill_holes(closed | mask)
    # A light blur keeps voxel steps from printing through the sheets draped on the hull; it
    # also rounds off thin edges, so the blurred hull is grown by a margin to still cover them.
    field = ndimage.gaussian_filter(signed_distance_from_occupancy(closed, h), 1.0) - _BLUR_MARGIN_MM
    return Envelope(grid, field.astype(np.float32))


def union_mask(grid: Grid, meshes: Sequence[trimesh.Trimesh]) -> np.ndarray:
    """Voxels occupied by any of ``meshes``."""
    mask = np.zeros(grid.shape, dtype=bool)
    for mesh in meshes:
        mask |= _solid_mask(grid, mesh)
    return mask


# --------------------------------------------------------------------------- polylines


def resample(polyline: np.ndarray, n: int) -> np.ndarray:
    """``n`` points evenly spaced by arc length along a polyline.

    Parameters
    ----------
    polyline : (m, 3) float ndarray
    n : int

    Returns
    -------
    (n, 3) float ndarray
    """
    p = np.asarray(polyline, dtype=np.float64)
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
    if s[-1] <= 0:
        return np.repeat(p[:1], n, axis=0)
    t = np.linspace(0.0, s[-1], n)
    return np.column_stack([np.interp(t, s, p[:, i]) for i in range(3)])


def arc_length(polyline: np.ndarray) -> float:
    """Length of a polyline (mm)."""
    return float(np.linalg.norm(np.diff(np.asarray(polyline), axis=0), axis=1).sum())


def smooth_polyline(p: np.ndarray, iterations: int = 2) -> np.ndarray:
    """Relax interior points toward their neighbours; the end points stay put."""
    q = np.array(p, dtype=np.float64)
    for _ in range(iterations):
        q[1:-1] = 0.5 * q[1:-1] + 0.25 * (q[:-2] + q[2:])
    return q


def paired_lines(
    origin_parts: Sequence[np.ndarray], insertion_parts: Sequence[np.ndarray], n_total: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sample matching origin and insertion lines part by part.

    Part ``k`` of the origin feeds part ``k`` of the insertion; each part gets a share of the
    ``n_total`` fibres proportional to its origin length, so fibres start evenly spaced.

    Returns
    -------
    origin, insertion : (n, 3) float ndarray
    """
    lengths = np.array([max(arc_length(p), 1e-6) for p in origin_parts])
    counts = np.maximum(3, np.round(n_total * lengths / lengths.sum()).astype(int))
    o, i = [], []
    for k, (op, ip) in enumerate(zip(origin_parts, insertion_parts)):
        a, b = resample(op, counts[k] + 1), resample(ip, counts[k] + 1)
        last = k == len(origin_parts) - 1
        o.append(a if last else a[:-1])
        i.append(b if last else b[:-1])
    return np.vstack(o), np.vstack(i)


# --------------------------------------------------------------------------- sheets


def march_out(
    points: np.ndarray, direction: np.ndarray, envelope: Envelope, clearance: np.ndarray,
    step: float = 0.5, reach: float = 60.0,
) -> np.ndarray:
    """Move each point along a fixed direction until it is ``clearance`` (mm) outside the hull.

    Parameters
    ----------
    points : (n, 3) float ndarray
    direction : (3,) float ndarray
        Common direction of travel (any length).
    envelope : Envelope
    clearance : (n,) float ndarray
        Wanted distance outside the hull, mm.
    step, reach : float
        March step and longest travel, mm.

    Returns
    -------
    (n, 3) float ndarray
    """
    d = np.asarray(direction, dtype=np.float64)
    d = d / np.linalg.norm(d)
    travel = np.full(len(points), reach)
    for t in np.arange(0.0, reach, step)[::-1]:
        ok = envelope.distance(points + t * d) >= clearance
        travel = np.where(ok, t, travel)
    return points + travel[:, None] * d


def drape_sheet(
    origin: np.ndarray,
    insertion: np.ndarray,
    envelope: Envelope,
    lift: np.ndarray,
    iterations: int = 300,
    hug: float | np.ndarray = 0.35,
    max_step: float = 2.0,
    bulge: Sequence[float] = (0.0, -60.0, 0.0),
) -> np.ndarray:
    """Shrink-wrap a fibre grid spanned between two lines over an envelope.

    Each iteration relaxes the grid (a taut membrane), pins the attachment rows, pushes every
    point to at least ``lift`` outside the hull and pulls points that float further out back
    toward it by the fraction ``hug``.

    Parameters
    ----------
    origin, insertion : (nu, 3) float ndarray
        Attachment lines, mm; fibre ``j`` runs from ``origin[j]`` to ``insertion[j]``.
    envelope : Envelope
        Hull of what lies beneath the sheet.
    lift : (nu, nv) float ndarray
        Wanted distance of the sheet's mid-surface outside the hull, mm.
    iterations : int
    hug : float or (nu, nv) float ndarray
        0 leaves the sheet taut where it floats, 1 lays it right on the hull.
    max_step : float
        Largest move toward or away from the hull per iteration, mm.
    bulge : (3,) float sequence
        Offset (mm) of the starting sheet's middle from the straight fibres; points outward.

    Returns
    -------
    (nu, nv, 3) float ndarray
        Mid-surface points; ``[:, 0]`` on the origin line, ``[:, -1]`` on the insertion line.
    """
    nu, nv = lift.shape
    v = np.linspace(0.0, 1.0, nv)[None, :, None]
    grid = (1 - v) * origin[:, None, :] + v * insertion[:, None, :]
    # Start well behind the body and shrink onto it: approached from outside, the nearest hull
    # surface is the back, so fibres are not shoved sideways off ridges they began inside.
    grid = grid + np.sin(np.pi * v) * np.asarray(bulge, dtype=np.float64)
    flat_lift = lift.reshape(-1)
    flat_hug = np.broadcast_to(np.asarray(hug, dtype=np.float64), lift.shape).reshape(-1)
    for _ in range(iterations):
        pad = np.pad(grid, ((1, 1), (1, 1), (0, 0)), mode="edge")
        lap = 0.25 * (pad[:-2, 1:-1] + pad[2:, 1:-1] + pad[1:-1, :-2] + pad[1:-1, 2:]) - grid
        grid = grid + 0.8 * lap
        grid[:, 0], grid[:, -1] = origin, insertion
        p = grid.reshape(-1, 3)
        gap = envelope.distance(p) - flat_lift
        # Small steps: a point let jump across a ridge of the hull tears the sheet.
        step = np.clip(np.where(gap < 0, gap, flat_hug * gap), -max_step, max_step)
        p = p - step[:, None] * envelope.gradient(p)
        grid = p.reshape(nu, nv, 3)
    # Attachments are where the bone is, whatever the hull says.
    grid[:, 0], grid[:, -1] = origin, insertion
    return grid


def _bilinear_upsample(grid: np.ndarray, factor_u: int, factor_v: int) -> np.ndarray:
    """Refine a (nu, nv, c) grid by linear interpolation along both axes."""
    nu, nv = grid.shape[:2]
    u = np.linspace(0, nu - 1, (nu - 1) * factor_u + 1)
    w = np.linspace(0, nv - 1, (nv - 1) * factor_v + 1)
    uu, ww = np.meshgrid(u, w, indexing="ij")
    out = [ndimage.map_coordinates(grid[..., c], [uu, ww], order=1) for c in range(grid.shape[2])]
    return np.stack(out, axis=-1)


def thick_sheet_surface(
    mid: np.ndarray, thickness: np.ndarray, voxel_mm: float = 0.8, tolerance_mm: float = 0.2
) -> trimesh.Trimesh:
    """Closed slab of varying thickness around a sheet's mid-surface.

    The sheet is sampled densely, distances to it are taken on a voxel grid (exact distance to the
    nearest sample), the half-thickness of that sample is subtracted and the zero level is
    extracted, so the slab is closed with rounded rims whatever the sheet's folds.

    Parameters
    ----------
    mid : (nu, nv, 3) float ndarray
        Mid-surface grid, mm.
    thickness : (nu, nv) float ndarray
        Full thickness at each grid point, mm (at least ~2 voxels to stay closed).
    voxel_mm : float
    tolerance_mm : float
        Decimation tolerance, mm.

    Returns
    -------
    trimesh.Trimesh
        Watertight, outward-wound surface (mm).
    """
    step_u = np.percentile(np.linalg.norm(np.diff(mid, axis=0), axis=2), 99.5)
    step_v = np.percentile(np.linalg.norm(np.diff(mid, axis=1), axis=2), 99.5)
    f_u, f_v = (int(np.clip(np.ceil(d / (0.5 * voxel_mm)), 1, 24)) for d in (step_u, step_v))
    dense = _bilinear_upsample(np.concatenate([mid, thickness[..., None]], axis=2), f_u, f_v)
    pts, half = dense[..., :3].reshape(-1, 3), 0.5 * dense[..., 3].reshape(-1)
    grid = grid_around(pts, float(half.max()) + 3 * voxel_mm, voxel_mm)
    ijk = np.round((pts - grid.origin) / voxel_mm).astype(int)
    lin = np.ravel_multi_index(ijk.T, grid.shape)
    # One sample per voxel: the thickest, so rims never thin out by sampling order.
    order = np.lexsort((half, lin))
    last = np.r_[lin[order][1:] != lin[order][:-1], True]
    pick = order[last]
    seed = np.ones(grid.shape, dtype=bool)
    seed.flat[lin[pick]] = False
    sample_of = np.full(grid.shape, -1, dtype=np.int64)
    sample_of.flat[lin[pick]] = pick
    coarse, nearest = ndimage.distance_transform_edt(seed, return_indices=True)
    # Exact distances only in the band where the surface can be; elsewhere voxels are outside.
    band = np.flatnonzero(coarse.ravel() * voxel_mm < half.max() + 2.0 * voxel_mm)
    owner = sample_of.ravel()[np.ravel_multi_index(tuple(n.ravel()[band] for n in nearest), grid.shape)]
    centres = grid.origin + voxel_mm * np.column_stack(np.unravel_index(band, grid.shape))
    field = np.full(grid.shape, 1e3, dtype=np.float32)
    field.flat[band] = np.linalg.norm(centres - pts[owner], axis=1) - half[owner]
    mesh = largest_components(field_to_mesh(field, grid))
    return decimate(relax(mesh, 10), tolerance_mm)


def _edge_taper(n: int, width: float, floor: float) -> np.ndarray:
    """1 in the middle of ``n`` samples, easing to ``floor`` over ``width`` (fraction) at both ends."""
    t = np.linspace(0.0, 1.0, n)
    e = np.clip(np.minimum(t, 1 - t) / max(width, 1e-6), 0.0, 1.0)
    return floor + (1 - floor) * (3 * e**2 - 2 * e**3)


# --------------------------------------------------------------------------- muscle geometry


@dataclass(frozen=True)
class Landmarks:
    """Everything the muscles attach to."""

    spine: dict[str, lm.VertebraLandmarks]
    skull: lm.SkullLandmarks
    scapula: dict[str, lm.ScapulaLandmarks]
    clavicle: dict[str, np.ndarray]


def find_landmarks(bones: Mapping[str, trimesh.Trimesh]) -> Landmarks:
    """Landmarks of the spine, occiput, scapulae and clavicles."""
    return Landmarks(
        spine=lm.spine_landmarks(bones),
        skull=lm.skull_landmarks(bones["skull"]),
        scapula={s: lm.scapula_landmarks(bones[f"scapula_{s}"], s) for s in SIDES},
        clavicle={s: lm.clavicle_lateral_third(bones[f"clavicle_{s}"], s) for s in SIDES},
    )


def _sp(marks: Landmarks, level: str, side: str, lateral: float = 1.0) -> np.ndarray:
    """Spinous-process tip nudged toward ``side`` (fibres grip its flank, not its crest)."""
    p = marks.spine[level].spinous_tip.copy()
    p[0] += lm.side_sign(side) * lateral
    return p


def _levels(first: str, last: str) -> list[str]:
    from viewer.levels import VERTEBRAE

    return list(VERTEBRAE[VERTEBRAE.index(first) : VERTEBRAE.index(last) + 1])


def _border_between(scap: lm.ScapulaLandmarks, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Part of the medial border (superior angle -> inferior angle) between two of its points."""
    b = scap.medial_border
    i = int(np.argmin(np.linalg.norm(b - start, axis=1)))
    j = int(np.argmin(np.linalg.norm(b - stop, axis=1)))
    part = b[min(i, j) : max(i, j) + 1]
    return part if i <= j else part[::-1]


def trapezius_lines(
    marks: Landmarks, side: str, n_fibres: int = 96
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Matching origin and insertion lines of one trapezius.

    Occipital and upper nuchal fibres go to the lateral third of the clavicle, lower nuchal ones
    to the acromion, C7-T3 to the spine of the scapula and T4-T12 converge on its root.

    Returns
    -------
    origin, insertion : (n, 3) float ndarray
        Fibre ``j`` runs from ``origin[j]`` to ``insertion[j]`` (mm).
    part : (n,) int ndarray
        0 descending, 1 transverse, 2 ascending part, per fibre.
    """
    s = lm.side_sign(side)
    snl = marks.skull.superior_nuchal_line[side]
    snl = snl[~np.isnan(snl).any(axis=1)]
    snl = snl[np.abs(snl[:, 0]) <= 26.0][::-1]  # medial third, lateral -> protuberance
    eop = marks.skull.external_occipital_protuberance
    c7 = _sp(marks, "C7", side)
    # The nuchal ligament's free edge runs from the protuberance to C7 behind the cervical spines.
    lig = np.linspace(eop, c7, 12)
    lig[:, 0] = s * 1.0
    spines = np.array([_sp(marks, lv, side) for lv in _levels("C7", "T12")])
    t3 = 4
    scap = marks.scapula[side]
    clav = smooth_polyline(resample(marks.clavicle[side], 10), 3)
    spine_crest = np.vstack([scap.acromion, scap.spine[::-1][1:]])  # acromion -> root
    spine_crest = resample(spine_crest, 40)
    near_root = spine_crest[-8:]
    origin_parts = [
        np.vstack([snl, eop]),
        lig[:7],
        lig[6:],
        spines[: t3 + 1],
        spines[t3:],
    ]
    insertion_parts = [
        clav[: len(clav) // 2 + 1],
        np.vstack([clav[len(clav) // 2 :], scap.acromion]),
        spine_crest[:12],
        spine_crest[11:-7],
        near_root,
    ]
    parts = [0, 0, 0, 1, 2]
    o, i = paired_lines(origin_parts, insertion_parts, n_fibres)
    lengths = np.array([arc_length(p) for p in origin_parts])
    counts = np.maximum(3, np.round(n_fibres * lengths / lengths.sum()).astype(int))
    part_of = np.concatenate([np.full(c, p) for c, p in zip(counts, parts)])
    part_of = np.concatenate([part_of, [parts[-1]]])[: len(o)]
    return o, i, part_of


def trapezius_thickness(part_of: np.ndarray, nv: int) -> np.ndarray:
    """Thickness (mm) over the trapezius grid: thick descending part, thin aponeurotic origin."""
    base = np.array([6.5, 4.5, 3.2])[part_of].astype(float)
    base = ndimage.gaussian_filter1d(base, 3.0, mode="nearest")
    v = np.linspace(0.0, 1.0, nv)
    along = 0.45 + 0.55 * np.clip(v / 0.25, 0, 1) ** 0.7  # tendinous near the spine
    along *= 1.0 - 0.35 * np.clip((v - 0.8) / 0.2, 0, 1)  # flat tendon onto the bone
    return np.maximum(base[:, None] * along[None, :] * _edge_taper(len(part_of), 0.06, 0.4)[:, None], 1.8)


def build_trapezius(marks: Landmarks, side: str, envelope: Envelope) -> trimesh.Trimesh:
    """One trapezius: a continuous triangular sheet from the occiput and C7-T12 to the shoulder.

    Parameters
    ----------
    marks : Landmarks
    side : {"left", "right"}
    envelope : Envelope
        Hull of everything the trapezius covers (bones, deeper muscles, rhomboids, levator).

    Returns
    -------
    trimesh.Trimesh
        Closed slab (mm), 2-6.5 mm thick, thickest in the descending part.
    """
    o, i, part_of = trapezius_lines(marks, side)
    nv = 40
    thick = trapezius_thickness(part_of, nv)
    # The origin sits just behind the spines and ligament, over the deeper muscles' groove.
    o = o + np.outer(0.5 * thick[:, 0] + 0.5, [0.0, -1.0, 0.0])
    i = envelope.push_out(i, 1.0 + 0.5 * thick[:, -1])
    # Free borders stay taut instead of sagging into the gaps beside the scapula.
    hug = 0.35 * _edge_taper(len(o), 0.12, 0.15)[:, None] * np.ones((1, nv))
    mid = drape_sheet(o, i, envelope, 1.0 + 0.5 * thick, hug=hug)
    return thick_sheet_surface(mid, thick, voxel_mm=1.0, tolerance_mm=0.08)


def build_rhomboid(marks: Landmarks, side: str, which: str, envelope: Envelope) -> trimesh.Trimesh:
    """Rhomboid major (SPs T2-T5) or minor (nuchal ligament, SPs C7-T1) to the medial border.

    Parameters
    ----------
    marks : Landmarks
    side : {"left", "right"}
    which : {"major", "minor"}
    envelope : Envelope
        Hull of the bones and the muscles under the rhomboids.

    Returns
    -------
    trimesh.Trimesh
        Closed, flat parallelogram slab (mm).
    """
    if which not in ("major", "minor"):
        raise ValueError(f"which must be 'major' or 'minor', got {which!r}")
    scap = marks.scapula[side]
    if which == "major":
        origin = np.array([_sp(marks, lv, side, 0.5) for lv in _levels("T2", "T5")])
        border = _border_between(scap, scap.spine_root, scap.inferior_angle)
        border = border[1:] if len(border) > 3 else border  # leave a slit below rhomboid minor
        n, base = 44, 5.0
    else:
        c6, c7 = marks.spine["C6"].spinous_tip, _sp(marks, "C7", side, 0.5)
        lig = 0.6 * c7 + 0.4 * c6  # lower end of the nuchal ligament
        lig[0] = c7[0]
        origin = np.vstack([lig, c7, _sp(marks, "T1", side, 0.5)])
        full = _border_between(scap, scap.superior_angle, scap.spine_root)
        border = resample(full, 10)[2:]
        n, base = 26, 4.5
    o, i = resample(origin, n), resample(border, n)
    nv = 28
    v = np.linspace(0, 1, nv)
    thick = base * _edge_taper(n, 0.12, 0.45)[:, None] * (0.55 + 0.45 * np.sin(np.pi * v) ** 0.5)[None, :]
    thick = np.maximum(thick, 1.8)
    # Tendinous ends on the flank of the spines (in front of trapezius, which takes their tips)
    # and on the posterior lip of the medial border.
    o = o + np.outer(0.5 * thick[:, 0], [lm.side_sign(side), 0.0, 0.0]) + [0.0, 3.0, 0.0]
    i = i + np.outer(0.5 * thick[:, -1], scap.normal)
    hug = 0.6 * _edge_taper(n, 0.15, 0.2)[:, None] * np.ones((1, nv))
    # Leave the spines backward and outward before draping: pushed out along the hull's gradient
    # the sheet would have to choose between climbing over the spine's ridge and sliding off it.
    lift = 1.0 + 0.5 * thick
    o_out = march_out(o, np.array([0.4 * lm.side_sign(side), -1.0, 0.0]), envelope, lift[:, 1])
    mid = drape_sheet(o_out, i, envelope, lift[:, 1:], hug=hug[:, 1:])
    mid = np.concatenate([o[:, None], mid], axis=1)
    return thick_sheet_surface(mid, thick, voxel_mm=0.8, tolerance_mm=0.05)


def _tube_path(a: np.ndarray, b: np.ndarray, n: int, bulge: np.ndarray | None = None) -> np.ndarray:
    """Straight path with ``n`` points, optionally bowed by ``bulge`` (mm vector) at mid-length."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    p = (1 - t) * a + t * b
    if bulge is not None:
        p = p + np.sin(np.pi * t) * bulge
    return p


def _drape_path(path: np.ndarray, envelope: Envelope, clearance: np.ndarray, rounds: int = 4) -> np.ndarray:
    """Push a path out of the envelope and relax it; its two ends stay on their landmarks."""
    p = envelope.push_out(path, clearance)
    for _ in range(rounds):
        p = envelope.push_out(smooth_polyline(p, 2), clearance)
    # A last relaxation: pushed points step with the hull's voxels and would bead the tube.
    p = smooth_polyline(p, 3)
    p[0], p[-1] = path[0], path[-1]
    return p


def _belly(n: int, end: float, mid: float, power: float = 0.7) -> np.ndarray:
    """Radius profile (mm): ``end`` at both tendons swelling to ``mid`` in the belly."""
    return end + (mid - end) * np.sin(np.pi * np.linspace(0, 1, n)) ** power


def levator_scapulae_paths(marks: Landmarks, side: str, envelope: Envelope) -> tuple[list, list]:
    """Four slips from the transverse processes C1-C4 converging on the superior angle.

    Returns
    -------
    paths : list of (n, 3) float ndarray
        Fascicle polylines, mm, laid outside ``envelope``.
    radii : list of (n,) float ndarray
        Tube radius along each path, mm.
    """
    scap = marks.scapula[side]
    upper = resample(_border_between(scap, scap.superior_angle, scap.spine_root), 6)
    # The C1 slip ends lowest and the C4 slip highest, so the strap twists on its way down.
    targets = [upper[3], upper[2], upper[1], upper[0]]
    paths, radii = [], []
    n = 18
    mids = []
    origins = [marks.spine[lv].transverse_tip[side] for lv in ("C1", "C2", "C3", "C4")]
    for o, tgt in zip(origins, targets):
        mids.append(0.5 * (o + tgt))
    centre = np.mean(mids, axis=0)
    for o, tgt in zip(origins, targets):
        p = _tube_path(o, tgt, n)
        w = (np.sin(np.pi * np.linspace(0, 1, n)) ** 1.5)[:, None]
        p = p + 0.8 * w * (centre - 0.5 * (o + tgt))  # slips gather into one belly
        r = _belly(n, 3.0, 5.5) + np.linspace(0.0, 1.5, n)  # broad flat insertion
        paths.append(_drape_path(p, envelope, r + 1.0))
        radii.append(r)
    return paths, radii


def spinalis_paths(marks: Landmarks, side: str, envelope: Envelope) -> tuple[list, list]:
    """Fascicles from the spines of T11-L2 to the spines of T2-T8, hugging the spinous processes.

    Returns
    -------
    paths : list of (n, 3) float ndarray
        Fascicle polylines, mm, laid outside ``envelope``.
    radii : list of (n,) float ndarray
        Tube radius along each path, mm.
    """
    s = lm.side_sign(side)
    pairs = [("T2", "L2"), ("T3", "L2"), ("T4", "L1"), ("T5", "L1"),
             ("T6", "T12"), ("T7", "T12"), ("T8", "T11")]
    paths, radii = [], []
    for k, (top, bottom) in enumerate(pairs):
        levels = _levels(top, bottom)
        tips = np.array([marks.spine[lv].spinous_tip for lv in levels])
        n = 4 * (len(tips) - 1) + 1
        # The tips zig-zag (alternating spine lengths); the muscle glides past them smoothly.
        line = smooth_polyline(resample(tips, n), 8)
        t = np.linspace(0.0, 1.0, n)
        bow = np.sin(np.pi * t)
        lateral = 3.0 + (5.0 + 0.6 * k) * bow
        line[:, 0] = s * lateral
        line[:, 1] += 4.0 + 6.0 * bow  # beside the spines, not behind them
        r = _belly(n, 1.6, 3.6 - 0.15 * k)
        paths.append(_drape_path(line, envelope, r + 0.5, rounds=8))
        radii.append(r)
    return paths, radii


def semispinalis_paths(marks: Landmarks, side: str, envelope: Envelope) -> tuple[list, list]:
    """Thoracis (TPs T6-T10 -> SPs C6-T4), cervicis (TPs T1-T6 -> SPs C2-C5) and capitis.

    Returns
    -------
    paths : list of (n, 3) float ndarray
        Fascicle polylines, mm, laid outside ``envelope``.
    radii : list of (n,) float ndarray
        Tube radius along each path, mm.
    """
    sp = marks.spine
    paths, radii = [], []
    thoracis = [("T6", "C6"), ("T6", "C7"), ("T7", "C7"), ("T7", "T1"), ("T8", "T1"), ("T8", "T2"),
                ("T9", "T2"), ("T9", "T3"), ("T10", "T3"), ("T10", "T4")]
    cervicis = [("T1", "C2"), ("T2", "C2"), ("T2", "C3"), ("T3", "C3"), ("T4", "C4"), ("T5", "C4"),
                ("T5", "C5"), ("T6", "C5")]
    for group, r_mid in ((thoracis, 3.6), (cervicis, 4.0)):
        for lo, hi in group:
            a = sp[lo].transverse_root[side]
            b = _sp(marks, hi, side, 2.5)
            p = _tube_path(a, b, 16, bulge=np.array([0.0, -4.0, 0.0]))
            r = _belly(16, 1.6, r_mid)
            paths.append(_drape_path(p, envelope, r + 0.5))
            radii.append(r)
    skull = marks.skull
    sup, inf = skull.superior_nuchal_line[side], skull.inferior_nuchal_line[side]
    between = 0.55 * sup + 0.45 * inf
    between = between[~np.isnan(between).any(axis=1)]
    between = between[(np.abs(between[:, 0]) >= 4.0) & (np.abs(between[:, 0]) <= 34.0)]
    insert = resample(between, 10)
    origins = [sp[lv].articular[side] for lv in ("C4", "C5", "C6")]
    origins += [sp[lv].transverse_tip[side] for lv in ("C7", "T1", "T2", "T3", "T4", "T5", "T6")]
    # Lower (thoracic) slips reach the occiput most medially, as in the biventer part.
    for o, b in zip(origins, insert[::-1]):
        p = _tube_path(o, b, 22, bulge=np.array([0.0, -6.0, 0.0]))
        r = _belly(22, 3.0, 6.4, power=0.5)
        paths.append(_drape_path(p, envelope, r + 0.5))
        radii.append(r)
    return paths, radii


def rotatores_paths(marks: Landmarks, side: str, envelope: Envelope) -> tuple[list, list]:
    """Brevis (one level) and longus (two levels) from each transverse process to the lamina above.

    Returns
    -------
    paths : list of (n, 3) float ndarray
        Fascicle polylines, mm, laid outside ``envelope``.
    radii : list of (n,) float ndarray
        Tube radius along each path, mm.
    """
    from viewer.levels import VERTEBRAE

    sp = marks.spine
    paths, radii = [], []
    for lv in _levels("C3", "L5"):
        k = VERTEBRAE.index(lv)
        r_mid = 2.4 if lv.startswith("T") else 1.7
        for span in (1, 2):
            if k - span < 1 or VERTEBRAE[k - span] not in sp:
                continue
            a = sp[lv].transverse_root[side]
            up = sp[VERTEBRAE[k - span]]
            b = up.lamina[side].copy()
            if span == 2:
                # Longus ends nearer the base of the spinous process than brevis.
                b = 0.5 * (up.lamina[side] + up.spinous_tip)
                b[0] = 0.7 * up.lamina[side][0]
            p = _tube_path(a, b, 10)
            r = _belly(10, 1.0, r_mid if span == 1 else 0.8 * r_mid)
            paths.append(_drape_path(p, envelope, r + 0.4))
            radii.append(r)
    return paths, radii


# --------------------------------------------------------------------------- assembly


def _closed_bones(bones: Mapping[str, trimesh.Trimesh]) -> list[trimesh.Trimesh]:
    return [m for k, m in sorted(bones.items()) if k.startswith(("vertebra_", "sacrum")) and m.is_watertight]


def _pick(meshes: Mapping[str, trimesh.Trimesh], prefixes: tuple[str, ...]) -> list[trimesh.Trimesh]:
    return [m for k, m in sorted(meshes.items()) if k.startswith(prefixes)]


def _densify(path: np.ndarray, radius: np.ndarray, step: float = 1.2) -> tuple[np.ndarray, np.ndarray]:
    """Resample a path and its radii every ``step`` mm or closer.

    The tube union blends consecutive segments too, which swells each joint a little; with
    joints closer than the swelling is wide, the swellings merge instead of ringing the tube.
    """
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))])
    t = np.linspace(0.0, s[-1], max(int(np.ceil(s[-1] / step)) + 1, 2))
    dense = np.column_stack([np.interp(t, s, path[:, i]) for i in range(3)])
    r = np.broadcast_to(np.asarray(radius, dtype=np.float64), (len(path),))
    # The merged swellings add about half a millimetre all round; take it off the radii.
    return dense, np.maximum(np.interp(t, s, r) - _JOINT_SWELL_MM, 0.6)


def _tubes(paths: list, radii: list, subtract: list, blend_mm: float = 3.0,
           ridge: Sequence[trimesh.Trimesh] = ()) -> trimesh.Trimesh:
    # Voxel sizes off the 0.5 mm clearance's multiples: exact zeros in the field make
    # marching cubes emit degenerate, non-manifold pieces.
    dense = [_densify(np.asarray(p, dtype=np.float64), r) for p, r in zip(paths, radii)]
    paths, radii = [d[0] for d in dense], [d[1] for d in dense]
    for voxel in (1.1, 1.05, 1.15):
        mesh = tube_union_surface(paths, radii, voxel_mm=voxel, subtract=subtract,
                                  blend_mm=blend_mm, tolerance_mm=0.0, midline=True, ridge=ridge)
        if mesh.is_watertight:
            return decimate(mesh, 0.05)
    raise RuntimeError("tube union stayed open at every voxel size tried")


def carve(mesh: trimesh.Trimesh, cutters: Sequence[trimesh.Trimesh]) -> trimesh.Trimesh:
    """Closed boolean difference ``mesh - union(cutters)`` (manifold3d).

    Where a deeper bundle fills the floor of a groove, the muscle laid over it gives way there.
    Returns ``mesh`` unchanged if the result would not be a closed mesh.
    """
    solid = as_manifold(mesh)
    if solid is None:
        return mesh
    for cutter in cutters:
        other = as_manifold(cutter)
        if other is not None:
            solid = solid - other
    out = solid.to_mesh()
    result = trimesh.Trimesh(np.asarray(out.vert_properties)[:, :3].astype(np.float64),
                             np.asarray(out.tri_verts, dtype=np.int64), process=False)
    if not (result.is_watertight and result.is_winding_consistent) or result.volume <= 0:
        return mesh
    # Slivers cut off at shared attachments are dropped: the muscle stays one piece.
    return decimate(largest_components(result, min_fraction=0.5), 0.05)


def decimate(mesh: trimesh.Trimesh, tolerance_mm: float, max_faces: int = _MAX_FACES) -> trimesh.Trimesh:
    """Simplify a closed mesh with manifold3d, loosening the tolerance until within ``max_faces``.

    Parameters
    ----------
    mesh : trimesh.Trimesh
        Closed surface, mm.
    tolerance_mm : float
        First tolerance tried, mm; raised by 60% (up to 7 times) while there are too many faces,
        so small muscles keep their detail and large ones fit the budget.
    max_faces : int

    Returns
    -------
    trimesh.Trimesh
        Closed, outward-wound mesh; the input itself if manifold3d cannot take it.
    """
    solid = as_manifold(mesh)
    if solid is None:
        return mesh
    best = mesh
    tol = tolerance_mm
    for _ in range(8):
        out = solid.simplify(tol).to_mesh()
        # process=False: merging float32-identical vertices can pinch the surface open.
        cand = trimesh.Trimesh(np.asarray(out.vert_properties)[:, :3].astype(np.float64),
                               np.asarray(out.tri_verts, dtype=np.int64), process=False)
        if cand.is_watertight and cand.is_winding_consistent:
            best = cand
            if len(cand.faces) <= max_faces:
                break
        tol *= 1.6
    if best.volume < 0:
        best.invert()
    return best


def _ridge_bones(bones: Mapping[str, trimesh.Trimesh]) -> list[trimesh.Trimesh]:
    return [m for k, m in sorted(bones.items()) if k.startswith(("vertebra_", "sacrum"))]


def build_rotatores(bones: Mapping[str, trimesh.Trimesh]) -> dict[str, trimesh.Trimesh]:
    """Rotatores (``rotatores_left/right``): the deepest muscles, laid on the bone alone.

    They depend on nothing else, so they are built first and the multifidus is laid over them.
    """
    marks = find_landmarks(bones)
    grid = envelope_grid()
    mask = union_mask(grid, [m for _, m in sorted(bones.items())])
    bone_env = envelope_from_mask(*crop(grid, mask, _SPINE_BOX), closing_mm=4.0)
    return {f"rotatores_{side}": _tubes(*rotatores_paths(marks, side, bone_env), _closed_bones(bones),
                                        ridge=_ridge_bones(bones))
            for side in SIDES}


def build_landmark_muscles(
    bones: Mapping[str, trimesh.Trimesh], deeper: Mapping[str, trimesh.Trimesh],
    rotatores: Mapping[str, trimesh.Trimesh] | None = None,
) -> dict[str, trimesh.Trimesh]:
    """Build trapezius, rhomboids, levator scapulae, spinalis, semispinalis and rotatores.

    Parameters
    ----------
    bones : mapping of str to trimesh.Trimesh
        Bone meshes keyed by id (see :func:`viewer.atlas_build.source.load_bones`), atlas frame, mm.
    deeper : mapping of str to trimesh.Trimesh
        Already-built muscles keyed by id (``multifidus_*``, ``iliocostalis_*``, ``longissimus_*``,
        ``latissimus_dorsi_*``); the new muscles are laid over or beside them as anatomy dictates.
    rotatores : mapping of str to trimesh.Trimesh, optional
        The result of :func:`build_rotatores`, if already built.

    Returns
    -------
    dict of str to trimesh.Trimesh
        Watertight, outward-wound meshes (mm) keyed by :data:`LANDMARK_MUSCLE_IDS`.
    """
    marks = find_landmarks(bones)
    grid = envelope_grid()
    closed_bones = _closed_bones(bones)
    ridge = _ridge_bones(bones)
    out: dict[str, trimesh.Trimesh] = dict(rotatores) if rotatores else build_rotatores(bones)

    mask = union_mask(grid, [m for _, m in sorted(bones.items())])
    mask |= union_mask(grid, _pick(deeper, ("multifidus",)))
    mf_env = envelope_from_mask(*crop(grid, mask, _SPINE_BOX), closing_mm=4.0)
    for side in SIDES:
        semi = _tubes(*semispinalis_paths(marks, side, mf_env), closed_bones, 5.0, ridge)
        # Rotatores keep the floor of the groove; semispinalis lies over them.
        out[f"semispinalis_{side}"] = carve(semi, [out[f"rotatores_{side}"]])
    mask |= union_mask(grid, [out[f"semispinalis_{s}"] for s in SIDES])
    ss_env = envelope_from_mask(*crop(grid, mask, _SPINE_BOX), closing_mm=4.0)
    for side in SIDES:
        # Its tendons end on the sides of the spinous tips, so it keeps off the midline only.
        spinalis = _tubes(*spinalis_paths(marks, side, ss_env), closed_bones)
        out[f"spinalis_{side}"] = carve(spinalis, [out[f"rotatores_{side}"]])

    mask |= union_mask(grid, _pick(deeper, ("iliocostalis", "longissimus")))
    mask |= union_mask(grid, [out[f"spinalis_{s}"] for s in SIDES])
    es_env = envelope_from_mask(grid, mask, closing_mm=5.0)
    for side in SIDES:
        levator = levator_scapulae_paths(marks, side, es_env)
        out[f"levator_scapulae_{side}"] = _tubes(*levator, closed_bones, 4.0)
        out[f"rhomboid_major_{side}"] = build_rhomboid(marks, side, "major", es_env)
        out[f"rhomboid_minor_{side}"] = build_rhomboid(marks, side, "minor", es_env)

    mask |= union_mask(grid, _pick(deeper, ("latissimus",)))
    under_trapezius = ("rhomboid_major", "rhomboid_minor", "levator_scapulae")
    mask |= union_mask(grid, [out[f"{m}_{s}"] for m in under_trapezius for s in SIDES])
    top_env = envelope_from_mask(grid, mask, closing_mm=16.0)
    for side in SIDES:
        out[f"trapezius_{side}"] = build_trapezius(marks, side, top_env)
    return {key: out[key] for key in LANDMARK_MUSCLE_IDS}
