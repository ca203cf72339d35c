"""Level of detail: fewer triangles over the same vertices, drawn while the camera moves.

:func:`cluster_faces` merges vertices that fall in one cell of a regular grid into one of them (a
real vertex of the mesh, so its position, normal, colour and atrophy displacement are the full
mesh's own) and keeps the triangles that still span three cells. The coarse triangles index the
full mesh's vertex array, so a level of detail needs no copy of points, normals or colours: it is
only a shorter face list. Pure numpy; no VTK.
"""

from __future__ import annotations

import numpy as np

#: Share of the triangles kept while the camera moves.
DEFAULT_FRACTION = 0.25
#: Meshes with fewer triangles are drawn in full even while moving (the saving would be nil).
MIN_TRIANGLES = 2000


def cluster_faces(vertices: np.ndarray, faces: np.ndarray, normals: np.ndarray, cell: float) -> np.ndarray:
    """Faces of ``faces`` after merging the vertices in each grid cell of size ``cell`` (mm).

    Only vertices whose normals point into the same octant merge, so the two sides of a thin
    sheet (a scapula, the iliac wing) stay apart instead of collapsing into holes.

    Parameters
    ----------
    vertices : (n, 3) float array, mm.
    faces : (m, 3) int array of vertex indices.
    normals : (n, 3) float array, unit vertex normals.
    cell : edge length of the grid cells, mm.

    Returns
    -------
    (k, 3) int64 array of indices into ``vertices`` (k <= m), facing the way the surface's normals
    face, without degenerate or repeated triangles.
    """
    cells = np.floor((vertices - vertices.min(axis=0)) / cell).astype(np.int64)
    span = cells.max(axis=0) + 1
    octant = (normals > 0) @ np.array([1, 2, 4])
    keys = ((cells[:, 0] * span[1] + cells[:, 1]) * span[2] + cells[:, 2]) * 8 + octant  # one integer per cell
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    representative = first[inverse.reshape(-1)]  # the lowest-numbered vertex of each cell
    merged = representative[np.asarray(faces)]
    keep = (merged[:, 0] != merged[:, 1]) & (merged[:, 1] != merged[:, 2]) & (merged[:, 0] != merged[:, 2])
    merged = merged[keep]
    ordered = np.sort(merged, axis=1)
    n = np.int64(len(vertices))
    _, unique_rows = np.unique((ordered[:, 0] * n + ordered[:, 1]) * n + ordered[:, 2], return_index=True)
    merged = merged[np.sort(unique_rows)].astype(np.int64)
    # Merging can fold a triangle over; turn it back to face the way its corners' normals do.
    a, b, c = (vertices[merged[:, i]] for i in range(3))
    folded = np.einsum("ij,ij->i", np.cross(b - a, c - a), normals[merged].sum(axis=1)) < 0
    merged[folded] = merged[folded][:, ::-1]
    return merged


def coarse_faces(vertices: np.ndarray, faces: np.ndarray, normals: np.ndarray,
                 fraction: float = DEFAULT_FRACTION) -> np.ndarray:
    """About ``fraction`` of the triangles of a mesh (at least 10% of the target, never more than all).

    The grid cell is found by a few steps of bisection on its size; small meshes come back whole.
    """
    if len(faces) < MIN_TRIANGLES:
        return np.asarray(faces, dtype=np.int64)
    target = fraction * len(faces)
    edge = np.linalg.norm(vertices[faces[:, 0]] - vertices[faces[:, 1]], axis=1).mean()
    low, high = edge * 0.5, edge * 8.0
    best = np.asarray(faces, dtype=np.int64)
    for _ in range(8):
        cell = np.sqrt(low * high)
        result = cluster_faces(vertices, faces, normals, cell)
        if len(result) > target:
            low = cell
        else:
            high = cell
        if abs(len(result) - target) < abs(len(best) - target) and len(result) >= 0.1 * target:
            best = result
        if abs(len(result) - target) < 0.1 * target:
            break
    return best
