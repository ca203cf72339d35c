"""The body outline around the spine: skin and subcutaneous fat, computed from whatever atlas is loaded.

No atlas in Dorsum models the skin, and the trunk's front (abdominal wall and contents) is absent
from the back-muscle atlases. An MRI-style slice still needs the outline of the body, so it is
generated here, in the plane of a slice, from the atlas' own muscle and bone sections:

1. The *envelope*: the convex hull of the muscle and bone sections (of the whole atlas, shown or
   not) in the plane, in polar coordinates around the disc centre.
2. The trunk beyond it, where the atlas has nothing (flanks, abdomen): an ellipse at least
   :data:`TRUNK_HALF_WIDTH_MM` wide each side, meeting the back muscles behind and reaching
   :data:`TRUNK_DEPTH_RATIO` of the trunk's width in front (a modelling choice, not a measured shape);
   the envelope pushes it out wherever it reaches further.
3. The *skin* lies :data:`SUBCUTANEOUS_MM` outside the envelope; the layer between is subcutaneous
   fat. Posterior lumbar subcutaneous fat measured on MRI is about 8-10 mm at the cut-offs that
   separate patients with low back pain from volunteers (8.45 mm in women, 9.4 mm in men at L1-L2;
   subcutaneous fat index, Eur Radiol 2022, doi:10.1007/s00330-022-08775-7); 10 mm is used.
4. The *trunk wall* (obliques, transversus and latissimus over the flank; not in the atlases) is a
   muscle band :data:`WALL_MM` thick inside the deep fascia, fading out within 40 degrees of the
   posterior midline where the back muscles lie under the fat.

Everything is deterministic and computed per slice in a few milliseconds, so it works for any atlas
without changing the atlas builders. Numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from viewer.atlas import Atlas
from viewer.geometry import body_centres, section_loops, spine_tangents
from viewer.levels import VERTEBRAE

SUBCUTANEOUS_MM = 10.0
WALL_MM = 12.0
#: Depth (back to front) of the trunk as a share of its width at the lumbar levels (lean adult).
TRUNK_DEPTH_RATIO = 0.72
#: Least half-width of the trunk at the lumbar levels, mm (an adult waist is about 30 cm across); the
#: back-muscle atlases end at the erector spinae, well inside the flank.
TRUNK_HALF_WIDTH_MM = 140.0
#: Points farther than this from the disc centre (mm) are other parts of the body (arms, legs).
REACH_MM = 220.0
ANGLES = 360


@dataclass(frozen=True)
class BodyOutline:
    """Closed outlines in slice coordinates (mm; x = patient's right, y = anterior), each (ANGLES, 2).

    Attributes
    ----------
    skin : outer surface of the body.
    fascia : the deep fascia under the subcutaneous fat (the muscle/bone envelope).
    cavity : inner surface of the abdominal wall (equal to ``fascia`` behind the transverse processes).
    """

    skin: np.ndarray
    fascia: np.ndarray
    cavity: np.ndarray


def _smooth_circular(values: np.ndarray, width: int) -> np.ndarray:
    kernel = np.exp(-0.5 * (np.arange(-3 * width, 3 * width + 1) / width) ** 2)
    kernel /= kernel.sum()
    padded = np.concatenate([values[-3 * width:], values, values[: 3 * width]])
    return np.convolve(padded, kernel, mode="valid")


def _hull_points(cloud: np.ndarray, spacing: float = 2.0) -> np.ndarray:
    """Points every ``spacing`` mm along the convex hull of a (k, 2) point cloud."""
    from scipy.spatial import ConvexHull

    corners = cloud[ConvexHull(cloud).vertices]
    ends = np.roll(corners, -1, axis=0)
    points = [corners]
    for a, b in zip(corners, ends):
        steps = int(np.linalg.norm(b - a) // spacing)
        if steps > 1:
            t = np.linspace(0.0, 1.0, steps, endpoint=False)[1:, None]
            points.append(a + t * (b - a))
    return np.concatenate(points)


def envelope_radii(points: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Farthest distance of ``points`` (k, 2) from the origin in each direction of ``angles`` (n,)."""
    theta = np.arctan2(points[:, 1], points[:, 0])
    radius = np.hypot(points[:, 0], points[:, 1])
    step = angles[1] - angles[0]
    bins = np.round((theta - angles[0]) / step).astype(int) % len(angles)
    radii = np.full(len(angles), np.nan)
    np.fmax.at(radii, bins, radius)
    known = ~np.isnan(radii)
    if not known.any():
        return np.full(len(angles), 50.0)
    index = np.arange(len(angles))
    return np.interp(index, index[known], radii[known], period=len(angles))


def body_outline(atlas: Atlas, origin: np.ndarray, normal: np.ndarray,
                 axes: tuple[np.ndarray, np.ndarray]) -> BodyOutline:
    """Skin, deep fascia and abdominal-wall outlines of the trunk in the plane (``origin``, ``normal``).

    ``axes`` are the slice's unit in-plane axes (patient's right, anterior), as for the section figure.
    """
    points = []
    for structure in atlas.structures:
        if structure.kind not in ("muscle", "bone", "disc"):
            continue
        mesh = atlas.meshes[structure.id]
        for loop in section_loops(mesh.vertices, mesh.faces, origin, normal):
            rel = loop - origin
            flat = np.column_stack([rel @ axes[0], rel @ axes[1]])
            points.append(flat[np.hypot(flat[:, 0], flat[:, 1]) < REACH_MM])
    cloud = np.concatenate(points) if points else np.zeros((0, 2))
    angles = np.linspace(-np.pi, np.pi, ANGLES, endpoint=False)
    direction = np.column_stack([np.cos(angles), np.sin(angles)])
    radii = envelope_radii(_hull_points(cloud), angles) if len(cloud) >= 3 else np.full(ANGLES, 60.0)
    hull = direction * radii[:, None]
    half_width = max(float(np.abs(hull[:, 0]).max()) + SUBCUTANEOUS_MM, TRUNK_HALF_WIDTH_MM)
    back = max(float(-hull[:, 1].min()), 20.0)
    front = max(TRUNK_DEPTH_RATIO * 2.0 * half_width - back - SUBCUTANEOUS_MM, 30.0)
    # The trunk: a half ellipse in front (the atlas has no abdominal wall) and a flatter one behind
    # that meets the back muscles; the muscle and bone envelope pushes it out where it reaches further.
    depth = np.where(np.sin(angles) > 0.0, front, back)
    ellipse = 1.0 / np.sqrt((np.cos(angles) / half_width) ** 2 + (np.sin(angles) / depth) ** 2)
    radii = _smooth_circular(np.maximum(radii, ellipse), 3)
    fascia = direction * radii[:, None]
    skin = direction * (radii + SUBCUTANEOUS_MM)[:, None]
    # The wall band (obliques, transversus, latissimus over the flank) everywhere but behind the
    # spine, where the back muscles lie under the fat: it fades out within 40 degrees of the midline.
    from_back = np.abs(np.angle(np.exp(1j * (angles + np.pi / 2))))
    band = np.clip((from_back - np.radians(40.0)) / np.radians(20.0), 0.0, 1.0)
    cavity = direction * np.maximum(radii - WALL_MM * band, 1.0)[:, None]
    return BodyOutline(skin, fascia, cavity)


#: Levels (C1 = 0 ... S1 = 24) between which the lumbar skin surface is built: T12 to S1, every quarter level.
SKIN_LEVELS = (18.0, 24.0)
SKIN_STEP = 0.25


def plane_axes(normal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit in-plane axes (patient's right, anterior) of a plane with unit ``normal`` (as in the sections)."""
    n = np.asarray(normal, dtype=float)
    right = np.array([1.0, 0.0, 0.0]) - n[0] * n
    right /= np.linalg.norm(right)
    anterior = np.array([0.0, 1.0, 0.0]) - (n @ [0.0, 1.0, 0.0]) * n - (right @ [0.0, 1.0, 0.0]) * right
    return right, anterior / np.linalg.norm(anterior)


@lru_cache(maxsize=4)  # per atlas: a few seconds the first time
def skin_surface(atlas: Atlas) -> tuple[np.ndarray, np.ndarray]:
    """The skin of the lumbar trunk as a tube mesh: the skin outlines of :func:`body_outline` on planes
    perpendicular to the spine from T12 to S1, joined ring to ring.

    Returns
    -------
    vertices : (k * ANGLES, 3) float ndarray, mm
    faces : (2 * (k - 1) * ANGLES, 3) int ndarray, outward-wound (open at both ends)
    """
    names = [n for n in atlas.spine]
    index = sorted(VERTEBRAE.index(n) for n in names)
    low, high = max(SKIN_LEVELS[0], index[0]), min(SKIN_LEVELS[1], index[-1])
    levels = np.arange(low, high + 1e-9, SKIN_STEP)
    centres = body_centres(levels, atlas.spine)
    tangents = spine_tangents(levels, atlas.spine)
    rings = []
    for centre, normal in zip(centres, tangents):
        axes = plane_axes(normal)
        skin = body_outline(atlas, centre, normal, axes).skin
        rings.append(centre + skin[:, :1] * axes[0] + skin[:, 1:2] * axes[1])
    vertices = np.concatenate(rings)
    count = ANGLES
    faces = []
    for k in range(len(rings) - 1):
        a = k * count + np.arange(count)
        b = k * count + (np.arange(count) + 1) % count
        c, d = a + count, b + count
        # Rings run from superior (T12) to inferior; the outline runs counter-clockwise in (right,
        # anterior), so this winding points outward.
        faces.append(np.column_stack([a, d, b]))
        faces.append(np.column_stack([a, c, d]))
    return vertices, np.concatenate(faces)
