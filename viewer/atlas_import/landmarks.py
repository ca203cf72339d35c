"""Spine landmarks of an imported atlas: the centre of each vertebral body, C1 to S1.

A vertebral body lies between its two discs, so its centre is taken as the midpoint of the
centroids of the disc above and the disc below. The ends of the column have a disc on one side
only: C1 (no body) gets the centre of its ring, C2 and S1 are extended from the neighbouring
disc by half the local level spacing along the column. Without discs (a partial download) a body
centre falls back to the centroid of the front (anterior) part of the vertebra. The measurement
code cuts each disc level through the midpoint of two body centres, normal along the spine.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from viewer.atlas import MeshData
from viewer.levels import VERTEBRAE

#: Fraction of a vertebra's front-to-back depth taken as its body when no discs are present.
BODY_DEPTH_FRACTION = 0.35


def surface_centroid(mesh: MeshData) -> np.ndarray:
    """Area-weighted centroid of a surface, (3,) mm (works for open surfaces too)."""
    tri = mesh.vertices[mesh.faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    return (tri.mean(axis=1) * area[:, None]).sum(axis=0) / max(area.sum(), 1e-12)


def disc_id(upper: str, lower: str) -> str:
    """Structure id of the disc between two vertebrae (``"L4", "L5"`` -> ``"disc_l4_l5"``)."""
    return f"disc_{upper.lower()}_{lower.lower()}"


def vertebra_id(name: str) -> str:
    """Structure id of a vertebra (``"L4"`` -> ``"vertebra_l4"``; ``"S1"`` -> ``"sacrum"``)."""
    return "sacrum" if name == "S1" else f"vertebra_{name.lower()}"


def spine_centres(meshes: Mapping[str, MeshData]) -> dict[str, np.ndarray]:
    """Body centres C1..S1 (those the meshes allow), RAS mm.

    Parameters
    ----------
    meshes : mapping of structure id to mesh
        Vertebrae ``vertebra_c1`` ... ``vertebra_l5``, ``sacrum`` and discs ``disc_c2_c3`` ...
        ``disc_l5_s1``, in the atlas frame (+y anterior).

    Returns
    -------
    dict of vertebra name (``"L4"``) to (3,) float ndarray, cranial to caudal.
    """
    discs: dict[float, np.ndarray] = {}
    for i in range(len(VERTEBRAE) - 1):
        sid = disc_id(VERTEBRAE[i], VERTEBRAE[i + 1])
        if sid in meshes:
            discs[i + 0.5] = surface_centroid(meshes[sid])
    centres: dict[str, np.ndarray] = {}
    for i, name in enumerate(VERTEBRAE):
        above, below = discs.get(i - 0.5), discs.get(i + 0.5)
        if name == "C1":
            centre = surface_centroid(meshes["vertebra_c1"]) if "vertebra_c1" in meshes else None
        elif above is not None and below is not None:
            centre = 0.5 * (above + below)
        elif below is not None and (i + 1.5) in discs:
            centre = below + 0.5 * (below - discs[i + 1.5])      # C2: extend upward
        elif above is not None and (i - 1.5) in discs:
            centre = above + 0.5 * (above - discs[i - 1.5])      # S1: extend downward
        else:
            centre = _front_centroid(meshes.get(vertebra_id(name)))
        if centre is not None:
            centres[name] = np.asarray(centre, dtype=float)
    return centres


def _front_centroid(mesh: MeshData | None) -> np.ndarray | None:
    if mesh is None:
        return None
    y = mesh.vertices[:, 1]
    front = mesh.vertices[y >= y.max() - BODY_DEPTH_FRACTION * np.ptp(y)]
    return front.mean(axis=0)


def midline_offset(centres: Mapping[str, np.ndarray]) -> float:
    """Median x of the body centres (mm): the shift that puts the column on x = 0."""
    return float(np.median([c[0] for c in centres.values()])) if centres else 0.0
