"""The committed atlas (meshes/): structures, closed muscles, level data, size, layer order, CSA.

These tests read the shipped atlas; they never rebuild it.
"""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from viewer.atlas import Atlas, default_atlas_dir
from viewer.atlas_build import check, volume
from viewer.levels import VERTEBRAE

BONES = (
    "skull", *(f"vertebra_c{i}" for i in range(1, 8)), *(f"vertebra_t{i}" for i in range(1, 13)),
    *(f"vertebra_l{i}" for i in range(1, 6)), "sacrum", "rib_cage",
    *(f"{b}_{s}" for b in ("scapula", "clavicle", "humerus") for s in ("left", "right")),
)
MUSCLE_LAYERS = {
    "trapezius": "superficial", "latissimus_dorsi": "superficial", "rhomboid_major": "superficial",
    "rhomboid_minor": "superficial", "levator_scapulae": "superficial",
    "iliocostalis": "intermediate", "longissimus": "intermediate", "spinalis": "intermediate",
    "semispinalis": "deep", "multifidus": "deep", "rotatores": "deep",
}
FASCICLE_MUSCLES = ("multifidus", "iliocostalis", "longissimus", "latissimus_dorsi")

#: Published per-side CSA ranges (cm^2), see docs/atlas.md. Multifidus: healthy adults at L4-L5
#: about 6-9 and at L5-S1 about 7-11 (Stokes 2005, Danneels 2000, Niemelainen 2011, Fortin).
#: Erector spinae at L3-L4: Fortin et al. MRI 20.0 +- 4.4, taken as mean +- 1.5 SD.
CSA_RANGES = {
    ("multifidus", "L4-L5"): (6.0, 9.0),
    ("multifidus", "L5-S1"): (7.0, 11.0),
    (("iliocostalis", "longissimus"), "L3-L4"): (13.4, 26.6),
}


def _mesh(atlas: Atlas, sid: str) -> trimesh.Trimesh:
    data = atlas.meshes[sid]
    return trimesh.Trimesh(np.asarray(data.vertices, float), np.asarray(data.faces), process=False)


def _disc_plane(atlas: Atlas, disc: str) -> tuple[np.ndarray, np.ndarray]:
    upper, lower = disc.split("-")
    a, b = np.asarray(atlas.spine[upper], float), np.asarray(atlas.spine[lower], float)
    return 0.5 * (a + b), (b - a) / np.linalg.norm(b - a)


def csa_cm2(atlas: Atlas, muscles: tuple[str, ...], side: str, disc: str) -> float:
    """CSA of muscles on one side at a disc plane: trimesh section through the midpoint of the two
    body centres, perpendicular to the local spine axis; loops on that side within 16 cm."""
    origin, normal = _disc_plane(atlas, disc)
    sign = 1.0 if side == "right" else -1.0

    def keep(centroid: np.ndarray) -> bool:
        return bool(sign * centroid[0] > 0 and np.linalg.norm(centroid - origin) < 160.0)

    total = sum(volume.cross_section_area(_mesh(atlas, f"{m}_{side}"), origin, normal, keep) for m in muscles)
    return total / 100.0


def test_every_required_structure_is_present(real_atlas: Atlas) -> None:
    ids = set(real_atlas.structure_ids)
    missing = [b for b in BONES if b not in ids]
    if "pelvis" not in ids:
        missing += [b for b in ("hip_bone_left", "hip_bone_right") if b not in ids]
    missing += [f"{m}_{s}" for m in FASCICLE_MUSCLES for s in ("left", "right") if f"{m}_{s}" not in ids]
    assert not missing


@pytest.mark.parametrize("muscle", sorted(MUSCLE_LAYERS))
def test_muscles_have_their_layer_and_side(real_atlas: Atlas, muscle: str) -> None:
    structures = real_atlas.structures_of_muscle(muscle)
    if muscle not in FASCICLE_MUSCLES and not structures:
        pytest.skip(f"{muscle} comes from the landmark builder and is not in this atlas")
    assert sorted(s.side for s in structures) == ["left", "right"]
    assert {s.layer for s in structures} == {MUSCLE_LAYERS[muscle]}
    assert all(s.kind == "muscle" and s.teaching.origin and s.teaching.insertion for s in structures)


def test_bones_are_in_the_skeleton_layer(real_atlas: Atlas) -> None:
    bones = [s for s in real_atlas.structures if s.kind == "bone"]
    assert bones and all(s.layer == "skeleton" for s in bones)


def test_muscles_and_fasciae_are_closed(real_atlas: Atlas) -> None:
    open_ = [
        s.id for s in real_atlas.structures
        if s.kind in ("muscle", "fascia") and not _mesh(real_atlas, s.id).is_watertight
    ]
    assert not open_


def test_closed_after_merging_equal_vertices(real_atlas: Atlas) -> None:
    """Readers that merge coincident vertices (trimesh's default) still get closed muscles."""
    for s in real_atlas.structures:
        if s.kind == "muscle":
            data = real_atlas.meshes[s.id]
            assert trimesh.Trimesh(np.asarray(data.vertices, float), data.faces, process=True).is_watertight, s.id


def test_muscles_are_wound_outward(real_atlas: Atlas) -> None:
    inward = [s.id for s in real_atlas.structures if s.kind == "muscle" and _mesh(real_atlas, s.id).volume <= 0]
    assert not inward


@pytest.mark.parametrize("side, code", [("left", 0), ("right", 1)])
def test_multifidus_level_data_covers_l1_to_s1(real_atlas: Atlas, side: str, code: int) -> None:
    data = real_atlas.meshes[f"multifidus_{side}"]
    segment, side_data = data.point_data["segment"], data.point_data["side"]
    assert segment.dtype == np.float32 and side_data.dtype == np.int32
    assert len(segment) == len(data.vertices)
    assert np.all(side_data == code)
    l1, s1 = VERTEBRAE.index("L1"), VERTEBRAE.index("S1")
    assert segment.min() <= l1 + 0.3 and segment.max() >= s1 - 0.2
    # Every lumbar level is populated.
    for level in range(l1, s1 + 1):
        assert np.any(np.abs(segment - level) < 0.5)


def test_multifidus_segment_follows_the_spine(real_atlas: Atlas) -> None:
    """Vertices on the L4-L5 disc plane carry 22.5; the level rises caudally."""
    data = real_atlas.meshes["multifidus_right"]
    origin, normal = _disc_plane(real_atlas, "L4-L5")
    distance = (np.asarray(data.vertices) - origin) @ normal
    near = np.abs(distance) < 1.0
    assert near.sum() > 10
    assert np.allclose(data.point_data["segment"][near], 22.5, atol=0.05)
    order = np.argsort(data.vertices[:, 2])
    z_low, z_high = order[: len(order) // 10], order[-len(order) // 10 :]
    assert data.point_data["segment"][z_low].mean() > data.point_data["segment"][z_high].mean()


def test_spine_landmarks_run_cranial_to_caudal(real_atlas: Atlas) -> None:
    assert list(real_atlas.spine) == list(VERTEBRAE)
    z = np.array([real_atlas.spine[v][2] for v in VERTEBRAE])
    assert np.all(np.diff(z) < 0)
    x = np.array([real_atlas.spine[v][0] for v in VERTEBRAE])
    assert np.all(np.abs(x) < 3.0)


def test_triangle_budget(real_atlas: Atlas) -> None:
    total = sum(len(real_atlas.meshes[s.id].faces) for s in real_atlas.structures)
    assert total <= check.TRIANGLE_BUDGET


def test_check_atlas_has_no_findings() -> None:
    """Closed muscles, <= 2 % of any muscle inside bone, layer order from behind, budget."""
    assert check.check_atlas(default_atlas_dir()) == []


def test_layer_order_seen_from_behind() -> None:
    measures = check.measure_atlas(default_atlas_dir())
    assert measures.layer_rays > 1000
    assert measures.layer_violation_fraction <= check.MAX_LAYER_VIOLATIONS
    assert max(measures.inside_bone.values()) <= check.MAX_INSIDE_BONE


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("muscles, disc", sorted(CSA_RANGES, key=str))
def test_cross_sectional_areas_match_published_ranges(
    real_atlas: Atlas, muscles: str | tuple[str, ...], disc: str, side: str
) -> None:
    names = (muscles,) if isinstance(muscles, str) else muscles
    low, high = CSA_RANGES[(muscles, disc)]
    area = csa_cm2(real_atlas, names, side, disc)
    assert low <= area <= high, f"{'+'.join(names)} {side} at {disc}: {area:.2f} cm^2"


def test_csa_is_left_right_symmetric(real_atlas: Atlas) -> None:
    left = csa_cm2(real_atlas, ("multifidus",), "left", "L4-L5")
    right = csa_cm2(real_atlas, ("multifidus",), "right", "L4-L5")
    assert abs(left - right) / right < 0.10
