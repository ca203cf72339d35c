"""Unit tests of the atlas builder's geometry on small synthetic shapes (fast; no rebuild)."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from viewer.atlas_build import build, spine, volume
from viewer.atlas_build.fascicle_muscles import belly_profile, force_radius, resample, snap_ends
from viewer.atlas_build.source import to_atlas_frame

CAPSULE_A = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 100.0]])
CAPSULE_B = np.array([[40.0, 0.0, 0.0], [40.0, 0.0, 100.0]])


def capsule_volume(radius: float, length: float) -> float:
    return np.pi * radius**2 * length + 4.0 / 3.0 * np.pi * radius**3


def test_two_capsules_give_closed_surfaces_of_the_right_volume() -> None:
    mesh = volume.tube_union_surface([CAPSULE_A, CAPSULE_B], [5.0, 5.0], voxel_mm=1.0)
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.volume == pytest.approx(2 * capsule_volume(5.0, 100.0), rel=0.06)
    assert len(mesh.split(only_watertight=False)) == 2


def test_touching_capsules_fuse_into_one_body() -> None:
    crossing = np.array([[-30.0, 0.0, 50.0], [30.0, 0.0, 50.0]])
    mesh = volume.tube_union_surface([CAPSULE_A, crossing], [5.0, 4.0], voxel_mm=1.0)
    assert mesh.is_watertight
    assert len(mesh.split(only_watertight=False)) == 1


def test_tapered_radii_per_vertex() -> None:
    path = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 50.0], [0.0, 0.0, 100.0]])
    mesh = volume.tube_union_surface([path], [np.array([2.0, 8.0, 2.0])], voxel_mm=1.0)
    middle = mesh.vertices[np.abs(mesh.vertices[:, 2] - 50.0) < 2.0]
    end = mesh.vertices[np.abs(mesh.vertices[:, 2] - 5.0) < 2.0]
    assert np.abs(middle[:, 0]).max() > 6.5 > np.abs(end[:, 0]).max()


def test_subtracted_solid_is_carved_out_and_surface_stays_closed() -> None:
    box = trimesh.creation.box(extents=[20.0, 20.0, 20.0])
    box.apply_translation([0.0, 0.0, 50.0])
    mesh = volume.tube_union_surface([CAPSULE_A], [5.0], voxel_mm=1.0, subtract=[box])
    assert mesh.is_watertight
    assert mesh.volume < capsule_volume(5.0, 100.0) - 0.8 * np.pi * 25.0 * 20.0
    inside_box = np.all(np.abs(mesh.vertices - [0.0, 0.0, 50.0]) < 9.0, axis=1)
    assert not inside_box.any()


def test_shadow_keeps_a_structure_behind_a_deeper_one() -> None:
    deep = trimesh.creation.box(extents=[20.0, 10.0, 40.0])
    deep.apply_translation([0.0, -30.0, 50.0])  # posterior to the capsule (smaller y)
    mesh = volume.tube_union_surface([CAPSULE_A], [5.0], voxel_mm=1.0, shadow=[deep])
    assert mesh.is_watertight
    hidden = (np.abs(mesh.vertices[:, 0]) < 8.0) & (np.abs(mesh.vertices[:, 2] - 50.0) < 18.0)
    assert not hidden.any()


def test_occupancy_matches_a_sphere_volume() -> None:
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=10.0)
    grid = volume.grid_around(np.array([[-12.0] * 3, [12.0] * 3]), 0.0, 0.5)
    assert volume.occupancy(grid, sphere).sum() * 0.125 == pytest.approx(sphere.volume, rel=0.02)


def test_cross_section_area_of_cylinder_and_annulus() -> None:
    cylinder = trimesh.creation.cylinder(radius=10.0, height=50.0)
    assert volume.cross_section_area(cylinder, np.zeros(3), np.array([0.0, 0.0, 1.0])) == pytest.approx(
        np.pi * 100.0, rel=0.01
    )
    ring = trimesh.creation.annulus(r_min=5.0, r_max=10.0, height=50.0)
    assert volume.cross_section_area(ring, np.zeros(3), np.array([0.0, 0.0, 1.0])) == pytest.approx(
        np.pi * 75.0, rel=0.02
    )


def test_first_hits_along_y() -> None:
    box = trimesh.creation.box(extents=[10.0, 10.0, 10.0])
    hits = volume.first_hits_along_y(box, np.array([0.1, 20.0]), np.array([0.2, 0.2]))
    assert hits[0] == pytest.approx(-5.0) and np.isinf(hits[1])


def test_simplify_keeps_surfaces_closed() -> None:
    mesh = volume.tube_union_surface([CAPSULE_A], [6.0], voxel_mm=0.8, tolerance_mm=0.0)
    simple = volume.simplify(mesh, 0.3)
    assert simple.is_watertight and len(simple.faces) < len(mesh.faces)
    merged = trimesh.Trimesh(simple.vertices, simple.faces, process=True)
    assert merged.is_watertight


def test_taubin_smoothing_does_not_shrink() -> None:
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=10.0)
    smoothed = trimesh.Trimesh(volume.taubin(sphere.vertices, sphere.faces, 10), sphere.faces)
    assert smoothed.volume == pytest.approx(sphere.volume, rel=0.02)


def straight_spine() -> dict[str, np.ndarray]:
    from viewer.levels import VERTEBRAE

    return {v: np.array([0.0, 0.0, -30.0 * i]) for i, v in enumerate(VERTEBRAE)}


def test_level_coordinate_on_a_straight_spine() -> None:
    centres = straight_spine()
    points = np.array([[0.0, 0.0, -30.0 * 22], [0.0, -80.0, -30.0 * 22.5], [5.0, -40.0, -30.0 * 23.25]])
    assert spine.level_coordinate(points, centres) == pytest.approx([22.0, 22.5, 23.25], abs=1e-4)
    above_and_below = np.array([[0.0, 0.0, 100.0], [0.0, 0.0, -30.0 * 30]])
    assert spine.level_coordinate(above_and_below, centres) == pytest.approx([0.0, 24.0])


def test_atlas_frame_conversion() -> None:
    # Model: +x left, +y posterior, metres, midline at x = -0.025.
    point = to_atlas_frame(np.array([[-0.035, 0.2, 1.1]]))[0]
    assert point == pytest.approx([10.0, -200.0, 1100.0])


def test_fascicle_helpers() -> None:
    path = resample(np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 10.0]]), 3.0)
    assert len(path) == 5 and path[-1, 2] == pytest.approx(10.0)
    profile = belly_profile(7, floor=0.5)
    assert profile[0] == pytest.approx(0.5) and profile[3] == pytest.approx(1.0)
    assert force_radius(np.pi * 0.45 * 16.0) == pytest.approx(4.0)
    from scipy.spatial import cKDTree

    snapped = snap_ends(np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 50.0], [0.0, 0.0, 100.0]]),
                        cKDTree(np.array([[0.0, 10.0, 0.0]])), max_shift=20.0)
    assert snapped[0] == pytest.approx([0.0, 10.0, 0.0]) and snapped[2] == pytest.approx([0.0, 0.0, 100.0])


def test_manifest_writer_quotes_text() -> None:
    text = build._table("[x]", {"a": 'say "hi"', "b": [1.0, 2.5], "c": 3})
    assert text == ['[x]', 'a = "say \\"hi\\""', "b = [1.0, 2.5]", "c = 3", ""]
