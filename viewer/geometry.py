"""Pure geometry shared by measurement, atrophy and figures: levels, disc planes, sections, volume.

Numpy only (no VTK, no model): the functions here know an :class:`~viewer.atlas.Atlas` and arrays,
nothing else, so :mod:`viewer.measure`, :mod:`viewer.atrophy`, :mod:`viewer.fat` and the figures
all build on them without importing each other in a loop.

A disc plane passes through the midpoint of the two vertebral body centres and is perpendicular to
the chord between them (the local spine axis), the same planes the atlas builder uses for the
per-vertex ``segment`` coordinate, so the plane of disc L4-L5 is where ``segment == 22.5``.

The cross-section of a closed, outward-wound mesh is computed from the triangles the plane cuts:
each cut triangle contributes one segment, oriented by the triangle's normal so that the muscle
lies to the left when seen from the side the plane normal points to. The signed (shoelace) area of
these segments is the area of the section with its holes subtracted, and chaining them through the
shared mesh edges gives the outline loops. Area and loops therefore always agree.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from viewer.atlas import Atlas, MeshData
from viewer.errors import DorsumError
from viewer.levels import VERTEBRAE, disc_position

#: Only section points whose level coordinate (interpolated from the vertices) lies within this many
#: levels of the disc count, so that an infinite plane cannot pick up a far part of a long muscle.
#: On the atlas, points on a disc plane have exactly the disc's level; the margin absorbs meshes
#: whose level data are coarse.
SECTION_WINDOW = 0.75
SIDE_NAMES = ("left", "right", "midline")
#: Wasting (and its fat) falls from full to zero within this many levels beyond each end of a range.
FALLOFF_LEVELS = 0.4


# -- planes and the level coordinate ---------------------------------------------------------------
def disc_plane(atlas: Atlas, disc: str) -> tuple[np.ndarray, np.ndarray]:
    """Plane of an intervertebral disc, e.g. ``"L4-L5"``.

    Returns
    -------
    origin : (3,) float ndarray
        Midpoint of the two vertebral body centres, mm.
    normal : (3,) float ndarray
        Unit vector from the upper to the lower body centre (the local spine axis, pointing caudally).

    Raises
    ------
    DorsumError
        For an unknown disc name or an atlas without spine landmarks for both vertebrae.
    """
    position = disc_position(disc)
    upper, lower = VERTEBRAE[int(position)], VERTEBRAE[int(position) + 1]
    missing = [name for name in (upper, lower) if name not in atlas.spine]
    if missing:
        known = ", ".join(atlas.spine) or "none"
        raise DorsumError(f"levels: the atlas has no spine landmark for {', '.join(missing)}, needed for "
                          f"disc {upper}-{lower} (landmarks: {known})")
    a, b = np.asarray(atlas.spine[upper], float), np.asarray(atlas.spine[lower], float)
    chord = b - a
    return 0.5 * (a + b), chord / np.linalg.norm(chord)


def spine_levels(points: np.ndarray, spine: Mapping[str, np.ndarray], *, nearest_chord: bool = False) -> np.ndarray:
    """Continuous level coordinate (C1 = 0 ... S1 = 24) of points, from the spine landmarks alone.

    The fallback for meshes without per-vertex ``segment`` data (a user's own mesh): each point is
    placed between the two neighbouring landmarks by its projection on the chord between them,
    using the landmark whose plane (perpendicular to the local chord) it lies beyond. A point on no
    chord's span (in the wedge between two chords on the convex side of the curve, e.g. psoas in
    front of the lordotic lumbar spine) takes the first or last chord, or with ``nearest_chord``
    the chord it lies nearest beyond the end of.

    Parameters
    ----------
    points : (n, 3) float ndarray
        Points, mm.
    spine : mapping of level name to (3,) body centre, mm
        At least two landmarks.

    Returns
    -------
    (n,) float ndarray
        Level coordinate, clipped to the range the landmarks cover.
    """
    names = sorted(spine, key=VERTEBRAE.index)
    if len(names) < 2:
        raise DorsumError("the atlas needs at least two spine landmarks to find levels on a mesh without "
                          "per-vertex segment data")
    centres = np.array([spine[n] for n in names], dtype=float)
    index = np.array([VERTEBRAE.index(n) for n in names], dtype=float)
    chords = np.diff(centres, axis=0)
    lengths = np.linalg.norm(chords, axis=1)
    axes = chords / lengths[:, None]
    p = np.asarray(points, dtype=float).reshape(-1, 3)
    # Fraction along each chord; the right chord is the one whose fraction falls in [0, 1].
    frac = np.einsum("kj,nkj->nk", axes, p[:, None, :] - centres[None, :-1, :]) / lengths[None, :]
    inside = (frac >= 0.0) & (frac <= 1.0)
    if nearest_chord:
        outside = np.argmin(np.maximum(-frac, frac - 1.0), axis=1)
    else:
        outside = np.where(frac[:, 0] < 0.0, 0, len(chords) - 1)
    chosen = np.where(inside.any(axis=1), np.argmax(inside, axis=1), outside)
    f = np.clip(frac[np.arange(len(p)), chosen], 0.0, 1.0)
    return index[chosen] + f * (index[chosen + 1] - index[chosen])


def vertex_levels(atlas: Atlas, structure_id: str) -> np.ndarray:
    """Level coordinate of each vertex of a structure: its ``segment`` data, else from the spine."""
    mesh = atlas.meshes[structure_id]
    if "segment" in mesh.point_data:
        return np.asarray(mesh.point_data["segment"], dtype=float)
    return spine_levels(mesh.vertices, atlas.spine)


def vertex_sides(atlas: Atlas, structure_id: str) -> np.ndarray:
    """Side of each vertex, (n,) int: 0 left, 1 right, 2 midline.

    From the ``side`` per-vertex data if present, else the structure's side, else (for a midline
    structure) the sign of x in the atlas frame (+x is the patient's right).
    """
    structure = atlas.structure(structure_id)
    mesh = atlas.meshes[structure_id]
    if "side" in mesh.point_data:
        return np.asarray(mesh.point_data["side"], dtype=np.int64)
    if structure.side in ("left", "right"):
        return np.full(len(mesh.vertices), SIDE_NAMES.index(structure.side), dtype=np.int64)
    return (mesh.vertices[:, 0] >= 0.0).astype(np.int64)


# -- sections -------------------------------------------------------------------------------------
NearLevel = tuple[np.ndarray, float]


def _cut_faces(vertices: np.ndarray, faces: np.ndarray, origin: np.ndarray, normal: np.ndarray,
               face_mask: np.ndarray | None, near_level: NearLevel | None = None,
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Oriented section segments of the faces the plane cuts.

    Returns the face indices, the segments ((k, 2, 3): start and end points) and the start and end
    mesh edges ((k, 2) sorted vertex pairs) of each segment.
    """
    distance = (vertices - origin) @ normal
    above = distance[faces] >= 0.0
    count = above.sum(axis=1)
    cut = (count == 1) | (count == 2)
    if face_mask is not None:
        cut &= face_mask
    index = np.flatnonzero(cut)
    tri = faces[index]
    up = above[index]
    # The vertex alone on its side of the plane, and the two others in winding order after it.
    lone_is_above = count[index] == 1
    lone = np.where(lone_is_above, np.argmax(up, axis=1), np.argmin(up, axis=1))
    rows = np.arange(len(index))
    a = tri[rows, lone]
    b = tri[rows, (lone + 1) % 3]
    c = tri[rows, (lone + 2) % 3]

    def crossing(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        di, dj = distance[i], distance[j]
        t = di / (di - dj)
        return vertices[i] + t[:, None] * (vertices[j] - vertices[i])

    p_ab, p_ac = crossing(a, b), crossing(a, c)
    if near_level is not None:
        levels, position = near_level
        t = distance[a] / (distance[a] - distance[b])
        level = levels[a] + t * (levels[b] - levels[a])
        keep = np.abs(level - position) <= SECTION_WINDOW
        index, a, b, c, p_ab, p_ac, lone_is_above = (x[keep] for x in (index, a, b, c, p_ab, p_ac, lone_is_above))
    # With outward winding, the segment runs from edge ab to edge ac when the lone vertex is above
    # the plane (muscle on the left, seen from the normal's side), and the other way round below.
    start = np.where(lone_is_above[:, None], p_ab, p_ac)
    end = np.where(lone_is_above[:, None], p_ac, p_ab)
    edge_ab = np.sort(np.column_stack([a, b]), axis=1)
    edge_ac = np.sort(np.column_stack([a, c]), axis=1)
    start_edge = np.where(lone_is_above[:, None], edge_ab, edge_ac)
    end_edge = np.where(lone_is_above[:, None], edge_ac, edge_ab)
    return index, np.stack([start, end], axis=1), start_edge, end_edge


def _signed_area(segments: np.ndarray, origin: np.ndarray, normal: np.ndarray) -> float:
    """Shoelace area (mm²) of oriented segments (k, 2, 3) in the plane (counter-clockwise positive)."""
    if len(segments) == 0:
        return 0.0
    p, q = segments[:, 0] - origin, segments[:, 1] - origin
    return float(0.5 * np.cross(p, q).sum(axis=0) @ normal)


def cross_sectional_area(vertices: np.ndarray, faces: np.ndarray, origin: np.ndarray, normal: np.ndarray,
                         face_mask: np.ndarray | None = None, near_level: NearLevel | None = None) -> float:
    """Area of the section of a closed mesh by a plane, mm² (holes subtracted).

    Parameters
    ----------
    vertices : (n, 3) float ndarray
        Vertex positions, mm (outward-wound, closed mesh).
    faces : (m, 3) int ndarray
        Triangles.
    origin, normal : (3,) float ndarrays
        A point on the plane (mm) and the plane's unit normal.
    face_mask : (m,) bool ndarray, optional
        Only these faces are cut (e.g. one side of a muscle).
    near_level : ((n,) float ndarray, float), optional
        Per-vertex level coordinate and a disc position: only section points within
        :data:`SECTION_WINDOW` levels of it count (see :func:`vertex_levels`).

    Returns
    -------
    float
        Section area in mm² (0 when the plane misses the mesh).
    """
    _, segments, _, _ = _cut_faces(np.asarray(vertices, float), np.asarray(faces), np.asarray(origin, float),
                                   np.asarray(normal, float), face_mask, near_level)
    return abs(_signed_area(segments, origin, normal)) if len(segments) else 0.0


def section_faces(vertices: np.ndarray, faces: np.ndarray, origin: np.ndarray, normal: np.ndarray,
                  face_mask: np.ndarray | None = None, near_level: NearLevel | None = None) -> np.ndarray:
    """Indices of the faces that make up the section (parameters as for :func:`cross_sectional_area`)."""
    index, _, _, _ = _cut_faces(np.asarray(vertices, float), np.asarray(faces), np.asarray(origin, float),
                                np.asarray(normal, float), face_mask, near_level)
    return index


def section_loops(vertices: np.ndarray, faces: np.ndarray, origin: np.ndarray, normal: np.ndarray,
                  face_mask: np.ndarray | None = None, near_level: NearLevel | None = None) -> list[np.ndarray]:
    """Outlines of the section of a closed mesh by a plane.

    Parameters are as for :func:`cross_sectional_area`.

    Returns
    -------
    list of (k, 3) float ndarrays
        One closed polyline per outline (mm, first point not repeated), oriented counter-clockwise
        around the muscle when seen from the side the normal points to (so holes run clockwise).
        The shoelace areas of the loops add up to :func:`cross_sectional_area`.
    """
    _, segments, start_edge, end_edge = _cut_faces(np.asarray(vertices, float), np.asarray(faces),
                                                   np.asarray(origin, float), np.asarray(normal, float),
                                                   face_mask, near_level)
    # Segments chain through shared mesh edges: one segment's end edge is the next one's start edge.
    key = {(int(e[0]), int(e[1])): i for i, e in enumerate(start_edge)}
    unused = np.ones(len(segments), dtype=bool)
    loops: list[np.ndarray] = []
    for first in range(len(segments)):
        if not unused[first]:
            continue
        chain = []
        current: int | None = first
        while current is not None and unused[current]:
            unused[current] = False
            chain.append(segments[current, 0])
            current = key.get((int(end_edge[current, 0]), int(end_edge[current, 1])))
        loops.append(np.array(chain))
    return loops


def side_area(vertices: np.ndarray, mesh: MeshData, levels: np.ndarray, sides: np.ndarray,
              plane: tuple[np.ndarray, np.ndarray], position: float, side: int) -> float:
    """Section area (mm²) at a disc of the part of one structure on one side (0 left, 1 right, 2 midline)."""
    origin, normal = plane
    mask = sides[mesh.faces[:, 0]] == side
    return cross_sectional_area(vertices, mesh.faces, origin, normal, mask, (levels, position))


# -- volume ---------------------------------------------------------------------------------------
def mesh_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Volume enclosed by a closed, outward-wound mesh, mm³ (divergence theorem)."""
    v = np.asarray(vertices, float)
    a, b, c = v[faces[:, 0]], v[faces[:, 1]], v[faces[:, 2]]
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


# -- along the spine ------------------------------------------------------------------------------
def level_profile(levels: np.ndarray, low: float, high: float, falloff: float = FALLOFF_LEVELS) -> np.ndarray:
    """Weight 1 inside ``[low, high]``, falling smoothly (smoothstep) to 0 ``falloff`` levels outside, (n,)."""
    outside = np.maximum(low - levels, levels - high)
    t = np.clip(1.0 - outside / falloff, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def spine_tangents(levels: np.ndarray, spine: Mapping[str, np.ndarray]) -> np.ndarray:
    """Unit local spine axis (pointing caudally) at each level coordinate, (n, 3).

    Chord directions between neighbouring body centres, interpolated by level; at a disc level it is
    exactly the normal of :func:`viewer.measure.disc_plane`.
    """
    names = sorted(spine, key=VERTEBRAE.index)
    centres = np.array([spine[n] for n in names], dtype=float)
    index = np.array([VERTEBRAE.index(n) for n in names], dtype=float)
    chords = np.diff(centres, axis=0)
    chords /= np.linalg.norm(chords, axis=1, keepdims=True)
    middles = 0.5 * (index[:-1] + index[1:])
    tangents = np.column_stack([np.interp(levels, middles, chords[:, j]) for j in range(3)])
    return tangents / np.linalg.norm(tangents, axis=1, keepdims=True)


def body_centres(levels: np.ndarray, spine: Mapping[str, np.ndarray]) -> np.ndarray:
    """Vertebral body centre at each level coordinate (linear between landmarks), (n, 3) mm."""
    names = sorted(spine, key=VERTEBRAE.index)
    centres = np.array([spine[n] for n in names], dtype=float)
    index = np.array([VERTEBRAE.index(n) for n in names], dtype=float)
    return np.column_stack([np.interp(levels, index, centres[:, j]) for j in range(3)])
