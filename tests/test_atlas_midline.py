"""The shipped atlas at the midline: a bare spinous ridge, no muscle crossing, mirror-symmetric
sides, one multifidus column from C7 to the sacrum lying over the rotatores (issue #12 items 8-9,
issue #10 last bullet).

These tests read meshes/; they never rebuild it.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import trimesh
from skimage.draw import polygon as raster_polygon

from viewer import measure
from viewer.atlas import Atlas
from viewer.atlas_build import volume

BILATERAL_DEEP_AND_INTERMEDIATE = ("multifidus", "rotatores", "semispinalis", "spinalis", "longissimus", "iliocostalis")
DISCS = ("L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1")


def _mesh(atlas: Atlas, sid: str) -> trimesh.Trimesh:
    data = atlas.meshes[sid]
    return trimesh.Trimesh(np.asarray(data.vertices, float), np.asarray(data.faces), process=False)


def first_hit_structures(atlas: Atlas, xs: np.ndarray, zs: np.ndarray, hidden_layers=("superficial",)) -> np.ndarray:
    """Structure id first met by rays along +y (from behind) at (x, z); "" where nothing is hit."""
    best = np.full(len(xs), np.inf)
    who = np.array([""] * len(xs), dtype=object)
    for s in atlas.structures:
        if s.layer in hidden_layers:
            continue
        y = volume.first_hits_along_y(_mesh(atlas, s.id), xs, zs)
        nearer = y < best
        best[nearer], who[nearer] = y[nearer], s.id
    return who


def midline_rays(atlas: Atlas) -> np.ndarray:
    """First structure hit on the midline (x = 0) every 2 mm from the S1 to the C7 body centre."""
    zs = np.arange(atlas.spine["S1"][2], atlas.spine["C7"][2], 2.0)
    return first_hit_structures(atlas, np.zeros_like(zs), zs)


def test_midline_rays_from_behind_meet_the_spinous_processes_first(real_atlas: Atlas) -> None:
    """Superficial layer hidden: the spinous ridge is bare between left and right muscles."""
    who = midline_rays(real_atlas)
    on_bone = np.array([w.startswith(("vertebra_", "sacrum")) for w in who])
    muscles = Counter(w for w in who if w and not w.startswith(("vertebra_", "sacrum")))
    assert on_bone.mean() >= 0.9, f"{on_bone.mean():.0%} of midline rays meet bone first; others: {muscles}"
    assert not muscles, f"muscle lies on the spinous ridge: {muscles}"


@pytest.mark.parametrize("muscle", [*BILATERAL_DEEP_AND_INTERMEDIATE, "latissimus_dorsi", "trapezius",
                                    "rhomboid_major", "rhomboid_minor", "levator_scapulae"])
def test_no_muscle_reaches_the_other_side(real_atlas: Atlas, muscle: str) -> None:
    for side, sign in (("left", -1.0), ("right", 1.0)):
        x = sign * np.asarray(real_atlas.meshes[f"{muscle}_{side}"].vertices)[:, 0]
        assert x.min() > 0.0, f"{muscle}_{side} reaches {-x.min():.1f} mm across the midline"


@pytest.mark.parametrize("muscle", [*BILATERAL_DEEP_AND_INTERMEDIATE, "latissimus_dorsi", "trapezius"])
def test_left_is_the_mirror_image_of_right(real_atlas: Atlas, muscle: str) -> None:
    left = np.asarray(real_atlas.meshes[f"{muscle}_left"].vertices)
    right = np.asarray(real_atlas.meshes[f"{muscle}_right"].vertices)
    assert left.shape == right.shape
    np.testing.assert_allclose(left * [-1.0, 1.0, 1.0], right, atol=0.05)


def _section_mask(atlas: Atlas, sid: str, origin: np.ndarray, normal: np.ndarray,
                  lo: np.ndarray, shape: tuple[int, int], h: float) -> np.ndarray:
    """Even-odd raster (h mm pixels) of a muscle's section, in plane coordinates from ``lo``."""
    data = atlas.meshes[sid]
    u, w = volume._plane_basis(normal)
    mask = np.zeros(shape, dtype=bool)
    for loop in measure.section_loops(np.asarray(data.vertices, float), np.asarray(data.faces), origin, normal):
        flat = np.column_stack([(loop - origin) @ u, (loop - origin) @ w])
        rr, cc = raster_polygon((flat[:, 0] - lo[0]) / h, (flat[:, 1] - lo[1]) / h, shape)
        piece = np.zeros(shape, dtype=bool)
        piece[rr, cc] = True
        mask ^= piece
    return mask


def overlap_cm2(atlas: Atlas, a: str, b: str, disc: str, h: float = 0.2) -> float:
    """Area (cm^2) where the sections of two muscles by a disc plane overlap."""
    origin, normal = measure.disc_plane(atlas, disc)
    lo, shape = np.array([-200.0, -200.0]), (2000, 2000)
    both = _section_mask(atlas, a, origin, normal, lo, shape, h) & _section_mask(atlas, b, origin, normal, lo, shape, h)
    return float(both.sum()) * h * h / 100.0


@pytest.mark.parametrize("disc", DISCS)
def test_left_and_right_multifidus_do_not_overlap(real_atlas: Atlas, disc: str) -> None:
    assert overlap_cm2(real_atlas, "multifidus_left", "multifidus_right", disc) == 0.0


def test_overlap_measure_sees_an_overlap(real_atlas: Atlas) -> None:
    """The overlap measure itself: a muscle overlaps itself by its own section area."""
    right = measure.measure_muscle(real_atlas, "multifidus", "L4-L5")["levels"]["L4-L5"]["right"]["csa_cm2"]
    own = overlap_cm2(real_atlas, "multifidus_right", "multifidus_right", "L4-L5")
    assert own == pytest.approx(right, rel=0.03)


def _csa(atlas: Atlas, sid: str, disc: str) -> float:
    origin, normal = measure.disc_plane(atlas, disc)
    data = atlas.meshes[sid]
    area = measure.cross_sectional_area(np.asarray(data.vertices, float), np.asarray(data.faces), origin, normal)
    return area / 100.0


@pytest.mark.parametrize("muscle", ["multifidus", "longissimus", "iliocostalis"])
@pytest.mark.parametrize("disc", DISCS[:4])
def test_left_right_csa_within_healthy_asymmetry(real_atlas: Atlas, muscle: str, disc: str) -> None:
    """Healthy side-to-side CSA difference is under 10 % (every loop of the mesh counts)."""
    left, right = _csa(real_atlas, f"{muscle}_left", disc), _csa(real_atlas, f"{muscle}_right", disc)
    assert right > 0.5
    assert abs(left - right) / right < 0.10, f"{muscle} at {disc}: {left:.2f} / {right:.2f} cm^2"


@pytest.mark.parametrize("muscle", ["multifidus", "longissimus", "iliocostalis", "spinalis", "semispinalis"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_muscle_is_one_piece(real_atlas: Atlas, muscle: str, side: str) -> None:
    pieces = _mesh(real_atlas, f"{muscle}_{side}").split(only_watertight=False)
    assert len(pieces) == 1, f"{muscle}_{side}: {sorted(len(p.faces) for p in pieces)} triangles per piece"


@pytest.mark.parametrize("side", ["left", "right"])
def test_multifidus_runs_without_a_gap_from_c7_to_s1(real_atlas: Atlas, side: str) -> None:
    """Every horizontal plane from the C7 to the S1 body centre cuts the multifidus."""
    mesh = _mesh(real_atlas, f"multifidus_{side}")
    zs = np.arange(real_atlas.spine["S1"][2], real_atlas.spine["C7"][2], 1.0)
    missing = [z for z in zs if not volume.section_loops(mesh, np.array([0.0, 0.0, z]), np.array([0.0, 0.0, 1.0]))]
    assert not missing, f"no multifidus at {len(missing)} heights, e.g. z = {missing[:3]}"


@pytest.mark.parametrize("side", ["left", "right"])
def test_rotatores_lie_deep_to_the_multifidus(real_atlas: Atlas, side: str) -> None:
    """T3-T10, rays from behind that meet both muscles meet the multifidus first."""
    sign = 1.0 if side == "right" else -1.0
    x, z = np.meshgrid(sign * np.arange(1.0, 40.0, 1.0),
                       np.arange(real_atlas.spine["T10"][2], real_atlas.spine["T3"][2], 2.0), indexing="ij")
    x, z = x.ravel(), z.ravel()
    mf = volume.first_hits_along_y(_mesh(real_atlas, f"multifidus_{side}"), x, z)
    rot = volume.first_hits_along_y(_mesh(real_atlas, f"rotatores_{side}"), x, z)
    both = np.isfinite(mf) & np.isfinite(rot)
    assert both.sum() > 50
    assert np.mean(mf[both] < rot[both]) >= 0.95, f"rotatores first on {np.mean(rot[both] < mf[both]):.0%} of rays"

