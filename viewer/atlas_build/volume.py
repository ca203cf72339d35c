"""Closed muscle surfaces from unions of tubes, built in the signed-distance domain.

A muscle is the smooth union of tapered capsules around its fascicle paths. The union, the
subtraction of higher-priority structures (bone, deeper muscle) and the surface extraction all
happen on one voxel grid: distances are combined there, then marching cubes gives a surface that
is closed by construction. Surfaces are then relaxed (Taubin, volume-preserving) and simplified
with manifold3d, which keeps them closed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import trimesh
from scipy import ndimage
from skimage import measure

#: Blend width (mm) of the smooth maximum used for cuts (CSG difference).
CUT_BLEND_MM = 1.5
#: Half-width (mm) of the midline strip no bilateral muscle may enter: left and right muscles stay
#: apart (the interspinous ligament lies there) and no muscle crosses to the other side.
MIDLINE_GAP_MM = 1.0
#: Half-width (mm) of the spinous ridge: within it no muscle lies behind the line of the spinous
#: process tips, so the tips stay bare between left and right muscles, as in a dissection.
RIDGE_HALF_WIDTH_MM = 5.0
#: Along the spine, each tip's depth is carried this far (mm) over the interspinous gaps.
RIDGE_WINDOW_MM = 12.0
#: Grid origin jitter (mm) so that voxel columns never pass exactly through mesh vertices.
_JITTER = np.array([0.0137, 0.0291, 0.0073])


@dataclass(frozen=True)
class Grid:
    """Axis-aligned voxel grid.

    Attributes
    ----------
    origin : (3,) float ndarray
        Centre of voxel (0, 0, 0), mm.
    shape : tuple of int
        Voxels along x, y, z.
    spacing : float
        Voxel edge, mm.
    """

    origin: np.ndarray
    shape: tuple[int, int, int]
    spacing: float

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Voxel-centre coordinates along x, y and z (mm)."""
        return tuple(self.origin[i] + self.spacing * np.arange(self.shape[i]) for i in range(3))

    def index_range(self, lo: np.ndarray, hi: np.ndarray) -> tuple[slice, slice, slice]:
        """Slices of the voxels whose centres lie within the box ``[lo, hi]`` (mm)."""
        a = np.clip(np.floor((lo - self.origin) / self.spacing).astype(int), 0, self.shape)
        b = np.clip(np.ceil((hi - self.origin) / self.spacing).astype(int) + 1, 0, self.shape)
        return tuple(slice(int(a[i]), int(b[i])) for i in range(3))


def grid_around(points: np.ndarray, margin: float, spacing: float) -> Grid:
    """Grid covering ``points`` plus ``margin`` mm on every side.

    Parameters
    ----------
    points : (n, 3) float ndarray
        Points to cover, mm.
    margin : float
        Extra space on each side, mm.
    spacing : float
        Voxel edge, mm.
    """
    lo = np.floor((points.min(axis=0) - margin) / spacing) * spacing + _JITTER
    hi = points.max(axis=0) + margin
    shape = tuple(int(n) for n in np.ceil((hi - lo) / spacing).astype(int) + 1)
    return Grid(lo, shape, float(spacing))


def smooth_min(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum of two distance fields (blend width ``k`` mm; 0 = plain min)."""
    if k <= 0:
        return np.minimum(a, b)
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b * (1 - h) + a * h - k * h * (1 - h)


def segment_distance(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, a: np.ndarray, b: np.ndarray, ra: float, rb: float
) -> np.ndarray:
    """Signed distance (approximate) to a tapered capsule.

    Parameters
    ----------
    x, y, z : float ndarrays, broadcastable
        Query coordinates, mm.
    a, b : (3,) float ndarray
        Segment end points, mm.
    ra, rb : float
        Radii at ``a`` and ``b``, mm; the radius varies linearly along the segment.

    Returns
    -------
    float ndarray
        Negative inside, positive outside (mm).
    """
    ab = b - a
    denom = max(float(ab @ ab), 1e-12)
    t = np.clip(((x - a[0]) * ab[0] + (y - a[1]) * ab[1] + (z - a[2]) * ab[2]) / denom, 0.0, 1.0)
    dx, dy, dz = x - (a[0] + t * ab[0]), y - (a[1] + t * ab[1]), z - (a[2] + t * ab[2])
    return np.sqrt(dx * dx + dy * dy + dz * dz) - (ra + t * (rb - ra))


def tube_field(
    grid: Grid, paths: Sequence[np.ndarray], radii: Sequence[np.ndarray | float], blend: float
) -> np.ndarray:
    """Smooth-union signed distance field of tapered tubes along polylines.

    Parameters
    ----------
    grid : Grid
        Where to sample the field.
    paths : sequence of (n_i, 3) float ndarray
        Polylines, mm.
    radii : sequence of float or (n_i,) float ndarray
        Tube radius per path or per path vertex, mm.
    blend : float
        Smooth-union width, mm.

    Returns
    -------
    (nx, ny, nz) float32 ndarray
        Signed distance, mm (far voxels hold a large positive value).
    """
    field = np.full(grid.shape, 1e3, dtype=np.float32)
    ax, ay, az = grid.axes()
    for path, radius in zip(paths, radii):
        path = np.asarray(path, dtype=float)
        r = np.broadcast_to(np.asarray(radius, dtype=float), (len(path),))
        for i in range(len(path) - 1):
            reach = max(r[i], r[i + 1]) + blend + 2 * grid.spacing
            lo = np.minimum(path[i], path[i + 1]) - reach
            hi = np.maximum(path[i], path[i + 1]) + reach
            sx, sy, sz = grid.index_range(lo, hi)
            d = segment_distance(
                ax[sx, None, None], ay[None, sy, None], az[None, None, sz],
                path[i], path[i + 1], r[i], r[i + 1],
            )
            field[sx, sy, sz] = smooth_min(field[sx, sy, sz], d.astype(np.float32), blend)
    return field


def occupancy(grid: Grid, mesh: trimesh.Trimesh) -> np.ndarray:
    """Voxels whose centres lie inside a closed mesh (ray parity along +z).

    Parameters
    ----------
    grid : Grid
        Voxel grid.
    mesh : trimesh.Trimesh
        Closed surface, mm.

    Returns
    -------
    (nx, ny, nz) bool ndarray
    """
    tri = mesh.triangles
    ax, ay, az = grid.axes()
    h = grid.spacing
    i0 = np.clip(np.ceil((tri[:, :, 0].min(1) - grid.origin[0]) / h), 0, grid.shape[0]).astype(int)
    i1 = np.clip(np.floor((tri[:, :, 0].max(1) - grid.origin[0]) / h), -1, grid.shape[0] - 1).astype(int)
    j0 = np.clip(np.ceil((tri[:, :, 1].min(1) - grid.origin[1]) / h), 0, grid.shape[1]).astype(int)
    j1 = np.clip(np.floor((tri[:, :, 1].max(1) - grid.origin[1]) / h), -1, grid.shape[1] - 1).astype(int)
    ni, nj = np.maximum(i1 - i0 + 1, 0), np.maximum(j1 - j0 + 1, 0)
    counts = ni * nj
    owner = np.repeat(np.arange(len(tri)), counts)
    if owner.size == 0:
        return np.zeros(grid.shape, dtype=bool)
    local = np.arange(owner.size) - np.repeat(np.cumsum(counts) - counts, counts)
    ii = i0[owner] + local // nj[owner]
    jj = j0[owner] + local % nj[owner]
    px, py = ax[ii], ay[jj]
    p0, p1, p2 = tri[owner, 0], tri[owner, 1], tri[owner, 2]
    # Barycentric coordinates of the column (px, py) in the triangle's xy projection.
    d = (p1[:, 1] - p2[:, 1]) * (p0[:, 0] - p2[:, 0]) + (p2[:, 0] - p1[:, 0]) * (p0[:, 1] - p2[:, 1])
    ok = np.abs(d) > 1e-12
    d = np.where(ok, d, 1.0)
    w0 = ((p1[:, 1] - p2[:, 1]) * (px - p2[:, 0]) + (p2[:, 0] - p1[:, 0]) * (py - p2[:, 1])) / d
    w1 = ((p2[:, 1] - p0[:, 1]) * (px - p2[:, 0]) + (p0[:, 0] - p2[:, 0]) * (py - p2[:, 1])) / d
    w2 = 1.0 - w0 - w1
    hit = ok & (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
    zc = w0 * p0[:, 2] + w1 * p1[:, 2] + w2 * p2[:, 2]
    k = np.ceil((zc - grid.origin[2]) / h).astype(int)
    hit &= k < grid.shape[2]
    k = np.clip(k, 0, None)
    crossings = np.zeros(grid.shape, dtype=np.int32)
    np.add.at(crossings, (ii[hit], jj[hit], k[hit]), 1)
    return (np.cumsum(crossings, axis=2) % 2).astype(bool)


def surface_occupancy(grid: Grid, mesh: trimesh.Trimesh) -> np.ndarray:
    """Voxels touched by a surface (dense barycentric samples of every triangle)."""
    tri = np.asarray(mesh.triangles)
    longest = np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=2).max()
    n = int(np.clip(np.ceil(2.0 * longest / grid.spacing), 1, 40))
    a, b = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    ok = a + b <= n
    w = np.column_stack([a[ok], b[ok]]) / n
    pts = (
        tri[:, None, 0] * (1 - w[:, 0] - w[:, 1])[None, :, None]
        + tri[:, None, 1] * w[None, :, 0, None]
        + tri[:, None, 2] * w[None, :, 1, None]
    ).reshape(-1, 3)
    idx = np.round((pts - grid.origin) / grid.spacing).astype(int)
    idx = idx[np.all((idx >= 0) & (idx < np.array(grid.shape)), axis=1)]
    out = np.zeros(grid.shape, dtype=bool)
    out[idx[:, 0], idx[:, 1], idx[:, 2]] = True
    return out


def solid_occupancy(grid: Grid, mesh: trimesh.Trimesh) -> np.ndarray:
    """Voxels inside a mesh: exact parity for closed meshes; for open ones (thin, holed bone
    plates such as the hip bone) the touched voxels, closed morphologically and hole-filled."""
    if mesh.is_watertight:
        return occupancy(grid, mesh)
    shell = ndimage.binary_closing(surface_occupancy(grid, mesh), iterations=2)
    return ndimage.binary_fill_holes(shell)


def signed_distance_from_occupancy(inside: np.ndarray, spacing: float) -> np.ndarray:
    """Euclidean signed distance (mm) of a voxel mask: negative inside, positive outside."""
    outside_d = ndimage.distance_transform_edt(~inside) * spacing
    inside_d = ndimage.distance_transform_edt(inside) * spacing
    return np.where(inside, 0.5 * spacing - inside_d, outside_d - 0.5 * spacing).astype(np.float32)


def subtract_meshes(
    field: np.ndarray,
    grid: Grid,
    meshes: Sequence[trimesh.Trimesh],
    clearance: float,
    shadow: np.ndarray | None = None,
) -> np.ndarray:
    """Remove closed meshes (plus a clearance) from a signed distance field (CSG difference).

    Parameters
    ----------
    field : (nx, ny, nz) float ndarray
        Signed distance of the muscle, mm.
    grid : Grid
        The field's grid.
    meshes : sequence of trimesh.Trimesh
        Closed higher-priority structures, mm.
    clearance : float
        Gap left between the muscle and each removed structure, mm.
    shadow : (nx, ny, nz) bool ndarray, optional
        Extra voxels to remove (see :func:`shadow_occupancy`).
    """
    if not meshes and shadow is None:
        return field
    inside = np.zeros(grid.shape, dtype=bool) if shadow is None else shadow.copy()
    for mesh in meshes:
        inside |= solid_occupancy(grid, mesh)
    if not inside.any():
        return field
    # The voxel distance is terraced; blurring it by about a voxel keeps cut faces smooth.
    other = ndimage.gaussian_filter(signed_distance_from_occupancy(inside, grid.spacing), 1.0)
    # A smooth maximum rounds the cut edge, which a plain maximum leaves voxel-jagged.
    return -smooth_min(-field, (other - clearance).astype(field.dtype), CUT_BLEND_MM)


def shadow_occupancy(grid: Grid, meshes: Sequence[trimesh.Trimesh], clearance: float) -> np.ndarray:
    """Voxels in front of (anterior to, larger y than) the posterior surface of some meshes.

    A muscle that must never appear in front of a deeper one, seen from behind, loses this region.
    Posterior surfaces are found by casting the grid's own columns along +y, so meshes outside
    the grid still cast their shadow.

    Parameters
    ----------
    grid : Grid
        Voxel grid.
    meshes : sequence of trimesh.Trimesh
        Deeper structures, mm.
    clearance : float
        The shadow starts this far behind (posterior to) each posterior surface, mm.

    Returns
    -------
    (nx, ny, nz) bool ndarray
    """
    ax, ay, az = grid.axes()
    gx, gz = np.meshgrid(ax, az, indexing="ij")
    first = np.full(gx.size, np.inf)
    for mesh in meshes:
        first = np.minimum(first, first_hits_along_y(mesh, gx.ravel(), gz.ravel()))
    first = first.reshape(gx.shape) - clearance
    return ay[None, :, None] >= first[:, None, :]


def midline_field(grid: Grid, side_sign: float, gap: float = MIDLINE_GAP_MM) -> np.ndarray:
    """Signed distance (mm) to the half-space ``side_sign * x >= gap`` (negative inside).

    Returns
    -------
    (nx, 1, 1) float32 ndarray
        Broadcasts against a field on ``grid``.
    """
    ax = grid.axes()[0]
    return (gap - side_sign * ax).astype(np.float32)[:, None, None]


def ridge_line(
    meshes: Sequence[trimesh.Trimesh], z: np.ndarray,
    half_width: float = RIDGE_HALF_WIDTH_MM, window: float = RIDGE_WINDOW_MM,
) -> np.ndarray:
    """Depth (y, mm) of the spinous ridge at heights ``z``: the most posterior bone within
    ``half_width`` of the midline, carried ``window`` mm up and down over the interspinous gaps.

    Returns
    -------
    (len(z),) float ndarray
        ``inf`` where no bone lies on the midline near that height.
    """
    xs = np.arange(-half_width, half_width + 1e-9, 0.5)
    gx, gz = np.meshgrid(xs, z, indexing="ij")
    first = np.full(gx.size, np.inf)
    for mesh in meshes:
        first = np.minimum(first, first_hits_along_y(mesh, gx.ravel(), gz.ravel()))
    line = first.reshape(gx.shape).min(axis=0)
    step = float(z[1] - z[0]) if len(z) > 1 else 1.0
    size = max(int(round(window / step)), 1)
    return ndimage.minimum_filter1d(line, size=2 * size + 1, mode="nearest")


def ridge_occupancy(grid: Grid, meshes: Sequence[trimesh.Trimesh], clearance: float,
                    half_width: float = RIDGE_HALF_WIDTH_MM) -> np.ndarray:
    """Voxels within ``half_width`` of the midline lying behind the spinous ridge (see :func:`ridge_line`).

    A muscle losing these never covers the tips of the spinous processes seen from behind.
    """
    ax, ay, az = grid.axes()
    line = ridge_line(meshes, az, half_width) + clearance
    line = np.where(np.isfinite(line), line, -np.inf)  # no bone on the midline there: nothing to keep bare
    near = np.abs(ax) < half_width
    return near[:, None, None] & (ay[None, :, None] < line[None, None, :])


def field_to_mesh(field: np.ndarray, grid: Grid) -> trimesh.Trimesh:
    """Closed, outward-wound surface of the zero level of a signed distance field.

    Parameters
    ----------
    field : (nx, ny, nz) float ndarray
        Negative inside, mm.
    grid : Grid
        The field's grid.

    Returns
    -------
    trimesh.Trimesh
        Mesh in mm; empty if the field has no inside.
    """
    if not (field < 0).any():
        return trimesh.Trimesh()
    # Samples lying exactly on the level put vertices on grid corners shared by several cubes,
    # which merge into non-manifold vertices; nudge them off the level.
    field = np.where(np.abs(field) < 1e-4, np.float32(1e-4), field)
    padded = np.pad(field, 1, constant_values=1e3)
    verts, faces, _, _ = measure.marching_cubes(padded, level=0.0, spacing=(grid.spacing,) * 3)
    verts = verts + grid.origin - grid.spacing
    mesh = trimesh.Trimesh(verts, faces[:, ::-1], process=True)
    if mesh.volume < 0:
        mesh.invert()
    return mesh


def largest_components(mesh: trimesh.Trimesh, min_fraction: float = 0.02) -> trimesh.Trimesh:
    """Drop closed pieces smaller than ``min_fraction`` of the largest one (crumbs after CSG)."""
    pieces = mesh.split(only_watertight=False)
    if len(pieces) <= 1:
        return mesh
    volumes = np.array([abs(p.volume) for p in pieces])
    keep = [p for p, v in zip(pieces, volumes) if v >= min_fraction * volumes.max()]
    return trimesh.util.concatenate(keep)


def taubin(
    vertices: np.ndarray, faces: np.ndarray, iterations: int = 10, lamb: float = 0.5, mu: float = -0.53
) -> np.ndarray:
    """Taubin (lambda|mu) smoothing with the uniform Laplacian; shape-preserving, no shrinking.

    Parameters
    ----------
    vertices : (n, 3) float ndarray
        Vertex positions, mm.
    faces : (m, 3) int ndarray
        Triangles.
    iterations : int
        Number of lambda/mu pass pairs.
    lamb, mu : float
        Smoothing and inflation factors (``0 < lamb < -mu``).

    Returns
    -------
    (n, 3) float ndarray
        Smoothed positions; the connectivity is unchanged, so closedness is kept.
    """
    from scipy import sparse

    v = np.asarray(vertices, dtype=float).copy()
    f = np.asarray(faces, dtype=np.int64)
    i = np.concatenate([f[:, 0], f[:, 1], f[:, 2], f[:, 1], f[:, 2], f[:, 0]])
    j = np.concatenate([f[:, 1], f[:, 2], f[:, 0], f[:, 0], f[:, 1], f[:, 2]])
    adj = sparse.coo_matrix((np.ones(len(i)), (i, j)), shape=(len(v), len(v))).tocsr()
    adj.data[:] = 1.0
    degree = np.asarray(adj.sum(axis=1)).ravel()
    degree[degree == 0] = 1.0
    for _ in range(iterations):
        for factor in (lamb, mu):
            v += factor * (adj @ v / degree[:, None] - v)
    return v


def relax(mesh: trimesh.Trimesh, iterations: int = 10) -> trimesh.Trimesh:
    """Taubin-smoothed copy of a mesh: removes voxel terracing without shrinking; same topology."""
    return trimesh.Trimesh(taubin(mesh.vertices, mesh.faces, iterations), mesh.faces.copy(), process=False)


def as_manifold(mesh: trimesh.Trimesh):  # -> manifold3d.Manifold | None (imported lazily)
    """``mesh`` as a manifold3d solid, or None when manifold3d finds it is not a closed manifold."""
    import manifold3d

    solid = manifold3d.Manifold(
        manifold3d.Mesh(
            vert_properties=np.asarray(mesh.vertices, dtype=np.float32),
            tri_verts=np.asarray(mesh.faces, dtype=np.uint32),
        )
    )
    return solid if solid.status() == manifold3d.Error.NoError else None


def simplify(mesh: trimesh.Trimesh, tolerance: float) -> trimesh.Trimesh:
    """Decimate with manifold3d, which keeps the surface closed.

    Parameters
    ----------
    mesh : trimesh.Trimesh
        Closed surface, mm.
    tolerance : float
        Largest allowed deviation of the surface, mm.
    """
    solid = as_manifold(mesh)
    if solid is None:
        return mesh
    out = solid.simplify(tolerance).to_mesh()
    vertices = separate_coincident(np.asarray(out.vert_properties)[:, :3], np.asarray(out.tri_verts))
    result = trimesh.Trimesh(vertices, np.asarray(out.tri_verts), process=True)
    return result if result.is_watertight else mesh


def separate_coincident(vertices: np.ndarray, faces: np.ndarray, shift_mm: float = 0.02) -> np.ndarray:
    """Pull apart distinct vertices that share a position.

    manifold3d keeps such pairs at pinch points; any reader that merges equal positions (as
    trimesh does by default) would fuse them into a non-manifold vertex. Each copy moves
    ``shift_mm`` toward the centroid of its own triangles, so the surface stays closed.

    Parameters
    ----------
    vertices : (n, 3) float ndarray
        Positions, mm.
    faces : (m, 3) int ndarray
        Triangles.

    Returns
    -------
    (n, 3) float64 ndarray
    """
    v = np.asarray(vertices, dtype=np.float32).astype(np.float64)
    _, inverse, counts = np.unique(v, axis=0, return_inverse=True, return_counts=True)
    shared = np.flatnonzero(counts[inverse.ravel()] > 1)
    if shared.size == 0:
        return v
    centroids = v[faces].mean(axis=1)
    sums = np.zeros_like(v)
    np.add.at(sums, faces.ravel(), np.repeat(centroids, 3, axis=0))
    uses = np.bincount(faces.ravel(), minlength=len(v))[:, None]
    target = sums[shared] / np.maximum(uses[shared], 1)
    step = target - v[shared]
    v[shared] += shift_mm * step / np.maximum(np.linalg.norm(step, axis=1, keepdims=True), 1e-12)
    return v


def tube_union_surface(
    paths: Sequence[np.ndarray],
    radii: Sequence[np.ndarray | float],
    voxel_mm: float = 1.5,
    subtract: Sequence[trimesh.Trimesh] = (),
    *,
    blend_mm: float = 3.0,
    clearance_mm: float = 0.5,
    smooth_iterations: int = 10,
    tolerance_mm: float = 0.25,
    shadow: Sequence[trimesh.Trimesh] = (),
    midline: bool = False,
    ridge: Sequence[trimesh.Trimesh] = (),
) -> trimesh.Trimesh:
    """Closed surface around a bundle of fascicle paths.

    Parameters
    ----------
    paths : sequence of (n_i, 3) float ndarray
        Fascicle polylines, mm, atlas frame.
    radii : sequence of float or (n_i,) float ndarray
        Tube radius per path, or per path vertex (tapering), mm.
    voxel_mm : float
        Grid spacing, mm.
    subtract : sequence of trimesh.Trimesh
        Closed structures of higher priority (bone, deeper muscles) carved out of the result.
    blend_mm : float
        Smooth-union width between neighbouring tubes, mm.
    clearance_mm : float
        Gap left against subtracted structures, mm.
    smooth_iterations : int
        Taubin smoothing passes after marching cubes.
    tolerance_mm : float
        Decimation tolerance, mm (0 disables decimation).
    shadow : sequence of trimesh.Trimesh
        Deeper structures this one must not reach in front of, seen from behind: everything
        anterior to their posterior surface is removed (keeps the layer order on posterior views).
    midline : bool
        Keep the muscle on its own side (the side of its paths' mean x), :data:`MIDLINE_GAP_MM`
        clear of the midsagittal plane.
    ridge : sequence of trimesh.Trimesh
        Vertebrae whose spinous ridge the muscle must leave bare (see :func:`ridge_occupancy`).

    Returns
    -------
    trimesh.Trimesh
        Watertight, outward-wound surface (mm). Empty if nothing is left after subtraction.
    """
    if len(paths) != len(radii):
        raise ValueError(f"paths and radii differ in length ({len(paths)} vs {len(radii)})")
    if not paths:
        return trimesh.Trimesh()
    pts = np.concatenate([np.asarray(p, dtype=float) for p in paths])
    rmax = max(float(np.max(r)) for r in radii)
    grid = grid_around(pts, rmax + blend_mm + 3 * voxel_mm, voxel_mm)
    field = tube_field(grid, paths, radii, blend_mm)
    near = [m for m in subtract if _boxes_overlap(m.bounds, grid)]
    behind = [m for m in shadow if _boxes_overlap_xz(m.bounds, grid)]
    carve = shadow_occupancy(grid, behind, clearance_mm) if behind else None
    if ridge:
        bare = ridge_occupancy(grid, [m for m in ridge if _boxes_overlap_xz(m.bounds, grid)], clearance_mm)
        carve = bare if carve is None else carve | bare
    field = subtract_meshes(field, grid, near, clearance_mm, carve)
    if midline:
        side = 1.0 if float(pts[:, 0].mean()) >= 0 else -1.0
        field = -smooth_min(-field, -midline_field(grid, side), CUT_BLEND_MM)
    mesh = field_to_mesh(field, grid)
    if mesh.is_empty:
        return mesh
    mesh = largest_components(mesh)
    mesh = relax(mesh, smooth_iterations)
    if tolerance_mm > 0:
        mesh = simplify(mesh, tolerance_mm)
    return mesh


def _boxes_overlap_xz(bounds: np.ndarray, grid: Grid) -> bool:
    hi = grid.origin + grid.spacing * (np.array(grid.shape) - 1)
    return bool(np.all(bounds[0][[0, 2]] <= hi[[0, 2]]) and np.all(bounds[1][[0, 2]] >= grid.origin[[0, 2]]))


def _boxes_overlap(bounds: np.ndarray, grid: Grid) -> bool:
    hi = grid.origin + grid.spacing * (np.array(grid.shape) - 1)
    return bool(np.all(bounds[0] <= hi) and np.all(bounds[1] >= grid.origin))


def _plane_basis(normal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = normal / np.linalg.norm(normal)
    helper = np.array([1.0, 0.0, 0.0]) if abs(n[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = np.cross(n, helper)
    u /= np.linalg.norm(u)
    return u, np.cross(n, u)


def _inside_polygon(point: np.ndarray, poly: np.ndarray) -> bool:
    x, y = point
    xs, ys = poly[:, 0], poly[:, 1]
    xn, yn = np.roll(xs, -1), np.roll(ys, -1)
    crosses = (ys > y) != (yn > y)
    xi = xs + (y - ys) * (xn - xs) / np.where(yn == ys, 1e-12, yn - ys)
    return bool(np.count_nonzero(crosses & (x < xi)) % 2)


def section_loops(
    mesh: trimesh.Trimesh, origin: np.ndarray, normal: np.ndarray
) -> list[np.ndarray]:
    """Closed loops where a plane cuts a mesh.

    Returns
    -------
    list of (k, 3) float ndarray
        Loop vertices in 3D (mm); empty if the plane misses the mesh.
    """
    section = mesh.section(plane_origin=np.asarray(origin, float), plane_normal=np.asarray(normal, float))
    if section is None:
        return []
    return [np.asarray(loop) for loop in section.discrete if len(loop) >= 3]


def cross_section_area(
    mesh: trimesh.Trimesh,
    origin: np.ndarray,
    normal: np.ndarray,
    keep: Callable[[np.ndarray], bool] | None = None,
) -> float:
    """Area of a closed mesh's cross-section by a plane (even-odd rule for holes).

    Parameters
    ----------
    mesh : trimesh.Trimesh
        Closed surface, mm.
    origin : (3,) float ndarray
        A point of the plane, mm.
    normal : (3,) float ndarray
        Plane normal (any length).
    keep : callable, optional
        Takes a loop's 3D centroid and says whether the loop counts (e.g. one side of the body,
        near the spine); by default every loop counts.

    Returns
    -------
    float
        Area, mm^2.
    """
    u, v = _plane_basis(np.asarray(normal, float))
    loops = [lp for lp in section_loops(mesh, origin, normal) if keep is None or keep(lp.mean(axis=0))]
    flat = [np.column_stack([(lp - origin) @ u, (lp - origin) @ v]) for lp in loops]
    total = 0.0
    for i, poly in enumerate(flat):
        x, y = poly[:, 0], poly[:, 1]
        area = 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
        depth = sum(_inside_polygon(poly[0], other) for j, other in enumerate(flat) if j != i)
        total += area if depth % 2 == 0 else -area
    return total


def first_hits_along_y(mesh: trimesh.Trimesh, xs: np.ndarray, zs: np.ndarray) -> np.ndarray:
    """Where rays travelling along +y first meet a mesh.

    Parameters
    ----------
    mesh : trimesh.Trimesh
        Surface, mm.
    xs, zs : (n,) float ndarray
        Ray positions (x, z), mm; rays come from y = -infinity (behind the body).

    Returns
    -------
    (n,) float ndarray
        Smallest y of an intersection per ray (mm), ``inf`` where the ray misses.
    """
    tri = np.asarray(mesh.triangles)
    out = np.full(len(xs), np.inf)
    if len(tri) == 0 or len(xs) == 0:
        return out
    # Rays lie on a regular grid; map each triangle to the grid cells its xz box covers.
    ux, uz = np.unique(xs), np.unique(zs)
    hx = ux[1] - ux[0] if len(ux) > 1 else 1.0
    hz = uz[1] - uz[0] if len(uz) > 1 else 1.0
    lookup = -np.ones((len(ux), len(uz)), dtype=np.int64)
    lookup[np.searchsorted(ux, xs), np.searchsorted(uz, zs)] = np.arange(len(xs))
    i0 = np.clip(np.ceil((tri[:, :, 0].min(1) - ux[0]) / hx), 0, len(ux)).astype(int)
    i1 = np.clip(np.floor((tri[:, :, 0].max(1) - ux[0]) / hx), -1, len(ux) - 1).astype(int)
    j0 = np.clip(np.ceil((tri[:, :, 2].min(1) - uz[0]) / hz), 0, len(uz)).astype(int)
    j1 = np.clip(np.floor((tri[:, :, 2].max(1) - uz[0]) / hz), -1, len(uz) - 1).astype(int)
    ni, nj = np.maximum(i1 - i0 + 1, 0), np.maximum(j1 - j0 + 1, 0)
    counts = ni * nj
    owner = np.repeat(np.arange(len(tri)), counts)
    if owner.size == 0:
        return out
    local = np.arange(owner.size) - np.repeat(np.cumsum(counts) - counts, counts)
    ii = i0[owner] + local // nj[owner]
    jj = j0[owner] + local % nj[owner]
    ray = lookup[ii, jj]
    px, pz = ux[ii], uz[jj]
    p0, p1, p2 = tri[owner, 0], tri[owner, 1], tri[owner, 2]
    d = (p1[:, 2] - p2[:, 2]) * (p0[:, 0] - p2[:, 0]) + (p2[:, 0] - p1[:, 0]) * (p0[:, 2] - p2[:, 2])
    ok = np.abs(d) > 1e-12
    d = np.where(ok, d, 1.0)
    w0 = ((p1[:, 2] - p2[:, 2]) * (px - p2[:, 0]) + (p2[:, 0] - p1[:, 0]) * (pz - p2[:, 2])) / d
    w1 = ((p2[:, 2] - p0[:, 2]) * (px - p2[:, 0]) + (p0[:, 0] - p2[:, 0]) * (pz - p2[:, 2])) / d
    w2 = 1.0 - w0 - w1
    hit = ok & (w0 >= 0) & (w1 >= 0) & (w2 >= 0) & (ray >= 0)
    y = w0 * p0[:, 1] + w1 * p1[:, 1] + w2 * p2[:, 1]
    np.minimum.at(out, ray[hit], y[hit])
    return out
