"""Reading BodyParts3D meshes into Dorsum's frame and repairing them into closed surfaces.

BodyParts3D works in millimetres with +x toward the body's left and +y posterior; Dorsum's atlas
frame is RAS (+x right, +y anterior). Turning x and y round is a rotation about z, so triangle
winding is kept. Muscles arrive as open surfaces with loose crumbs: :func:`close_surface` rebuilds
each as one closed, outward-wound surface through a voxel grid (:mod:`viewer.atlas_import.voxels`),
:func:`decimate` brings it to its triangle budget while keeping it closed, and
:func:`snap_to_source` moves its vertices back onto the drawn surface where that is near, which
restores the fibre relief the grid smooths away.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import trimesh

from viewer.atlas import MeshData
from viewer.atlas_import import voxels
from viewer.errors import DorsumError

#: Voxel edge (mm) for muscles: keeps the fibre relief and sheets about 2 mm thin.
MUSCLE_SPACING_MM = 0.7
#: Voxel edge (mm) for the bones that atrophy and sections cut (vertebrae, sacrum).
BONE_SPACING_MM = 0.5
#: Largest voxel grid (voxels) before the spacing is coarsened, to bound memory and time.
MAX_VOXELS = 30_000_000
#: Pieces smaller than this many faces are crumbs.
MIN_COMPONENT_FACES = 40
#: A piece of a one-sided structure whose centre lies this far (mm) across the midline is a stray.
STRAY_ACROSS_MM = 5.0

#: Vertices of a repaired surface this close (mm) to the source surface are moved back onto it.
SNAP_REACH_MM = 1.2
#: Spacing (mm) of the points sampled on the source surface for snapping.
SNAP_STEP_MM = 0.7

_TO_RAS = np.array([-1.0, -1.0, 1.0])


def read_source(paths: Sequence[Path]) -> MeshData:
    """Read and concatenate the mesh files of one concept, in Dorsum's RAS frame.

    Parameters
    ----------
    paths : sequence of Path
        OBJ, GLB/glTF, STL or PLY files in BodyParts3D's frame (mm, +x left, +y posterior).

    Returns
    -------
    MeshData
        Triangles in RAS mm, duplicate vertices merged.

    Raises
    ------
    DorsumError
        Naming the file when one cannot be read or holds no triangles.
    """
    parts = []
    for path in paths:
        try:
            mesh = trimesh.load(str(path), force="mesh", process=False)
        except Exception as exc:  # trimesh raises many types for corrupt files
            raise DorsumError(f"{path}: cannot be read as a mesh ({type(exc).__name__})") from None
        if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
            raise DorsumError(f"{path}: holds no triangles (empty or corrupt mesh)")
        vertices = np.asarray(mesh.vertices, dtype=np.float64)
        if not np.isfinite(vertices).all():
            raise DorsumError(f"{path}: has non-finite vertex coordinates (corrupt mesh)")
        parts.append(trimesh.Trimesh(vertices * _TO_RAS, np.asarray(mesh.faces), process=False))
    merged = trimesh.util.concatenate(parts) if len(parts) > 1 else parts[0]
    merged.merge_vertices()
    return MeshData(np.asarray(merged.vertices, dtype=np.float64), np.asarray(merged.faces, dtype=np.int64))


def concatenate(meshes: Sequence[MeshData]) -> MeshData:
    """One mesh holding all of ``meshes`` (vertex indices shifted)."""
    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
    return MeshData(np.concatenate([m.vertices for m in meshes]),
                    np.concatenate([m.faces + o for m, o in zip(meshes, offsets)]))


def drop_strays(mesh: MeshData, side: str) -> MeshData:
    """Drop loose pieces of a left or right structure that lie across the midline.

    Some source files carry a crumb of the other side (a left quadratus lumborum reaching 45 mm
    into the right); a piece goes when its centre is more than :data:`STRAY_ACROSS_MM` across.
    """
    if side not in ("left", "right"):
        return mesh
    labels = trimesh.graph.connected_component_labels(
        trimesh.Trimesh(mesh.vertices, mesh.faces, process=False).face_adjacency, node_count=len(mesh.faces))
    centres = mesh.vertices[mesh.faces].mean(axis=1)
    sign = 1.0 if side == "right" else -1.0
    counts = np.bincount(labels)
    mean_x = np.bincount(labels, weights=centres[:, 0]) / np.maximum(counts, 1)
    keep_piece = sign * mean_x > -STRAY_ACROSS_MM
    if keep_piece.all() or not keep_piece.any():
        return mesh
    return _subset(mesh, keep_piece[labels])


def keep_upper(mesh: MeshData, height_mm: float) -> MeshData:
    """The triangles of ``mesh`` lying wholly within ``height_mm`` of its top (an open cut)."""
    z = mesh.vertices[:, 2]
    return _subset(mesh, (z[mesh.faces] >= z.max() - height_mm).all(axis=1))


def close_surface(mesh: MeshData, spacing: float = MUSCLE_SPACING_MM, split: str = "") -> MeshData:
    """A closed, outward-wound surface around an open, crumbly one.

    Parameters
    ----------
    mesh : MeshData
        Source surface, RAS mm (holes and loose pieces allowed).
    spacing : float
        Voxel edge, mm; coarsened when the grid would exceed :data:`MAX_VOXELS`.
    split : str
        ``"left"`` or ``"right"``: keep only that side of x = 0 (a source mesh holding both sides);
        an empty mesh comes back when nothing lies on that side.

    Returns
    -------
    MeshData
        Closed surface (every edge shared by two faces), mm; dense (about four triangles per
        voxel face of the surface): :func:`decimate` it.
    """
    extent = np.ptp(mesh.vertices, axis=0) + 8 * spacing
    spacing = max(spacing, float(np.cbrt(np.prod(extent) / MAX_VOXELS)))
    grid = voxels.grid_for(mesh.vertices, spacing, margin=4 * spacing)
    surface = voxels.surface_voxels(mesh.vertices, mesh.faces, grid)
    solid = voxels.peel_band(voxels.solid_from_surface(surface), surface)
    if split:
        x = grid.origin[0] + spacing * np.arange(grid.shape[0])
        solid[(x < 0) if split == "right" else (x >= 0)] = False
    # Cavities left inside (where no slice direction saw the inside enclosed) are filled.
    solid = voxels.fill_cavities(voxels.keep_large(solid, min_voxels=int(np.ceil(8.0 / spacing ** 3))))
    if not solid.any():
        if split:  # the source holds nothing on this side
            return MeshData(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64))
        raise DorsumError("the mesh encloses no volume after repair")
    vertices, faces = voxels.contour(solid, grid)
    return MeshData(vertices, faces)


def snap_to_source(mesh: MeshData, source: MeshData, reach_mm: float = SNAP_REACH_MM,
                   keep_plane_x: bool = False) -> MeshData:
    """Move the vertices of a repaired surface back onto the source surface where it is near.

    The voxel grid smooths away the source's fibre relief; the vertices that lie within
    ``reach_mm`` of the drawn surface get it back, fully at distance 0 and fading out toward
    ``reach_mm``; vertices bridging holes, farther away, stay. Only positions change, so a closed
    surface stays closed.

    Parameters
    ----------
    mesh : MeshData
        Repaired (closed) surface, mm.
    source : MeshData
        The original surface, mm.
    reach_mm : float
        Vertices farther than this from the source do not move.
    keep_plane_x : bool
        Leave vertices within ``reach_mm`` of the plane x = 0 alone (the cut face of a split).
    """
    from scipy.spatial import cKDTree

    samples = voxels.surface_samples(source.vertices, source.faces, SNAP_STEP_MM)
    distance, index = cKDTree(samples).query(mesh.vertices, distance_upper_bound=reach_mm)
    near = np.isfinite(distance)
    if keep_plane_x:
        near &= np.abs(mesh.vertices[:, 0]) > reach_mm
    weight = np.clip(1.0 - distance[near] / reach_mm, 0.0, 1.0)[:, None] ** 0.5
    vertices = mesh.vertices.copy()
    vertices[near] += weight * (samples[index[near]] - vertices[near])
    return MeshData(vertices, mesh.faces, mesh.point_data)


def drop_small_pieces(mesh: MeshData, min_faces: int = MIN_COMPONENT_FACES) -> MeshData:
    """``mesh`` without its connected pieces of fewer than ``min_faces`` faces (never empty)."""
    labels = trimesh.graph.connected_component_labels(
        trimesh.Trimesh(mesh.vertices, mesh.faces, process=False).face_adjacency, node_count=len(mesh.faces))
    counts = np.bincount(labels)
    keep = counts[labels] >= min(min_faces, counts.max())  # a mesh of only small pieces keeps its largest
    return mesh if keep.all() else _subset(mesh, keep)


def decimate(mesh: MeshData, target: int, *, closed: bool = True) -> MeshData:
    """Quadric decimation to about ``target`` triangles, keeping a closed surface closed.

    Fast quadric decimation first; when it leaves a non-manifold edge (two close sheets of the
    surface collapsed onto each other), manifold3d's simplification, which cannot, with its
    tolerance searched for the budget. The input comes back when neither keeps it closed.

    Parameters
    ----------
    mesh : MeshData
        Surface, mm.
    target : int
        Triangle budget.
    closed : bool
        The input is closed and the output must be too.
    """
    if len(mesh.faces) <= target:
        return drop_small_pieces(mesh) if closed else mesh
    import fast_simplification

    for goal in (target, int(0.8 * target), int(1.25 * target)):
        vertices, faces = fast_simplification.simplify(
            mesh.vertices.astype(np.float32), mesh.faces.astype(np.int32), target_count=goal)
        result = _clean(np.asarray(vertices, dtype=np.float64), np.asarray(faces, dtype=np.int64))
        if not closed:
            return result
        result = drop_small_pieces(result)
        if is_closed(result):
            return result
    fallback = _manifold_simplify(mesh, target)
    return fallback if fallback is not None else mesh


def _manifold_simplify(mesh: MeshData, target: int) -> MeshData | None:
    """manifold3d simplification to within 25% of ``target`` triangles, or None."""
    import manifold3d

    solid = manifold3d.Manifold(manifold3d.Mesh(
        vert_properties=mesh.vertices.astype(np.float32), tri_verts=mesh.faces.astype(np.uint32)))
    if solid.status() != manifold3d.Error.NoError:
        return None
    tolerance, best = 0.2, None
    for _ in range(8):
        out = solid.simplify(tolerance).to_mesh()
        n = len(out.tri_verts)
        best = out
        if n <= 1.25 * target:
            break
        tolerance *= float(np.clip(n / target, 1.3, 4.0))
    from viewer.atlas_build.volume import separate_coincident

    faces = np.asarray(best.tri_verts, dtype=np.int64)
    vertices = separate_coincident(np.asarray(best.vert_properties, dtype=np.float64)[:, :3], faces)
    result = drop_small_pieces(MeshData(vertices, faces))
    return result if is_closed(result) else None


def is_closed(mesh: MeshData) -> bool:
    """True when every edge is shared by exactly two consistently wound faces."""
    return bool(trimesh.Trimesh(mesh.vertices, mesh.faces, process=True).is_watertight)


def _clean(vertices: np.ndarray, faces: np.ndarray) -> MeshData:
    tm = trimesh.Trimesh(vertices, faces, process=True)
    tm.update_faces(tm.nondegenerate_faces())
    tm.remove_unreferenced_vertices()
    return MeshData(np.asarray(tm.vertices, dtype=np.float64), np.asarray(tm.faces, dtype=np.int64))


def _subset(mesh: MeshData, keep_faces: np.ndarray) -> MeshData:
    faces = mesh.faces[keep_faces]
    used, inverse = np.unique(faces, return_inverse=True)
    point_data = {name: values[used] for name, values in mesh.point_data.items()}
    return MeshData(mesh.vertices[used], inverse.reshape(-1, 3).astype(np.int64), point_data)
