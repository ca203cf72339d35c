"""Bone landmarks and the muscles built on them: where they are, that they are closed, and that
each muscle reaches its attachments."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree

pytest.importorskip("mujoco")
pytest.importorskip("myo_sim")
pytest.importorskip("skimage")
pytest.importorskip("manifold3d")

from viewer.atlas_build import landmark_muscles as lmm  # noqa: E402
from viewer.atlas_build import landmarks as lm  # noqa: E402
from viewer.atlas_build.source import load_bones  # noqa: E402
from viewer.atlas_build.volume import grid_around, occupancy  # noqa: E402

#: Largest gap (mm) allowed between a muscle's surface and a landmark it attaches to.
ATTACH_MM = 5.0


@pytest.fixture(scope="module")
def bones() -> dict[str, trimesh.Trimesh]:
    return load_bones()


@pytest.fixture(scope="module")
def marks(bones) -> lmm.Landmarks:
    return lmm.find_landmarks(bones)


@pytest.fixture(scope="module")
def muscles(bones) -> dict[str, trimesh.Trimesh]:
    # No deeper muscles: the landmark muscles must stand on the bones alone.
    return lmm.build_landmark_muscles(bones, {})


def surface_tree(mesh: trimesh.Trimesh) -> cKDTree:
    """Dense surface samples (~0.5 mm apart) for point-to-surface distances without rtree."""
    count = int(mesh.area / 0.25) + 1
    points, _ = trimesh.sample.sample_surface(mesh, count, seed=1)
    return cKDTree(np.vstack([mesh.vertices, points]))


def gap(mesh: trimesh.Trimesh, points: np.ndarray) -> np.ndarray:
    """Distance (mm) from each point to the surface of ``mesh``."""
    return surface_tree(mesh).query(np.atleast_2d(points))[0]


# --------------------------------------------------------------------------- pure functions


def test_spinous_and_transverse_tips_are_extremes():
    v = np.array([[0, 0, 0], [0, -30, 1], [25, -5, 0], [-24, -4, 0], [0, 10, 0]], dtype=float)
    np.testing.assert_array_equal(lm.spinous_tip(v), [0, -30, 1])
    bifid = np.array([[-3, -20, 0], [3, -20, 0], [0, -18, 0], [0, 5, 0]], dtype=float)
    np.testing.assert_allclose(lm.spinous_tip(bifid), [0, -20, 0])
    np.testing.assert_array_equal(lm.transverse_tip(v, "right"), [25, -5, 0])
    np.testing.assert_array_equal(lm.transverse_tip(v, "left"), [-24, -4, 0])
    with pytest.raises(ValueError, match="side"):
        lm.transverse_tip(v, "middle")


def test_cast_rays_hits_the_near_face_of_a_box():
    box = trimesh.creation.box(extents=(10, 10, 10))
    hits = lm.cast_rays(box, np.array([[0.0, -50.0, 0.0], [40.0, -50.0, 0.0]]), np.array([0, 1, 0]))
    np.testing.assert_allclose(hits[0], [0, -5, 0], atol=1e-9)
    assert np.isnan(hits[1]).all()


def test_resample_spaces_points_evenly():
    p = lmm.resample(np.array([[0, 0, 0], [10, 0, 0], [10, 10, 0]], dtype=float), 5)
    np.testing.assert_allclose(np.linalg.norm(np.diff(p, axis=0), axis=1), 5.0)


def test_drape_sheet_stays_outside_the_envelope():
    grid = grid_around(np.array([[-40.0, -40, -40], [40, 40, 40]]), 0.0, 1.0)
    inside = occupancy(grid, trimesh.creation.icosphere(subdivisions=3, radius=20.0))
    env = lmm.envelope_from_mask(grid, inside, closing_mm=2.0)
    origin = np.column_stack([np.linspace(-15, 15, 9), np.full(9, -30.0), np.full(9, -25.0)])
    insertion = origin * [1, 1, -1]
    lift = np.full((9, 12), 2.0)
    sheet = lmm.drape_sheet(origin, insertion, env, lift)
    r = np.linalg.norm(sheet.reshape(-1, 3), axis=1)
    assert r.min() > 20.0  # never inside the ball
    assert np.median(r[(np.abs(sheet[..., 2]) < 5).ravel()]) < 24.0  # but lying on it


def test_thick_sheet_surface_is_a_closed_slab():
    u, v = np.meshgrid(np.linspace(0, 60, 20), np.linspace(0, 40, 14), indexing="ij")
    mid = np.stack([u, np.zeros_like(u), v], axis=-1)
    slab = lmm.thick_sheet_surface(mid, np.full(u.shape, 4.0), voxel_mm=0.8)
    assert slab.is_watertight and slab.is_winding_consistent and slab.volume > 0
    assert slab.volume == pytest.approx(60 * 40 * 4, rel=0.12)
    assert np.ptp(slab.vertices[:, 1]) == pytest.approx(4.0, abs=1.0)


# --------------------------------------------------------------------------- landmarks on the skeleton


def test_spine_landmarks_are_ordered_and_symmetric(marks):
    spine = marks.spine
    assert list(spine) == [*(f"C{i}" for i in range(1, 8)), *(f"T{i}" for i in range(1, 13)),
                           *(f"L{i}" for i in range(1, 6))]
    tips = np.array([v.spinous_tip for v in spine.values()])
    assert np.abs(tips[:, 0]).max() < 3.0  # on the midline
    assert np.all(np.diff(tips[1:, 2]) < 0)  # C2 downward, each tip below the last
    for level, v in spine.items():
        right, left = v.transverse_tip["right"], v.transverse_tip["left"]
        assert right[0] > 15.0 and left[0] < -15.0, level
        assert abs(right[0] + left[0]) < 3.0, level
        for side in lm.SIDES:
            s = lm.side_sign(side)
            # Lamina, pillar and transverse process follow each other outward from the spine.
            assert 0 < s * v.lamina[side][0] < s * v.articular[side][0] < s * v.transverse_root[side][0], level
            assert v.lamina[side][1] > v.spinous_tip[1], level


def test_scapular_landmarks(marks, bones):
    for side in lm.SIDES:
        s = lm.side_sign(side)
        sc = marks.scapula[side]
        z = bones[f"scapula_{side}"].vertices[:, 2]
        assert sc.inferior_angle[2] == pytest.approx(z.min())
        assert sc.superior_angle[2] > sc.spine_root[2] > sc.inferior_angle[2] + 60.0
        # The medial border is the scapula's most medial edge and runs top to bottom.
        assert sc.medial_border[0, 2] > sc.medial_border[-1, 2]
        assert s * sc.medial_border[:, 0].max() < s * bones[f"scapula_{side}"].vertices[:, 0].mean()
        assert s * sc.acromion[0] > s * sc.spine_root[0] + 80.0
        assert sc.normal[1] < 0  # blade faces backward
        # The spine of the scapula climbs from its root toward the acromion.
        assert sc.spine[-1][2] >= sc.spine[0][2]


def test_skull_clavicle_and_humerus_landmarks(marks, bones):
    eop = marks.skull.external_occipital_protuberance
    c1 = bones["vertebra_c1"].vertices
    assert abs(eop[0]) < 1.0 and eop[2] > c1[:, 2].max() + 10.0
    assert eop[1] < c1[:, 1].min()
    for side in lm.SIDES:
        s = lm.side_sign(side)
        snl, inl = marks.skull.superior_nuchal_line[side], marks.skull.inferior_nuchal_line[side]
        assert np.all(s * np.diff(snl[:, 0]) > 0)
        assert np.nanmean(inl[:, 2]) < np.nanmean(snl[:, 2])
        clav = marks.clavicle[side]
        assert s * clav[-1, 0] > s * clav[0, 0]
        assert s * clav[0, 0] > s * bones[f"clavicle_{side}"].vertices[:, 0].mean()
        groove = lm.intertubercular_groove(bones[f"humerus_{side}"], side)
        head = bones[f"humerus_{side}"].vertices
        assert groove[1] > head[:, 1].mean() and groove[2] > head[:, 2].max() - 60.0


# --------------------------------------------------------------------------- muscles


def test_muscles_are_closed_and_within_budget(muscles):
    assert tuple(muscles) == lmm.LANDMARK_MUSCLE_IDS
    for sid, mesh in muscles.items():
        assert mesh.is_watertight and mesh.is_winding_consistent, sid
        assert mesh.volume > 0, sid
        assert 3_000 <= len(mesh.faces) <= 30_000, (sid, len(mesh.faces))
        side = sid.rsplit("_", 1)[1]
        assert np.sign(mesh.centroid[0]) == lm.side_sign(side), sid


def test_left_and_right_are_mirror_images(muscles):
    # The skeleton is only nearly symmetric and draped sheets amplify that a little.
    for name in {sid.rsplit("_", 1)[0] for sid in muscles}:
        left, right = muscles[f"{name}_left"], muscles[f"{name}_right"]
        assert left.volume == pytest.approx(right.volume, rel=0.2), name
        mirrored = left.centroid * [-1, 1, 1]
        assert np.linalg.norm(mirrored - right.centroid) < 6.0, name


def test_muscles_stay_out_of_closed_bones(muscles, bones):
    closed = [m for k, m in bones.items() if k.startswith(("vertebra_", "sacrum")) and m.is_watertight]
    for sid, mesh in muscles.items():
        grid = grid_around(mesh.vertices, 1.0, 1.0)
        inside = occupancy(grid, mesh)
        in_bone = np.zeros_like(inside)
        for bone in closed:
            if np.all(bone.bounds[0] <= mesh.bounds[1]) and np.all(bone.bounds[1] >= mesh.bounds[0]):
                in_bone |= occupancy(grid, bone)
        assert (inside & in_bone).sum() < 0.02 * inside.sum(), sid


def test_rhomboids_reach_spines_and_medial_border(muscles, marks):
    for side in lm.SIDES:
        sc = marks.scapula[side]
        major = muscles[f"rhomboid_major_{side}"]
        tips = np.array([marks.spine[f"T{i}"].spinous_tip for i in range(2, 6)])
        assert gap(major, tips).max() < ATTACH_MM
        i_root = int(np.argmin(np.linalg.norm(sc.medial_border - sc.spine_root, axis=1)))
        lower_border = lmm.resample(sc.medial_border[i_root:], 12)[2:]
        assert gap(major, lower_border).max() < ATTACH_MM
        minor = muscles[f"rhomboid_minor_{side}"]
        assert gap(minor, np.array([marks.spine[lv].spinous_tip for lv in ("C7", "T1")])).max() < ATTACH_MM
        assert gap(minor, sc.spine_root).max() < 12.0
        # Fibres run inferolaterally: the lower origin is the further from the spine root.
        assert major.bounds[0][2] < tips[:, 2].min()


def test_levator_scapulae_joins_upper_cervical_transverse_processes_to_superior_angle(muscles, marks):
    for side in lm.SIDES:
        mesh = muscles[f"levator_scapulae_{side}"]
        tps = np.array([marks.spine[f"C{i}"].transverse_tip[side] for i in range(1, 5)])
        assert gap(mesh, tps).max() < 7.0
        assert gap(mesh, marks.scapula[side].superior_angle)[0] < 8.0


def test_trapezius_spans_occiput_spines_and_shoulder(muscles, marks):
    for side in lm.SIDES:
        mesh = muscles[f"trapezius_{side}"]
        sc = marks.scapula[side]
        origin = np.array([marks.skull.external_occipital_protuberance,
                           *(marks.spine[lv].spinous_tip for lv in ("C7", "T3", "T7", "T12"))])
        assert gap(mesh, origin).max() < 6.0
        assert gap(mesh, np.array([sc.acromion, sc.spine_root, marks.clavicle[side][-1]])).max() < 8.0
        # A sheet, not a rod: thin compared with its extent.
        assert mesh.volume / mesh.area * 2 < 8.0


def test_deep_muscles_sit_beside_the_spine(muscles, marks):
    sp = marks.spine
    for side in lm.SIDES:
        s = lm.side_sign(side)
        spinalis = muscles[f"spinalis_{side}"]
        assert gap(spinalis, np.array([sp[lv].spinous_tip for lv in ("T2", "T8", "T12", "L2")])).max() < 9.0
        assert s * spinalis.centroid[0] < 20.0
        semi = muscles[f"semispinalis_{side}"]
        assert semi.bounds[1][2] > np.nanmin(marks.skull.inferior_nuchal_line[side][:, 2])  # reaches the occiput
        assert semi.bounds[0][2] > sp["T11"].spinous_tip[2]  # no lumbar part
        rot = muscles[f"rotatores_{side}"]
        laminae = np.array([sp[f"T{i}"].lamina[side] for i in range(2, 12)])
        assert gap(rot, laminae).max() < 5.0


def test_sheet_builder_is_deterministic(bones, marks):
    grid = lmm.envelope_grid()
    env = lmm.envelope_from_mask(grid, lmm.union_mask(grid, list(bones.values())), 10.0)
    a = lmm.build_rhomboid(marks, "right", "minor", env)
    b = lmm.build_rhomboid(marks, "right", "minor", env)
    assert np.array_equal(a.vertices, b.vertices) and np.array_equal(a.faces, b.faces)
