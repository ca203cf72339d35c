"""Muscle atrophy as measured on axial MRI: loss of cross-sectional area by level and side, with fat.

The muscle shrinks toward its bony bed (see ``docs/atrophy.md``). Its *bed* is the part that does
not move: the vertices within :data:`BED_DISTANCE` of bone (lamina, spinous process, sacrum) and
the deep surface lying on the vertebral arch (outward normal facing the vertebral body). Every other
vertex gets a *shrink vector* toward the centroid of the bed at its level and side (a point in the
groove beside the spinous process), without its component along the local spine axis (the muscle
thins in the axial plane; it does not shorten), ramped up from zero next to the bed and smoothed
over the surface. A shrink value ``s`` moves a vertex by ``s`` times its vector but never past its
bed point: ``s = 0`` is the healthy muscle, large ``s`` gathers the superficial surface into the groove.

Along the spine, ``s`` is set per disc level inside the range (``L4-S1`` -> discs L4-L5 and L5-S1),
interpolated between them, constant up to the ends of the range (the vertebral body centres) and
falling smoothly to zero within :data:`FALLOFF_LEVELS` beyond them. The vertices of the faces cut
by the next disc plane outside the range are held still, so that disc keeps its healthy section.

Calibration: the percentage of CSA lost at a disc is measured on the deformed mesh itself with
:mod:`viewer.measure` (the same code ``dorsum measure`` runs). For every structure, side and disc
the loss is sampled over ``s``, inverted at the knot amounts 0, 5, ... :data:`MAX_AMOUNT` percent,
and refined by measuring again. The displacement field of every knot is kept; an amount between
knots blends the two nearest, so moving the slider costs a fraction of a millisecond. Calibrations
are memoised per atlas, structure, range and side.

Fat infiltration shows as marbling of the affected surface (fat yellow in a deterministic pattern,
:mod:`viewer.fat`), only at the wasting levels and side.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from viewer.atlas import Atlas
from viewer.checks import check_option, check_range, parse_colour
from viewer.errors import DorsumError
from viewer.fat import marbling
from viewer.levels import SIDES, VERTEBRAE, disc_position, parse_segment_range
from viewer.geometry import (  # noqa: F401  (FALLOFF_LEVELS and level_profile are part of this module's API)
    FALLOFF_LEVELS,
    body_centres,
    disc_plane,
    level_profile,
    section_faces,
    side_area,
    spine_tangents,
    vertex_levels,
    vertex_sides,
)

if TYPE_CHECKING:
    from viewer.model import SceneModel

#: Largest CSA loss the model accepts, percent.
MAX_AMOUNT = 80.0
#: Default range: all lumbar levels (discs L1-L2 to L5-S1).
DEFAULT_SEGMENTS = "L1-S1"
DEFAULT_MUSCLE = "multifidus"
#: Vertices this close to bone (mm) are the bony bed: they do not move.
BED_DISTANCE = 1.5
#: Over this distance (mm) from the fixed vertices the shrink ramps up from zero to full.
BED_RAMP = 3.0
#: A vertex whose outward normal points toward the vertebral body within arccos(this) is on the
#: deep surface (lying on the vertebral arch and its ligaments) and stays put.
DEEP_FACING_COSINE = 0.9
#: Largest shrink value (a vertex never passes its bed point whatever the shrink).
MAX_SHRINK = 4.0
#: Rounds of neighbourhood voting that remove speckle from the deep surface.
DEEP_CLEANUP_ROUNDS = 2
#: Height (levels) of the bins in which the bed's centroid is taken (see :func:`bed_anchors`).
ANCHOR_BIN_LEVELS = 0.05
#: Rounds of surface smoothing of the shrink vectors (closest points on bone jump at ridges).
SMOOTHING_ROUNDS = 20
#: Vertices of faces cut by the next disc plane outside the range are held still up to this many levels away.
GUARD_REACH_LEVELS = 1.0
#: Rounds of smoothing that soften the edge of the held vertices next to the range (see _guard_vertices).
GUARD_SMOOTHING_ROUNDS = 6
#: Amounts (percent) at which the shrink is calibrated by measurement.
KNOT_AMOUNTS = tuple(float(a) for a in np.arange(0.0, MAX_AMOUNT + 0.1, 5.0))
#: Colour of fat, toward which infiltrated muscle shifts.
FAT_COLOUR = "#f2d36b"
#: Bones whose bounding box comes within this distance (mm) of a muscle's are its possible bed.
BONE_SEARCH_MARGIN = 15.0

_SIDE_CODES = {"left": (0,), "right": (1,), "both": (0, 1, 2)}


@dataclass(frozen=True)
class AtrophyParams:
    """What wastes, where, and how much (validated on construction).

    Attributes
    ----------
    amount : float
        Cross-sectional area lost at the disc levels of the range, percent (0 to :data:`MAX_AMOUNT`).
    segments : str
        Vertebral range such as ``"L4-S1"`` (two or more vertebrae, cranial first).
    side : str
        ``"left"``, ``"right"`` or ``"both"``.
    fat : float
        Fat fraction of the affected muscle's cross-section, percent (0 to 100): fat streaks and
        patches inside the muscle in sections, marbling on its 3D surface (see :mod:`viewer.fat`).
    muscle : str
        Muscle name in the atlas (checked against the atlas when applied).
    retracted : bool
        False (default): the healthy outline stays as the fascial boundary and the space the muscle
        vacates is fat, as on MRI. True: sections show the retracted muscle alone (fat only inside it).
    ghost : bool
        Show the healthy shape of the wasting structures in 3D as a translucent ghost around them.
    """

    amount: float = 0.0
    segments: str = DEFAULT_SEGMENTS
    side: str = "both"
    fat: float = 0.0
    muscle: str = DEFAULT_MUSCLE
    retracted: bool = False
    ghost: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount", check_range("atrophy", self.amount, 0.0, MAX_AMOUNT))
        object.__setattr__(self, "fat", check_range("fat", self.fat, 0.0, 100.0))
        object.__setattr__(self, "side", check_option("side", str(self.side).strip().lower(), SIDES))
        segments = str(self.segments).strip().upper().replace(" ", "")
        try:
            low, high = parse_segment_range(segments)
        except DorsumError as exc:
            message = str(exc)
            raise DorsumError(message if message.startswith("segments:") else f"segments: {message}") from None
        if low == high:
            raise DorsumError(f"segments: {self.segments!r} is a single vertebra; give a range of two or more "
                              "so it holds a disc level, e.g. L4-L5 or L4-S1")
        object.__setattr__(self, "segments", segments)
        if not isinstance(self.muscle, str) or not self.muscle:
            raise DorsumError("muscle: give a muscle name, e.g. multifidus (see 'dorsum info')")
        for name in ("retracted", "ghost"):
            if not isinstance(getattr(self, name), bool):
                raise DorsumError(f"{name}: {getattr(self, name)!r} is not true or false")

    @property
    def level_range(self) -> tuple[float, float]:
        """The range as level coordinates (low, high), e.g. ``L4-S1`` -> (22.0, 24.0)."""
        return parse_segment_range(self.segments)

    @property
    def discs(self) -> tuple[str, ...]:
        """Disc levels inside the range, e.g. ``L4-S1`` -> ("L4-L5", "L5-S1")."""
        low, high = (int(v) for v in self.level_range)
        return tuple(f"{VERTEBRAE[i]}-{VERTEBRAE[i + 1]}" for i in range(low, high))

    def as_dict(self) -> dict[str, object]:
        found: dict[str, object] = {"muscle": self.muscle, "amount": self.amount, "segments": self.segments,
                                    "side": self.side, "fat": self.fat}
        for name in ("retracted", "ghost"):  # only when set, so files and JSON written before read the same
            if getattr(self, name):
                found[name] = True
        return found

    def fat_at(self, position: float, side: int) -> float:
        """Fat fraction asked (0 to 1) at a level coordinate on a side (0 left, 1 right, 2 midline):
        the fat percent inside the range, fading with the wasting outside it, 0 on the other side."""
        if side not in _SIDE_CODES[self.side]:
            return 0.0
        low, high = self.level_range
        return float(level_profile(np.array([position]), low, high)[0]) * self.fat / 100.0


# -- pure geometry -----------------------------------------------------------------------------------
def closest_bone_points(vertices: np.ndarray, bone_vertices: np.ndarray, bone_faces: np.ndarray,
                        candidates: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Closest point on a bone surface to each vertex and its distance.

    The exact closest point on the triangles around the ``candidates`` nearest bone vertices (a
    k-d tree search), which is the true closest point on any reasonably even bone mesh.

    Returns
    -------
    points : (n, 3) float ndarray, mm
    distance : (n,) float ndarray, mm
    """
    import scipy.sparse as sp  # deferred: only calibration needs these
    from scipy.spatial import cKDTree
    from trimesh.triangles import closest_point as closest_on_triangles

    vertices = np.asarray(vertices, float)
    k = min(candidates, len(bone_vertices))
    _, nearest = cKDTree(bone_vertices).query(vertices, k=k)
    nearest = np.asarray(nearest).reshape(len(vertices), k)
    incidence = sp.csr_matrix((np.ones(bone_faces.size), (bone_faces.ravel(),
                                                          np.repeat(np.arange(len(bone_faces)), 3))),
                              shape=(len(bone_vertices), len(bone_faces)))
    rows = incidence[nearest.ravel()]
    counts = np.diff(rows.indptr)
    query = np.repeat(np.repeat(np.arange(len(vertices)), k), counts)
    face = rows.indices
    points = closest_on_triangles(bone_vertices[bone_faces[face]], vertices[query])
    distance = np.linalg.norm(points - vertices[query], axis=1)
    order = np.lexsort((distance, query))
    first = order[np.r_[True, query[order][1:] != query[order][:-1]]]
    return points[first], distance[first]


def smooth_on_surface(values: np.ndarray, faces: np.ndarray, pinned: np.ndarray, rounds: int) -> np.ndarray:
    """Average (n, k) vertex values with their mesh neighbours ``rounds`` times, keeping ``pinned`` rows."""
    import scipy.sparse as sp  # deferred

    n = len(values)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    adjacency = sp.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n)).tocsr()
    adjacency = ((adjacency + adjacency.T) > 0).astype(float)
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    mean = sp.diags(1.0 / np.maximum(degree, 1.0)) @ adjacency
    result = values.copy()
    fixed = result[pinned].copy()
    for _ in range(rounds):
        result = 0.5 * result + 0.5 * (mean @ result)
        result[pinned] = fixed
    return result


def axial_levels(vertices: np.ndarray, levels: np.ndarray, spine: Mapping[str, np.ndarray],
                 level_mm: float) -> np.ndarray:
    """Level coordinate continued past the last spine landmark (the sacrum below S1's centre).

    The per-vertex ``segment`` data stop at S1 (24); below it the distance along the local axis
    past S1's centre, in levels, is added so the sacral part keeps its own height.
    """
    names = sorted(spine, key=VERTEBRAE.index)
    last = names[-1]
    tangent = spine_tangents(np.array([float(VERTEBRAE.index(last))]), spine)[0]
    beyond = np.maximum((vertices - np.asarray(spine[last], float)) @ tangent, 0.0) / level_mm
    at_end = levels >= VERTEBRAE.index(last) - 1e-3
    return np.where(at_end, levels + beyond, levels)


def bed_anchors(vertices: np.ndarray, axial: np.ndarray, fixed: np.ndarray, sides: np.ndarray,
                fallback: np.ndarray) -> np.ndarray:
    """Point each vertex shrinks toward, (n, 3) mm: the centroid of the bed at its level and side.

    The bed is the ``fixed`` vertices: those on the bone and the deep surface lying on the vertebral
    arch. Their centroid at a level lies in the groove between lamina and spinous process, so the
    superficial surface sinks into the groove while the bed itself stays. Centroids are taken in
    bins of :data:`ANCHOR_BIN_LEVELS` along the spine and smoothed. A side with no bed shrinks toward
    ``fallback`` (the closest bone points).
    """
    anchors = np.array(fallback, dtype=float)
    for side in np.unique(sides):
        here = sides == side
        lying = here & fixed
        if lying.sum() >= 3:
            anchors[here] = _bed_centroids(vertices[lying], axial[lying], axial[here])
    return anchors


def _bed_centroids(bed_points: np.ndarray, bed_axial: np.ndarray, axial: np.ndarray) -> np.ndarray:
    """Centroid of the bed points at each level in ``axial`` (binned, smoothed along the spine), (n, 3)."""
    edges = np.arange(min(bed_axial.min(), axial.min()) - ANCHOR_BIN_LEVELS,
                      max(bed_axial.max(), axial.max()) + 2 * ANCHOR_BIN_LEVELS, ANCHOR_BIN_LEVELS)
    centres = 0.5 * (edges[:-1] + edges[1:])
    which = np.clip(np.digitize(bed_axial, edges) - 1, 0, len(centres) - 1)
    count = np.bincount(which, minlength=len(centres))
    sums = np.column_stack([np.bincount(which, bed_points[:, j], minlength=len(centres)) for j in range(3)])
    filled = count > 0
    centroid = np.column_stack([np.interp(centres, centres[filled], sums[filled, j] / count[filled])
                                for j in range(3)])
    kernel = np.exp(-0.5 * (np.arange(-6, 7) / 2.0) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(centroid, ((6, 6), (0, 0)), mode="edge")
    centroid = np.column_stack([np.convolve(padded[:, j], kernel, mode="valid") for j in range(3)])
    return np.column_stack([np.interp(axial, centres, centroid[:, j]) for j in range(3)])


def deep_surface(vertices: np.ndarray, faces: np.ndarray, tangents: np.ndarray, body_centres: np.ndarray,
                 cosine: float = DEEP_FACING_COSINE) -> np.ndarray:
    """(n,) bool: vertices on the muscle's deep surface, whose outward normal faces the vertebral body.

    In the axial plane, the normal points toward the body centre at the vertex's level within
    ``arccos(cosine)``: the surface lying on the vertebral arch and its ligaments, which stays put
    while the superficial surface sinks toward it.
    """
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    face_normals = np.cross(b - a, c - a)
    normals = np.zeros_like(vertices)
    for i in range(3):
        np.add.at(normals, faces[:, i], face_normals)
    toward = body_centres - vertices

    def in_plane_unit(v: np.ndarray) -> np.ndarray:
        v = v - np.einsum("ij,ij->i", v, tangents)[:, None] * tangents
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    return np.einsum("ij,ij->i", in_plane_unit(normals), in_plane_unit(toward)) > cosine


def shrink_vectors(vertices: np.ndarray, faces: np.ndarray, bed_points: np.ndarray, fixed: np.ndarray,
                   tangents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Displacement of each vertex per unit shrink, (n, 3) mm, and the shrink that takes it to its bed point, (n,).

    Toward its bed point (:func:`bed_anchors`), within the axial plane (perpendicular to ``tangents``),
    ramping from zero at the ``fixed`` vertices to full :data:`BED_RAMP` mm away from them, then
    smoothed over the surface with the fixed vertices held at zero.
    """
    from scipy.spatial import cKDTree  # deferred

    toward = bed_points - vertices
    toward -= np.einsum("ij,ij->i", toward, tangents)[:, None] * tangents
    if fixed.any():
        gap, _ = cKDTree(vertices[fixed]).query(vertices)
    else:
        gap = np.full(len(vertices), np.inf)
    t = np.clip(gap / BED_RAMP, 0.0, 1.0)
    ramp = t * t * (3.0 - 2.0 * t)
    vectors = smooth_on_surface(ramp[:, None] * toward, faces, fixed, SMOOTHING_ROUNDS)
    # Smoothing shortens the vectors near the bed; the shrink may then run past 1, but no vertex
    # goes beyond its bed point.
    length = np.linalg.norm(vectors, axis=1)
    limit = np.where(length > 1e-9, np.linalg.norm(toward, axis=1) / np.maximum(length, 1e-9), 0.0)
    return vectors, np.minimum(limit, MAX_SHRINK)


def disc_weights(levels: np.ndarray, discs: np.ndarray, low: float, high: float) -> np.ndarray:
    """Weight of each disc's shrink value at each vertex, (n_discs, n).

    Linear between neighbouring discs, constant beyond the first and last, times
    :func:`level_profile`; the weights at a vertex add up to its profile value.
    """
    profile = level_profile(levels, low, high)
    identity = np.eye(len(discs))
    return np.array([np.interp(levels, discs, identity[k]) * profile for k in range(len(discs))])


# -- per-structure state (memoised: computed once per atlas and structure) ---------------------------
@dataclass(frozen=True, eq=False)
class BonyBed:
    """Shrink vectors and bed of one structure (see :func:`shrink_vectors`)."""

    vectors: np.ndarray  # (n, 3) mm per unit shrink
    limit: np.ndarray  # (n,) shrink at which a vertex reaches its bed point
    distance: np.ndarray  # (n,) mm to the closest bone
    levels: np.ndarray  # (n,) level coordinate
    sides: np.ndarray  # (n,) 0 left, 1 right, 2 midline
    fixed: np.ndarray  # (n,) bool: the bed and the deep surface, which do not move

    @property
    def bed(self) -> np.ndarray:
        """(n,) bool: vertices on the bone, which must not move."""
        return self.distance <= BED_DISTANCE


def _bones_near(atlas: Atlas, structure_id: str) -> tuple[np.ndarray, np.ndarray]:
    vertices = atlas.meshes[structure_id].vertices
    lo, hi = vertices.min(axis=0) - BONE_SEARCH_MARGIN, vertices.max(axis=0) + BONE_SEARCH_MARGIN
    parts, faces, offset = [], [], 0
    for structure in atlas.structures:
        if structure.kind != "bone":
            continue
        mesh = atlas.meshes[structure.id]
        if np.all(mesh.vertices.max(axis=0) >= lo) and np.all(mesh.vertices.min(axis=0) <= hi):
            parts.append(mesh.vertices)
            faces.append(mesh.faces + offset)
            offset += len(mesh.vertices)
    if not parts:
        raise DorsumError(f"{structure_id}: no bone near this muscle in the atlas, so there is no bony bed to "
                          "shrink toward (atrophy needs the vertebrae)")
    return np.concatenate(parts), np.concatenate(faces)


@lru_cache(maxsize=16)  # memoised per (atlas, structure): the closest-point search takes a moment
def bony_bed(atlas: Atlas, structure_id: str) -> BonyBed:
    """Shrink vectors, bed distance, levels and sides of a structure of ``atlas``."""
    mesh = atlas.meshes[structure_id]
    levels = vertex_levels(atlas, structure_id)
    bone_points, distance = closest_bone_points(mesh.vertices, *_bones_near(atlas, structure_id))
    sides = vertex_sides(atlas, structure_id)
    level_mm = _level_spacing(atlas.spine)
    axial = axial_levels(mesh.vertices, levels, atlas.spine, level_mm)
    tangents = spine_tangents(levels, atlas.spine)
    deep = deep_surface(mesh.vertices, mesh.faces, tangents, body_centres(levels, atlas.spine))
    # Normals are noisy on a coarse mesh: keep the deep surface where most of its neighbourhood is deep.
    deep = smooth_on_surface(deep[:, None].astype(float), mesh.faces, np.zeros(len(deep), bool),
                             DEEP_CLEANUP_ROUNDS)[:, 0] > 0.5
    fixed = (distance <= BED_DISTANCE) | deep
    anchors = bed_anchors(mesh.vertices, axial, fixed, sides, bone_points)
    vectors, limit = shrink_vectors(mesh.vertices, mesh.faces, anchors, fixed, tangents)
    return BonyBed(vectors, limit, distance, levels, sides, fixed)


def _level_spacing(spine: Mapping[str, np.ndarray]) -> float:
    """Mean distance between neighbouring vertebral body centres, mm (one level)."""
    names = sorted(spine, key=VERTEBRAE.index)
    centres = np.array([spine[n] for n in names], dtype=float)
    steps = np.diff([VERTEBRAE.index(n) for n in names])
    return float(np.mean(np.linalg.norm(np.diff(centres, axis=0), axis=1) / steps))


@dataclass(frozen=True, eq=False)
class Calibration:
    """Calibrated shrink of one structure for one range and side: amount (percent) -> vertices.

    Attributes
    ----------
    knot_fields : (k, n, 3) float ndarray
        Vertex displacement at each of :data:`KNOT_AMOUNTS`, mm.
    knot_shrink : (k, p) float ndarray
        Shrink of each (side, disc) pair at the knots, non-decreasing down the rows.
    pairs : tuple of (side code, disc name)
    baseline_mm2 : (p,) float ndarray
        Healthy CSA of each pair.
    reachable : float
        The largest CSA loss (percent) that every pair can reach.
    """

    structure_id: str
    knot_fields: np.ndarray
    knot_shrink: np.ndarray
    pairs: tuple[tuple[int, str], ...]
    baseline_mm2: np.ndarray
    reachable: float

    def displacement(self, amount: float) -> np.ndarray:
        """Vertex displacement for ``amount`` percent, (n, 3) mm: a blend of the two nearest knots."""
        knots = np.asarray(KNOT_AMOUNTS)
        upper = int(np.clip(np.searchsorted(knots, amount), 1, len(knots) - 1))
        t = (amount - knots[upper - 1]) / (knots[upper] - knots[upper - 1])
        return (1.0 - t) * self.knot_fields[upper - 1] + t * self.knot_fields[upper]


def _deform(bed: BonyBed, weights: np.ndarray, shrink: np.ndarray) -> np.ndarray:
    """Displacement (n, 3) for a shrink per pair, (p,), with pair weights (p, n)."""
    per_vertex = np.minimum(shrink @ weights, bed.limit)
    return per_vertex[:, None] * bed.vectors


def _pair_losses(atlas: Atlas, structure_id: str, displacement: np.ndarray,
                 pairs: tuple[tuple[int, str], ...], baseline: np.ndarray) -> np.ndarray:
    """Measured CSA loss (percent) of each (side, disc) pair for a displacement."""
    mesh = atlas.meshes[structure_id]
    bed = bony_bed(atlas, structure_id)
    vertices = mesh.vertices + displacement
    areas = np.array([
        side_area(vertices, mesh, bed.levels, bed.sides, disc_plane(atlas, disc), disc_position(disc), side)
        for side, disc in pairs
    ])
    return 100.0 * (1.0 - areas / baseline)


@lru_cache(maxsize=32)  # memoised per (atlas, structure, range, sides): dragging the amount reuses it
def calibration(atlas: Atlas, structure_id: str, segments: str, sides: tuple[int, ...]) -> Calibration | None:
    """Calibrate the shrink of a structure for a range and sides (None if nothing there can waste).

    ``sides`` are side codes (0 left, 1 right, 2 midline) of the vertices that waste.
    """
    bed = bony_bed(atlas, structure_id)
    mesh = atlas.meshes[structure_id]
    params = AtrophyParams(segments=segments)
    low, high = params.level_range
    discs = tuple(d for d in params.discs if all(v in atlas.spine for v in d.split("-")))
    if not discs:
        return None
    positions = np.array([disc_position(d) for d in discs])
    weights = disc_weights(bed.levels, positions, low, high)
    guard = _guard_vertices(atlas, structure_id, bed.levels, low, high)
    if guard.any():
        weights[:, guard] = 0.0
        weights = smooth_on_surface(weights.T, mesh.faces, guard, GUARD_SMOOTHING_ROUNDS).T
    pairs: list[tuple[int, str]] = []
    fields: list[np.ndarray] = []
    baseline: list[float] = []
    for side in sides:
        mask = (bed.sides == side).astype(float)
        if not mask.any():
            continue
        for k, disc in enumerate(discs):
            area = side_area(mesh.vertices, mesh, bed.levels, bed.sides, disc_plane(atlas, disc), positions[k], side)
            if area > 0.0:
                pairs.append((side, disc))
                baseline.append(area)
                fields.append(mask * weights[k])
        # A side with vertices in the range but no section at any disc still wastes with its neighbours.
    if not pairs:
        return None
    pair_tuple, field_array, baseline_array = tuple(pairs), np.array(fields), np.array(baseline)
    knot_shrink, reachable = _solve_knots(atlas, structure_id, field_array, pair_tuple, baseline_array)
    knot_fields = np.array([_deform(bed, field_array, row) for row in knot_shrink])
    return Calibration(structure_id, knot_fields, knot_shrink, pair_tuple, baseline_array, reachable)


def _guard_vertices(atlas: Atlas, structure_id: str, levels: np.ndarray, low: float, high: float) -> np.ndarray:
    """(n,) bool: vertices of the faces cut by the nearest disc planes outside the range.

    They are held still so that the next disc out keeps its exact healthy section even where the
    mesh has long triangles reaching into the range. Only vertices within :data:`GUARD_REACH_LEVELS`
    of that plane are held: on a very coarse mesh (one triangle spanning several levels) holding
    them would freeze the range itself.
    """
    mesh = atlas.meshes[structure_id]
    guard = np.zeros(len(mesh.vertices), dtype=bool)
    for position in (low - 0.5, high + 0.5):
        upper = int(np.floor(position))
        if upper < 0 or upper + 1 >= len(VERTEBRAE):
            continue
        disc = f"{VERTEBRAE[upper]}-{VERTEBRAE[upper + 1]}"
        if not all(v in atlas.spine for v in (VERTEBRAE[upper], VERTEBRAE[upper + 1])):
            continue
        faces = section_faces(mesh.vertices, mesh.faces, *disc_plane(atlas, disc), near_level=(levels, position))
        cut = mesh.faces[faces].ravel()
        guard[cut[np.abs(levels[cut] - position) <= GUARD_REACH_LEVELS]] = True
    return guard


def _solve_knots(atlas: Atlas, structure_id: str, weights: np.ndarray, pairs: tuple[tuple[int, str], ...],
                 baseline: np.ndarray) -> tuple[np.ndarray, float]:
    """Shrink of each pair at each knot amount, and the largest loss reachable at every pair.

    Samples loss(s) with the same shrink at every pair, inverts it at the knots, then refines by
    measuring the result at all pairs together. Knots beyond what a pair can lose get the most shrink.
    """
    bed = bony_bed(atlas, structure_id)
    samples = MAX_SHRINK * np.linspace(0.0, 1.0, 31) ** 2
    ones = np.ones(len(pairs))

    def losses_at(shrink: np.ndarray) -> np.ndarray:
        return _pair_losses(atlas, structure_id, _deform(bed, weights, shrink), pairs, baseline)

    losses = np.maximum.accumulate(np.array([losses_at(s * ones) for s in samples]), axis=0)  # (61, p)
    targets = np.asarray(KNOT_AMOUNTS)
    # Strictly increasing copy for inversion (flat stretches get a negligible slope).
    rising = losses + 1e-9 * np.arange(len(samples))[:, None]
    knots = np.array([[np.interp(a, rising[:, j], samples) for j in range(len(pairs))] for a in targets])
    slopes = np.diff(rising, axis=0) / np.diff(samples)[:, None]
    middles = 0.5 * (samples[1:] + samples[:-1])
    for _ in range(3):
        for row, amount in enumerate(targets[1:], start=1):
            measured = losses_at(knots[row])
            slope = np.array([np.interp(knots[row, j], middles, slopes[:, j]) for j in range(len(pairs))])
            knots[row] += (amount - measured) / np.maximum(slope, 1.0)
    knots = np.clip(knots, 0.0, MAX_SHRINK)
    knots[0] = 0.0
    return np.maximum.accumulate(knots, axis=0), float(losses[-1].min())


# -- the model --------------------------------------------------------------------------------------
def fat_colour(colour: str, fat: float) -> str:
    """``colour`` shifted toward :data:`FAT_COLOUR` by the fat fraction (percent)."""
    rgb = np.array(parse_colour("colour", colour))
    fat_rgb = np.array(parse_colour("fat colour", FAT_COLOUR))
    mixed = (1.0 - fat / 100.0) * rgb + (fat / 100.0) * fat_rgb
    return "#" + "".join(f"{int(round(c * 255)):02x}" for c in mixed)


def fat_fractions(atlas: Atlas, structure_id: str, params: AtrophyParams) -> np.ndarray:
    """Per-vertex fat fraction asked, (n,) in [0, 1]: the fat percent where the muscle wastes, fading
    with the same fall-off as the wasting, and 0 on the other side and at other levels."""
    low, high = params.level_range
    on_side = np.isin(vertex_sides(atlas, structure_id), _SIDE_CODES[params.side])
    return level_profile(vertex_levels(atlas, structure_id), low, high) * on_side * (params.fat / 100.0)


def fat_weights(atlas: Atlas, structure_id: str, params: AtrophyParams) -> np.ndarray:
    """Per-vertex fat shown on the 3D surface, (n,) in [0, 1]: marbling (:func:`viewer.fat.marbling`)
    of the healthy surface at the local fat fraction, so re-runs give identical colours."""
    return marbling(atlas.meshes[structure_id].vertices, fat_fractions(atlas, structure_id, params))


def fat_vertex_colours(colour: str, weights: np.ndarray) -> np.ndarray:
    """``colour`` mixed toward :data:`FAT_COLOUR` by per-vertex ``weights``, (n, 3) floats in [0, 1]."""
    rgb = np.array(parse_colour("colour", colour))
    fat_rgb = np.array(parse_colour("fat colour", FAT_COLOUR))
    return (1.0 - weights)[:, None] * rgb + weights[:, None] * fat_rgb


#: Per-vertex data with which a muscle's levels and sides are exact (see docs/atlas-format.md).
ATROPHY_DATA = ("segment", "side")
#: A calibration whose result ``dorsum measure`` measures this many points off is refused.
CHECK_TOLERANCE = 2.0


def atrophy_muscles(atlas: Atlas) -> tuple[str, ...]:
    """Muscles whose every mesh carries :data:`ATROPHY_DATA` per vertex (their wasting is exact)."""
    return tuple(muscle for muscle in atlas.muscles
                 if all(set(ATROPHY_DATA) <= set(atlas.meshes[s.id].point_data)
                        for s in atlas.structures_of_muscle(muscle)))


@lru_cache(maxsize=32)
def calibration_check(atlas: Atlas, structure_id: str, segments: str, sides: tuple[int, ...]) -> tuple[float, float]:
    """(set, measured): a calibrated loss and what ``dorsum measure``'s own code measures for it.

    Run for muscles without per-vertex level data, whose levels are estimated from the spine: their
    wasting is accepted only where this check agrees within :data:`CHECK_TOLERANCE` points.

    Measured at the knot nearest 30% (or the largest reachable) at the worst disc of the range, on
    the per-vertex levels and sides that ``measure`` uses. A muscle whose levels are only estimated
    from the spine (no ``segment`` data) can disagree badly (a broad sheet such as trapezius).
    """
    found = calibration(atlas, structure_id, segments, sides)
    knots = np.asarray(KNOT_AMOUNTS)
    usable = np.flatnonzero((knots > 0) & (knots <= min(30.0, found.reachable if found else 0.0)))
    if found is None or not len(usable):
        return 0.0, 0.0
    knot = int(usable[-1])
    mesh = atlas.meshes[structure_id]
    levels, vertex_side = vertex_levels(atlas, structure_id), vertex_sides(atlas, structure_id)
    shown_vertices = mesh.vertices + found.knot_fields[knot]
    worst = float(knots[knot])
    for side, disc in found.pairs:
        args = (mesh, levels, vertex_side, disc_plane(atlas, disc), disc_position(disc), side)
        healthy = side_area(mesh.vertices, *args)
        loss = 100.0 * (1.0 - side_area(shown_vertices, *args) / healthy) if healthy > 0 else float("inf")
        if abs(loss - knots[knot]) > abs(worst - knots[knot]):
            worst = loss
    return float(knots[knot]), worst


def check_atrophy_muscle(atlas: Atlas, muscle: str) -> str:
    """Return ``muscle`` if the atlas has it (else raise one line naming the muscles)."""
    return check_option("muscle", muscle, atlas.muscles)


def atrophied_vertices(atlas: Atlas, structure_id: str, params: AtrophyParams) -> np.ndarray:
    """Displayed vertices of one structure under ``params``, (n, 3) mm (the atlas geometry if untouched)."""
    original = atlas.meshes[structure_id].vertices
    if params.amount == 0.0 or atlas.structure(structure_id).muscle != params.muscle:
        return original
    found = calibration(atlas, structure_id, params.segments, _SIDE_CODES[params.side])
    if found is None:
        return original
    estimated = not set(ATROPHY_DATA) <= set(atlas.meshes[structure_id].point_data)
    wanted, measured = (calibration_check(atlas, structure_id, params.segments, _SIDE_CODES[params.side])
                        if estimated else (0.0, 0.0))
    if abs(measured - wanted) > CHECK_TOLERANCE:  # levels estimated from the spine, and it shows
        exact = ", ".join(atrophy_muscles(atlas)) or "none in this atlas"
        raise DorsumError(f"atrophy: {params.muscle} cannot waste as asked in {params.segments}: checked with "
                          f"'dorsum measure', {wanted:.0f}% set gives {measured:.0f}% (its levels are estimated "
                          f"from the spine; muscles with per-vertex level and side data waste exactly: {exact})")
    if params.amount > found.reachable + 0.5:
        raise DorsumError(f"atrophy: {structure_id} can lose at most {found.reachable:.0f}% of its area in "
                          f"{params.segments} by shrinking toward the bone (asked: {params.amount:g}%)")
    return original + found.displacement(params.amount)


def _affected(atlas: Atlas, structure_id: str, params: AtrophyParams) -> bool:
    sides = vertex_sides(atlas, structure_id)
    return bool(np.isin(sides, _SIDE_CODES[params.side]).any())


def _show(model: SceneModel, structure_id: str, vertices: np.ndarray, colour: str,
          vertex_colours: np.ndarray | None = None) -> None:
    """Set displayed vertices and colours, skipping what did not change (each change costs a re-render)."""
    original = model.atlas.meshes[structure_id].vertices
    if not (vertices is original and model.vertices(structure_id) is original):
        model.set_vertices(structure_id, vertices)
    if model.colour(structure_id) != colour:
        model.set_colour(structure_id, colour)
    model.set_vertex_colours(structure_id, vertex_colours)


def apply_atrophy(model: SceneModel, params: AtrophyParams | None) -> None:
    """Show ``params`` on ``model``; None restores the healthy muscle.

    Sets the displayed vertices (same count and connectivity) and the fat-shifted colour of the
    muscle's structures in one batch, and records the parameters with ``model.set_atrophy``.

    Raises
    ------
    DorsumError
        For a muscle the atlas does not have, one without per-vertex level data (see
        :func:`atrophy_muscles`), or a muscle that cannot waste as asked.
    """
    atlas = model.atlas
    if params is not None:
        check_atrophy_muscle(atlas, params.muscle)
    previous = model.atrophy
    touched = {s.id for muscle in {getattr(previous, "muscle", None), getattr(params, "muscle", None)}
               if muscle is not None for s in atlas.structures_of_muscle(muscle)}
    with model.batch():
        for sid in sorted(touched):
            structure = atlas.structure(sid)
            if params is None or structure.muscle != params.muscle:
                _show(model, sid, atlas.meshes[sid].vertices, structure.colour)
                continue
            affected = params.fat > 0.0 and _affected(atlas, sid, params)
            # The structure's one colour (legend, sections, 3D export) takes the fat fraction; the 3D
            # view shows the fat only where the muscle wastes.
            _show(model, sid, atrophied_vertices(atlas, sid, params),
                  fat_colour(structure.colour, params.fat) if affected else structure.colour,
                  fat_vertex_colours(structure.colour, fat_weights(atlas, sid, params)) if affected else None)
        model.set_atrophy(params)
