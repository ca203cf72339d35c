"""Quality checks of a built atlas: closed muscles, no muscle inside bone, layer order, size.

:func:`measure_atlas` returns the numbers; :func:`check_atlas` turns them into findings (one line
per problem, empty when the atlas passes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import trimesh

from viewer.atlas_build import volume

TRIANGLE_BUDGET = 600_000
MAX_INSIDE_BONE = 0.02
MAX_LAYER_VIOLATIONS = 0.02
MUSCLE_LAYERS = ("superficial", "intermediate", "deep")
RAY_SPACING_MM = 4.0
GRID_MM = 1.5


@dataclass
class AtlasMeasures:
    """Numbers behind :func:`check_atlas`.

    Attributes
    ----------
    triangles : int
        Triangles in all meshes.
    not_watertight : list of str
        Muscle or fascia structures whose mesh is not closed.
    inside_bone : dict of str to float
        Fraction of each muscle's volume that lies inside a closed bone mesh.
    layer_rays : int
        Posterior rays (along +y) that hit at least two muscle layers.
    layer_violations : int
        Of those, rays that meet a deeper layer before a more superficial one.
    """

    triangles: int = 0
    not_watertight: list[str] = field(default_factory=list)
    inside_bone: dict[str, float] = field(default_factory=dict)
    layer_rays: int = 0
    layer_violations: int = 0

    @property
    def layer_violation_fraction(self) -> float:
        """Violating rays / rays hitting two or more layers (0 if there are none)."""
        return self.layer_violations / self.layer_rays if self.layer_rays else 0.0


def _trimesh(vertices: np.ndarray, faces: np.ndarray) -> trimesh.Trimesh:
    return trimesh.Trimesh(np.asarray(vertices, float), np.asarray(faces, np.int64), process=False)


def layer_order(
    meshes_by_layer: Mapping[str, list[trimesh.Trimesh]], spacing: float = RAY_SPACING_MM
) -> tuple[int, int]:
    """Count posterior rays that see muscle layers out of order.

    Rays run along +y (from behind) on a regular xz grid covering every mesh. On each ray, the
    first hit of each layer is compared; a ray violates the order when a deeper layer's first hit
    comes before (smaller y than) a more superficial layer's.

    Parameters
    ----------
    meshes_by_layer : mapping of str to list of trimesh.Trimesh
        Keys among :data:`MUSCLE_LAYERS`.
    spacing : float
        Ray grid spacing, mm.

    Returns
    -------
    rays, violations : int
        Rays hitting two or more layers, and how many of those violate the order.
    """
    all_meshes = [m for ms in meshes_by_layer.values() for m in ms]
    if not all_meshes:
        return 0, 0
    lo = np.min([m.bounds[0] for m in all_meshes], axis=0)
    hi = np.max([m.bounds[1] for m in all_meshes], axis=0)
    gx, gz = np.meshgrid(np.arange(lo[0], hi[0], spacing) + 0.123, np.arange(lo[2], hi[2], spacing) + 0.071, indexing="ij")
    xs, zs = gx.ravel(), gz.ravel()
    layers = [name for name in MUSCLE_LAYERS if meshes_by_layer.get(name)]
    first = np.full((len(layers), len(xs)), np.inf)
    for k, name in enumerate(layers):
        for mesh in meshes_by_layer[name]:
            first[k] = np.minimum(first[k], volume.first_hits_along_y(mesh, xs, zs))
    hit = np.isfinite(first)
    several = hit.sum(axis=0) >= 2
    bad = np.zeros(len(xs), dtype=bool)
    for a in range(len(layers)):
        for b in range(a + 1, len(layers)):
            both = hit[a] & hit[b]
            bad |= both & (first[b] < first[a])
    return int(several.sum()), int((bad & several).sum())


def fraction_inside(muscle: trimesh.Trimesh, bones: list[trimesh.Trimesh], grid_mm: float = GRID_MM) -> float:
    """Fraction of a closed muscle's volume inside any of the given closed bones (voxel estimate)."""
    grid = volume.grid_around(np.asarray(muscle.vertices), 2 * grid_mm, grid_mm)
    inside = volume.occupancy(grid, muscle)
    total = int(inside.sum())
    if total == 0:
        return 0.0
    hi = grid.origin + grid.spacing * (np.array(grid.shape) - 1)
    bone = np.zeros(grid.shape, dtype=bool)
    for b in bones:
        if np.all(b.bounds[0] <= hi) and np.all(b.bounds[1] >= grid.origin):
            bone |= volume.occupancy(grid, b)
    return float((inside & bone).sum()) / total


def measure_atlas(atlas_dir: str | Path) -> AtlasMeasures:
    """Measure a built atlas (see :class:`AtlasMeasures`).

    Parameters
    ----------
    atlas_dir : str or Path
        Folder with ``atlas.toml``.
    """
    from viewer.atlas import load_atlas

    atlas = load_atlas(Path(atlas_dir))
    out = AtlasMeasures()
    meshes: dict[str, trimesh.Trimesh] = {}
    for s in atlas.structures:
        data = atlas.meshes[s.id]
        meshes[s.id] = _trimesh(data.vertices, data.faces)
        out.triangles += len(data.faces)
    closed_bones = [meshes[s.id] for s in atlas.structures if s.kind == "bone" and meshes[s.id].is_watertight]
    by_layer: dict[str, list[trimesh.Trimesh]] = {name: [] for name in MUSCLE_LAYERS}
    for s in atlas.structures:
        if s.kind not in ("muscle", "fascia"):
            continue
        mesh = meshes[s.id]
        if not mesh.is_watertight:
            out.not_watertight.append(s.id)
            continue
        if s.kind == "muscle":
            out.inside_bone[s.id] = fraction_inside(mesh, closed_bones)
            if s.layer in by_layer:
                by_layer[s.layer].append(mesh)
    out.layer_rays, out.layer_violations = layer_order(by_layer)
    return out


def check_atlas(atlas_dir: str | Path) -> list[str]:
    """Findings about a built atlas; an empty list means it passes.

    Checks: every muscle (and fascia) mesh is closed; no muscle has more than 2 % of its volume
    inside a closed bone mesh; seen from behind, superficial muscles come before intermediate
    ones and those before deep ones on at least 98 % of the rays that cross two layers; the
    whole atlas has at most 600 000 triangles.

    Parameters
    ----------
    atlas_dir : str or Path
        Folder with ``atlas.toml``.

    Returns
    -------
    list of str
        One line per problem.
    """
    m = measure_atlas(atlas_dir)
    findings = [f"{sid}: mesh is not watertight" for sid in m.not_watertight]
    findings += [
        f"{sid}: {100 * frac:.1f}% of its volume lies inside bone (allowed {100 * MAX_INSIDE_BONE:.0f}%)"
        for sid, frac in sorted(m.inside_bone.items()) if frac > MAX_INSIDE_BONE
    ]
    if m.layer_violation_fraction > MAX_LAYER_VIOLATIONS:
        findings.append(
            f"layer order: {m.layer_violations} of {m.layer_rays} posterior rays "
            f"({100 * m.layer_violation_fraction:.1f}%) meet a deeper layer first "
            f"(allowed {100 * MAX_LAYER_VIOLATIONS:.0f}%)"
        )
    if m.triangles > TRIANGLE_BUDGET:
        findings.append(f"triangles: {m.triangles} (budget {TRIANGLE_BUDGET})")
    return findings
