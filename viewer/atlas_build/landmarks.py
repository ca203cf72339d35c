"""Bony landmarks found on the skeleton meshes, in the atlas frame.

Every function takes vertex arrays (or meshes) in RAS millimetres (+x patient's right, +y anterior,
+z superior, midline x = 0) and returns points in the same frame. The meshes are low-poly and some
are open (skull, scapulae, rib cage), so landmarks are extreme vertices, vertices picked inside
bands, or ray hits, never inside/outside tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import trimesh

SIDES: tuple[str, str] = ("left", "right")
#: Vertebrae that carry transverse processes and laminae, cranial to caudal.
VERTEBRA_IDS: tuple[str, ...] = (
    *(f"vertebra_c{i}" for i in range(1, 8)),
    *(f"vertebra_t{i}" for i in range(1, 13)),
    *(f"vertebra_l{i}" for i in range(1, 6)),
)


def side_sign(side: str) -> float:
    """+1 for the patient's right (+x), -1 for the left.

    Raises
    ------
    ValueError
        If ``side`` is not ``"left"`` or ``"right"``.
    """
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}")
    return 1.0 if side == "right" else -1.0


# --------------------------------------------------------------------------- vertebrae


@dataclass(frozen=True)
class VertebraLandmarks:
    """Landmarks of one vertebra (all (3,) float arrays, mm, atlas frame).

    Attributes
    ----------
    name : str
        Bone id, e.g. ``"vertebra_t4"``.
    spinous_tip : ndarray
        Tip of the spinous process (most posterior vertex; for C1 the posterior tubercle).
    transverse_tip : dict of str to ndarray
        Tip of each transverse process (lateral extreme), keyed ``"left"``/``"right"``.
    transverse_root : dict of str to ndarray
        Posterior surface of each transverse process about a quarter of the way in from its tip.
    lamina : dict of str to ndarray
        Posterior surface of each lamina next to the base of the spinous process.
    articular : dict of str to ndarray
        Posterior surface over each articular pillar (between lamina and transverse process).
    """

    name: str
    spinous_tip: np.ndarray
    transverse_tip: dict[str, np.ndarray]
    transverse_root: dict[str, np.ndarray]
    lamina: dict[str, np.ndarray]
    articular: dict[str, np.ndarray]


def spinous_tip(vertices: np.ndarray) -> np.ndarray:
    """Tip of the spinous process: the most posterior point (between the tubercles if bifid).

    Parameters
    ----------
    vertices : (n, 3) float ndarray
        Vertices of one vertebra (mm).

    Returns
    -------
    (3,) float ndarray
    """
    v = np.asarray(vertices, dtype=np.float64)
    # Cervical spines are bifid: average the back-most vertices so the tip lands between the two
    # tubercles, on the midline.
    back = v[v[:, 1] < v[:, 1].min() + 2.0]
    tip = back.mean(axis=0)
    tip[1] = v[:, 1].min()
    return tip


def transverse_tip(vertices: np.ndarray, side: str) -> np.ndarray:
    """Tip of a transverse process: the vertex furthest to that side.

    Parameters
    ----------
    vertices : (n, 3) float ndarray
        Vertices of one vertebra (mm).
    side : {"left", "right"}

    Returns
    -------
    (3,) float ndarray
    """
    v = np.asarray(vertices, dtype=np.float64)
    return v[np.argmax(side_sign(side) * v[:, 0])].copy()


def _posterior_in_band(vertices: np.ndarray, side: str, lo: float, hi: float) -> np.ndarray:
    """Most posterior vertex whose lateral distance lies in ``[lo, hi]`` of the half-width."""
    v = np.asarray(vertices, dtype=np.float64)
    s = side_sign(side)
    half = s * transverse_tip(v, side)[0]
    lateral = s * v[:, 0]
    band = (lateral >= lo * half) & (lateral <= hi * half)
    if not band.any():
        raise ValueError(f"no vertex between {lo} and {hi} of the half-width on the {side}")
    idx = np.flatnonzero(band)
    return v[idx[np.argmin(v[idx, 1])]].copy()


def lamina_point(vertices: np.ndarray, side: str) -> np.ndarray:
    """Posterior surface of the lamina beside the spinous-process base.

    Parameters
    ----------
    vertices : (n, 3) float ndarray
        Vertices of one vertebra (mm).
    side : {"left", "right"}

    Returns
    -------
    (3,) float ndarray
    """
    return _posterior_in_band(vertices, side, 0.18, 0.4)


def articular_point(vertices: np.ndarray, side: str) -> np.ndarray:
    """Posterior surface over the articular pillar, lateral to the lamina.

    Parameters
    ----------
    vertices : (n, 3) float ndarray
        Vertices of one vertebra (mm).
    side : {"left", "right"}

    Returns
    -------
    (3,) float ndarray
    """
    return _posterior_in_band(vertices, side, 0.4, 0.62)


def transverse_root(vertices: np.ndarray, side: str) -> np.ndarray:
    """Posterior surface of the transverse process, a quarter of the way in from its tip.

    Parameters
    ----------
    vertices : (n, 3) float ndarray
        Vertices of one vertebra (mm).
    side : {"left", "right"}

    Returns
    -------
    (3,) float ndarray
    """
    return _posterior_in_band(vertices, side, 0.62, 0.85)


def vertebra_landmarks(name: str, mesh: trimesh.Trimesh) -> VertebraLandmarks:
    """All landmarks of one vertebra.

    Parameters
    ----------
    name : str
        Bone id (``"vertebra_t4"``).
    mesh : trimesh.Trimesh
        The vertebra in the atlas frame (mm).

    Returns
    -------
    VertebraLandmarks
    """
    v = np.asarray(mesh.vertices, dtype=np.float64)
    return VertebraLandmarks(
        name=name,
        spinous_tip=spinous_tip(v),
        transverse_tip={s: transverse_tip(v, s) for s in SIDES},
        transverse_root={s: transverse_root(v, s) for s in SIDES},
        lamina={s: lamina_point(v, s) for s in SIDES},
        articular={s: articular_point(v, s) for s in SIDES},
    )


def spine_landmarks(bones: Mapping[str, trimesh.Trimesh]) -> dict[str, VertebraLandmarks]:
    """Landmarks of every vertebra C1-L5 present in ``bones``.

    Parameters
    ----------
    bones : mapping of str to trimesh.Trimesh
        Bone meshes keyed by id (atlas frame, mm).

    Returns
    -------
    dict of str to VertebraLandmarks
        Keyed by level name (``"C1"`` ... ``"L5"``), cranial to caudal.
    """
    return {
        name.split("_")[1].upper(): vertebra_landmarks(name, bones[name])
        for name in VERTEBRA_IDS
        if name in bones
    }


# --------------------------------------------------------------------------- rays


def cast_rays(
    mesh: trimesh.Trimesh, origins: np.ndarray, direction: np.ndarray
) -> np.ndarray:
    """First hit of parallel rays on a (possibly open) mesh, by brute-force Moller-Trumbore.

    Parameters
    ----------
    mesh : trimesh.Trimesh
        Target surface (mm); a few thousand faces at most, since every ray tests every face.
    origins : (n, 3) float ndarray
        Ray origins (mm).
    direction : (3,) float ndarray
        Common ray direction (any length).

    Returns
    -------
    (n, 3) float ndarray
        Hit points; rows of NaN where a ray misses.
    """
    o = np.asarray(origins, dtype=np.float64).reshape(-1, 3)
    d = np.asarray(direction, dtype=np.float64)
    d = d / np.linalg.norm(d)
    tri = np.asarray(mesh.triangles, dtype=np.float64)
    a, e1, e2 = tri[:, 0], tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    p = np.cross(d, e2)
    det = np.einsum("ij,ij->i", e1, p)
    ok = np.abs(det) > 1e-12
    a, e1, e2, p, inv = a[ok], e1[ok], e2[ok], p[ok], 1.0 / det[ok]
    out = np.full_like(o, np.nan)
    for i, origin in enumerate(o):
        t_vec = origin - a
        u = np.einsum("ij,ij->i", t_vec, p) * inv
        q = np.cross(t_vec, e1)
        v = (q @ d) * inv
        t = np.einsum("ij,ij->i", q, e2) * inv
        hit = (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0)
        if hit.any():
            out[i] = origin + d * t[hit].min()
    return out


# --------------------------------------------------------------------------- skull


@dataclass(frozen=True)
class SkullLandmarks:
    """Landmarks of the occiput (mm, atlas frame).

    Attributes
    ----------
    external_occipital_protuberance : (3,) float ndarray
    superior_nuchal_line : dict of str to (k, 3) float ndarray
        Points along each superior nuchal line from the protuberance outward.
    inferior_nuchal_line : dict of str to (k, 3) float ndarray
        Points along each inferior nuchal line from the midline outward.
    mastoid : dict of str to (3,) float ndarray
        Tip of each mastoid process.
    """

    external_occipital_protuberance: np.ndarray
    superior_nuchal_line: dict[str, np.ndarray]
    inferior_nuchal_line: dict[str, np.ndarray]
    mastoid: dict[str, np.ndarray]


def _occiput_profile(mesh: trimesh.Trimesh) -> tuple[float, float]:
    """Heights (mm) of the opisthocranion and of the posterior rim of the foramen magnum."""
    v = np.asarray(mesh.vertices, dtype=np.float64)
    behind = v[:, 1] < np.median(v[:, 1])
    back = v[behind & (np.abs(v[:, 0]) < 15.0)]
    z_back = float(back[np.argmin(back[:, 1]), 2])
    return z_back, float(v[behind, 2].min())


def skull_landmarks(mesh: trimesh.Trimesh, n_line: int = 8) -> SkullLandmarks:
    """Protuberance, nuchal lines and mastoid processes of the skull.

    The protuberance is placed a third of the way from the opisthocranion (the most posterior
    point of the vault) down to the foramen magnum, where the vault turns into the nuchal plane;
    the superior nuchal line arches laterally and slightly down from it, the inferior one runs
    parallel about 40% lower. Points are ray hits from behind, so they lie on the bone surface.

    Parameters
    ----------
    mesh : trimesh.Trimesh
        Skull (may be open), atlas frame, mm.
    n_line : int
        Points per nuchal line.

    Returns
    -------
    SkullLandmarks
    """
    v = np.asarray(mesh.vertices, dtype=np.float64)
    z_back, z_low = _occiput_profile(mesh)
    z_eop = z_back - 0.33 * (z_back - z_low)
    z_inl = z_back - 0.7 * (z_back - z_low)
    y0 = v[:, 1].min() - 50.0
    half = 0.75 * float(np.abs(v[v[:, 1] < np.median(v[:, 1]), 0]).max())
    direction = np.array([0.0, 1.0, 0.0])
    eop = cast_rays(mesh, np.array([[0.0, y0, z_eop]]), direction)[0]
    sup: dict[str, np.ndarray] = {}
    inf: dict[str, np.ndarray] = {}
    mastoid: dict[str, np.ndarray] = {}
    x = np.linspace(0.0, half, n_line)
    for side in SIDES:
        s = side_sign(side)
        # Both nuchal lines curve downward laterally toward the mastoid region.
        z_sup = z_eop - 0.12 * x - 8.0 * (x / half) ** 2
        z_inf = z_inl - 0.05 * x
        sup[side] = cast_rays(mesh, np.column_stack([s * x, np.full_like(x, y0), z_sup]), direction)
        inf[side] = cast_rays(mesh, np.column_stack([s * x, np.full_like(x, y0), z_inf]), direction)
        mastoid[side] = _mastoid(v, side)
    return SkullLandmarks(eop, sup, inf, mastoid)


def _mastoid(vertices: np.ndarray, side: str) -> np.ndarray:
    """Lowest vertex of the lateral skull base behind the mandible."""
    s = side_sign(side)
    y_mid = float(np.median(vertices[:, 1]))
    lateral = s * vertices[:, 0] > 0.45 * np.abs(vertices[:, 0]).max()
    region = vertices[lateral & (vertices[:, 1] < y_mid)]
    return region[np.argmin(region[:, 2])].copy()


# --------------------------------------------------------------------------- scapula


@dataclass(frozen=True)
class ScapulaLandmarks:
    """Landmarks of one scapula (mm, atlas frame).

    Attributes
    ----------
    side : str
    normal : (3,) float ndarray
        Unit normal of the best-fit plane of the blade, pointing away from the thorax.
    inferior_angle, superior_angle, spine_root, acromion : (3,) float ndarray
    medial_border : (k, 3) float ndarray
        Hull points of the medial border from the superior angle down to the inferior angle.
    spine : (m, 3) float ndarray
        Crest of the spine of the scapula from its root (medial) to the acromion (lateral).
    """

    side: str
    normal: np.ndarray
    inferior_angle: np.ndarray
    superior_angle: np.ndarray
    spine_root: np.ndarray
    acromion: np.ndarray
    medial_border: np.ndarray
    spine: np.ndarray


def _scapula_frame(v: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Centroid, and unit in-plane lateral, in-plane superior and outward normal axes."""
    centre = v.mean(axis=0)
    _, _, vt = np.linalg.svd(v - centre, full_matrices=False)
    normal = vt[2] if vt[2, 1] < 0 else -vt[2]  # posterior-facing
    up = np.array([0.0, 0.0, 1.0]) - normal[2] * normal
    up /= np.linalg.norm(up)
    lateral = np.cross(up, normal)
    if lateral[0] * side_sign(side) < 0:
        lateral = -lateral
    return centre, lateral, up, normal


def _hull_chain(points2d: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Indices of the 2-D convex hull walked from ``start`` to ``stop`` on its medial side."""
    from scipy.spatial import ConvexHull

    ring = list(ConvexHull(points2d).vertices)  # counter-clockwise
    for idx in (start, stop):
        if idx not in ring:
            raise ValueError("hull chain endpoints must be hull vertices")
    n, i, j = len(ring), ring.index(start), ring.index(stop)
    a = [ring[(i + k) % n] for k in range((j - i) % n + 1)]
    b = [ring[(i - k) % n] for k in range((i - j) % n + 1)]
    return np.array(a if points2d[a, 0].mean() < points2d[b, 0].mean() else b)


def scapula_landmarks(mesh: trimesh.Trimesh, side: str) -> ScapulaLandmarks:
    """Angles, medial border, spine and acromion of one scapula.

    Parameters
    ----------
    mesh : trimesh.Trimesh
        Scapula (may be open), atlas frame, mm.
    side : {"left", "right"}

    Returns
    -------
    ScapulaLandmarks
    """
    v = np.asarray(mesh.vertices, dtype=np.float64)
    centre, lateral, up, normal = _scapula_frame(v, side)
    rel = v - centre
    p2 = np.column_stack([rel @ lateral, rel @ up])
    off = rel @ normal
    inferior = int(np.argmin(v[:, 2]))
    superior = int(np.argmax(p2[:, 1] - p2[:, 0]))
    chain = _hull_chain(p2, superior, inferior)
    border = v[chain]
    spine, root_i = _spine_crest(v, p2, off, chain)
    acromion = spine[-1]
    return ScapulaLandmarks(
        side=side,
        normal=normal,
        inferior_angle=v[inferior].copy(),
        superior_angle=v[superior].copy(),
        spine_root=v[root_i].copy(),
        acromion=acromion.copy(),
        medial_border=border,
        spine=spine,
    )


def _spine_crest(
    v: np.ndarray, p2: np.ndarray, off: np.ndarray, border: np.ndarray, n_bins: int = 14
) -> tuple[np.ndarray, int]:
    """Crest of the scapular spine (medial to lateral) and the index of its root on the border."""
    # The spine stands well off the blade's plane; the blade itself stays within a few mm of it.
    ridge = off > np.percentile(off, 85)
    lat = p2[:, 0]
    lo, hi = lat[ridge].min(), lat[ridge].max()
    edges = np.linspace(lo, hi, n_bins + 1)
    crest = []
    for a, b in zip(edges[:-1], edges[1:]):
        idx = np.flatnonzero(ridge & (lat >= a) & (lat <= b))
        if len(idx):
            crest.append(v[idx[np.argmax(off[idx])]])
    crest_arr = _drop_off_line(np.array(crest), tolerance=10.0)
    # The root is where the spine's line meets the medial border.
    d = crest_arr[min(3, len(crest_arr) - 1)] - crest_arr[0]
    d /= np.linalg.norm(d)
    rel = v[border] - crest_arr[0]
    dist = np.linalg.norm(rel - np.outer(rel @ d, d), axis=1)
    root = int(border[np.argmin(dist)])
    return np.vstack([v[root], crest_arr]), root


def _drop_off_line(points: np.ndarray, tolerance: float, rounds: int = 3) -> np.ndarray:
    """Keep the points within ``tolerance`` (mm) of their best-fit line, refitting a few times."""
    keep = np.ones(len(points), dtype=bool)
    for _ in range(rounds):
        centre = points[keep].mean(axis=0)
        _, _, vt = np.linalg.svd(points[keep] - centre, full_matrices=False)
        rel = points - centre
        dist = np.linalg.norm(rel - np.outer(rel @ vt[0], vt[0]), axis=1)
        new_keep = dist <= max(tolerance, float(np.median(dist[keep])))
        if new_keep.sum() < 2 or np.array_equal(new_keep, keep):
            break
        keep = new_keep
    return points[keep]


# --------------------------------------------------------------------------- clavicle, humerus


def clavicle_lateral_third(mesh: trimesh.Trimesh, side: str, n: int = 8) -> np.ndarray:
    """Posterosuperior edge of the lateral third of the clavicle, medial to lateral.

    Parameters
    ----------
    mesh : trimesh.Trimesh
        Clavicle, atlas frame, mm.
    side : {"left", "right"}
    n : int
        Number of points.

    Returns
    -------
    (n, 3) float ndarray
    """
    v = np.asarray(mesh.vertices, dtype=np.float64)
    centre = v.mean(axis=0)
    _, _, vt = np.linalg.svd(v - centre, full_matrices=False)
    axis = vt[0] if vt[0, 0] * side_sign(side) > 0 else -vt[0]
    t = (v - centre) @ axis
    edges = np.linspace(t.min() + 2.0 / 3.0 * np.ptp(t), t.max() - 1.0, n + 1)
    out = []
    for a, b in zip(edges[:-1], edges[1:]):
        idx = np.flatnonzero((t >= a) & (t <= b))
        if not len(idx):
            idx = np.array([int(np.argmin(np.abs(t - 0.5 * (a + b))))])
        # Trapezius grips the back of the superior surface: up and back.
        out.append(v[idx[np.argmax(v[idx, 2] - v[idx, 1])]])
    return np.array(out)


def intertubercular_groove(mesh: trimesh.Trimesh, side: str) -> np.ndarray:
    """Floor of the intertubercular groove: anterior surface of the humerus below the tubercles.

    Parameters
    ----------
    mesh : trimesh.Trimesh
        Humerus, atlas frame, mm.
    side : {"left", "right"}

    Returns
    -------
    (3,) float ndarray
    """
    side_sign(side)
    v = np.asarray(mesh.vertices, dtype=np.float64)
    top = v[:, 2].max()
    band = v[(v[:, 2] < top - 30.0) & (v[:, 2] > top - 50.0)]
    centre = band.mean(axis=0)
    front = band[band[:, 1] > centre[1]]
    # The groove is the least anterior point of the front arc between the two tubercle lips.
    near = front[np.abs(front[:, 0] - centre[0]) < 8.0]
    pick = near if len(near) else front
    return pick[np.argmax(pick[:, 1])].copy()
