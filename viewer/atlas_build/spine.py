"""Vertebral landmarks and the continuous level coordinate along the spine.

The level coordinate (``segment`` per-vertex data) numbers the vertebrae C1 = 0 ... S1 = 24 (see
:mod:`viewer.levels`). Between two vertebral body centres it is interpolated between planes that
are perpendicular to the local spine axis: at each body centre the plane's normal is the mean of
the two neighbouring chords, at each disc (the midpoint of two centres) it is the chord itself.
So a point on the L4-L5 disc plane (through the midpoint of the L4 and L5 body centres,
perpendicular to the L4->L5 chord) gets 22.5 however far behind the spine it lies.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import trimesh

from viewer.levels import VERTEBRAE

#: Fraction of a vertebra's antero-posterior extent, from the front, that is taken as its body.
BODY_DEPTH_FRACTION = 0.32


def bone_id_of_level(level: str) -> str:
    """Structure id of the bone carrying a level: ``"L4"`` -> ``"vertebra_l4"``, ``"S1"`` -> ``"sacrum"``."""
    return "sacrum" if level == "S1" else f"vertebra_{level.lower()}"


def body_centre(mesh: trimesh.Trimesh, level: str) -> np.ndarray:
    """Centre of a vertebral body (of the anterior arch's ring for C1), mm.

    Parameters
    ----------
    mesh : trimesh.Trimesh
        The vertebra (or, for ``"S1"``, the sacrum) in the atlas frame (+y anterior).
    level : str
        Level name such as ``"L4"``.

    Returns
    -------
    (3,) float ndarray
    """
    v = np.asarray(mesh.vertices)
    if level == "C1":
        return 0.5 * (v.min(axis=0) + v.max(axis=0))
    if level == "S1":
        # The S1 body is the anterior part of the sacrum's top (base): the top 22 mm.
        v = v[v[:, 2] > v[:, 2].max() - 22.0]
    y_front, y_back = v[:, 1].max(), v[:, 1].min()
    body = v[v[:, 1] > y_front - BODY_DEPTH_FRACTION * (y_front - y_back)]
    body = body[np.abs(body[:, 0] - np.median(body[:, 0])) < 25.0]
    return 0.5 * (body.min(axis=0) + body.max(axis=0))


def spine_centres(bones: Mapping[str, trimesh.Trimesh]) -> dict[str, np.ndarray]:
    """Body centres of C1 .. S1 in cranio-caudal order.

    Parameters
    ----------
    bones : mapping of str to trimesh.Trimesh
        Bones keyed by structure id (``vertebra_c1`` ... ``vertebra_l5``, ``sacrum``), mm.

    Returns
    -------
    dict of str to (3,) float ndarray
        Keyed by level name (``"C1"`` ... ``"S1"``).
    """
    return {level: body_centre(bones[bone_id_of_level(level)], level) for level in VERTEBRAE}


def _knots(centres: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plane points, unit normals (caudal direction) and level values at centres and discs."""
    chords = np.diff(centres, axis=0)
    chords /= np.linalg.norm(chords, axis=1, keepdims=True)
    centre_normals = np.vstack([chords[:1], chords[:-1] + chords[1:], chords[-1:]])
    centre_normals /= np.linalg.norm(centre_normals, axis=1, keepdims=True)
    n = len(centres)
    points = np.empty((2 * n - 1, 3))
    normals = np.empty((2 * n - 1, 3))
    points[0::2], normals[0::2] = centres, centre_normals
    points[1::2], normals[1::2] = 0.5 * (centres[:-1] + centres[1:]), chords
    return points, normals, 0.5 * np.arange(2 * n - 1)


def level_coordinate(points: np.ndarray, centres: Mapping[str, np.ndarray]) -> np.ndarray:
    """Continuous vertebral level of each point (C1 = 0 ... S1 = 24).

    Parameters
    ----------
    points : (n, 3) float ndarray
        Points in the atlas frame, mm.
    centres : mapping of str to (3,) float ndarray
        Body centres keyed by level name in cranio-caudal order (from :func:`spine_centres`).

    Returns
    -------
    (n,) float32 ndarray
        Level coordinate, clipped to [0, 24]: points above C1 get 0, points below S1's body
        centre (the rest of the sacrum) get 24.
    """
    c = np.array([centres[level] for level in VERTEBRAE], dtype=float)
    knot_points, knot_normals, knot_values = _knots(c)
    p = np.asarray(points, dtype=float).reshape(-1, 3)
    # Signed distance past each knot plane (positive = caudal to it); decreases along the spine.
    s = np.einsum("kj,nkj->nk", knot_normals, p[:, None, :] - knot_points[None, :, :])
    past = s >= 0
    # Knot just above the first plane the point is cranial to, searching from the top, so that
    # planes converging far behind the spine cannot give a second, spurious crossing.
    k = np.where((~past).any(axis=1), np.argmax(~past, axis=1) - 1, past.shape[1] - 1)
    out = np.empty(len(p))
    out[k < 0] = 0.0
    out[k == len(knot_values) - 1] = knot_values[-1]
    mid = (k >= 0) & (k < len(knot_values) - 1)
    km = k[mid]
    s0, s1 = s[mid, km], s[mid, km + 1]
    frac = np.clip(s0 / np.maximum(s0 - s1, 1e-9), 0.0, 1.0)
    out[mid] = knot_values[km] + 0.5 * frac
    return out.astype(np.float32)


def local_axis(centres: Mapping[str, np.ndarray], upper: str, lower: str) -> tuple[np.ndarray, np.ndarray]:
    """Disc plane between two adjacent vertebrae: midpoint of their body centres and unit chord.

    Returns
    -------
    origin : (3,) float ndarray
        Midpoint of the two body centres, mm.
    normal : (3,) float ndarray
        Unit vector from the upper to the lower body centre.
    """
    a, b = np.asarray(centres[upper], float), np.asarray(centres[lower], float)
    d = b - a
    return 0.5 * (a + b), d / np.linalg.norm(d)
