"""Multifidus atrophy: what is asked is what is measured on the displayed mesh, and nothing else moves."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
import trimesh

from viewer.atrophy import (
    BED_DISTANCE,
    FAT_COLOUR,
    MAX_AMOUNT,
    AtrophyParams,
    apply_atrophy,
    bony_bed,
    fat_colour,
    level_profile,
)
from viewer.errors import DorsumError
from viewer.levels import LUMBAR_DISCS
from viewer.measure import measure_muscle
from viewer.model import SceneModel

MF = ("multifidus_left", "multifidus_right")


def _loss(result: dict, disc: str, side: str) -> float:
    entry = result["levels"][disc][side]
    return 100.0 * (1.0 - entry["csa_cm2"] / entry["baseline_cm2"])


@pytest.fixture(scope="module")
def measured_right_l4_s1(real_atlas):
    """Measured CSA loss per disc and side for 40% right-sided L4-S1 and the requested amounts."""
    results = {}
    for amount in (10.0, 30.0, 33.0, 47.5, 50.0, 72.0, 80.0):
        model = SceneModel(real_atlas)
        apply_atrophy(model, AtrophyParams(amount, "L4-S1", "right", 20.0))
        results[amount] = measure_muscle(model, "multifidus", LUMBAR_DISCS)
    return results


# -- parameters ---------------------------------------------------------------------------------
def test_params_are_normalised():
    params = AtrophyParams("30", " l4-s1 ", "RIGHT", 20)
    assert (params.amount, params.segments, params.side, params.fat) == (30.0, "L4-S1", "right", 20.0)
    assert params.discs == ("L4-L5", "L5-S1")
    assert params.level_range == (22.0, 24.0)
    assert AtrophyParams().discs == LUMBAR_DISCS


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"amount": -1}, "atrophy: -1 is out of range (allowed: 0 to 80)"),
    ({"amount": 81}, "atrophy: 81 is out of range (allowed: 0 to 80)"),
    ({"amount": float("nan")}, "atrophy: nan is out of range"),
    ({"fat": 101}, "fat: 101 is out of range (allowed: 0 to 100)"),
    ({"side": "front"}, "side: unknown value 'front' (allowed: left, right, both)"),
    ({"segments": "L4-L9"}, "segments: unknown vertebral level 'L9' (known: C1-C7, T1-T12, L1-L5, S1)"),
    ({"segments": "S1-L4"}, "segments: 'S1-L4' runs upwards"),
    ({"segments": "L4"}, "segments: 'L4' is a single vertebra"),
])
def test_bad_params_say_what_is_allowed(kwargs, message):
    with pytest.raises(DorsumError) as info:
        AtrophyParams(**kwargs)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_muscle_names_the_muscles(fixture_atlas):
    with pytest.raises(DorsumError, match=r"muscle: unknown value 'psoas' \(allowed: .*multifidus"):
        apply_atrophy(SceneModel(fixture_atlas), AtrophyParams(10, muscle="psoas"))


def test_profile_is_smooth_and_ends_within_half_a_level():
    levels = np.array([21.0, 21.5, 21.7, 21.8, 22.0, 23.0, 24.0, 24.45])
    profile = level_profile(levels, 22.0, 24.0)
    np.testing.assert_allclose(profile[[0, 1, 7]], 0.0)
    assert 0.0 < profile[2] < profile[3] < 1.0
    np.testing.assert_allclose(profile[[4, 5, 6]], 1.0)


# -- the model (fixture) ------------------------------------------------------------------------
def test_fat_shifts_the_colour_of_the_wasting_side_only(fixture_atlas):
    model = SceneModel(fixture_atlas)
    apply_atrophy(model, AtrophyParams(0, "L4-S1", "right", fat=50))
    assert model.colour("mf_right") == fat_colour(fixture_atlas.structure("mf_right").colour, 50)
    assert model.colour("mf_left") == fixture_atlas.structure("mf_left").colour
    assert fat_colour("#000000", 100) == FAT_COLOUR
    apply_atrophy(model, None)
    assert model.colour("mf_right") == fixture_atlas.structure("mf_right").colour
    assert model.atrophy is None


def test_one_batch_of_events(fixture_atlas):
    model = SceneModel(fixture_atlas)
    colour, atrophy = mock.Mock(), mock.Mock()
    model.events.colour.connect(colour)
    model.events.atrophy.connect(atrophy)
    params = AtrophyParams(0, "L4-S1", "both", fat=30)
    apply_atrophy(model, params)
    colour.assert_called_once()
    assert set(colour.call_args.args[0]) == {"mf_left", "mf_right"}
    atrophy.assert_called_once_with(params)


# -- requested vs measured (real atlas) ---------------------------------------------------------
@pytest.mark.parametrize("amount", [10.0, 30.0, 33.0, 47.5, 50.0, 72.0, 80.0])
def test_measured_loss_is_the_requested_loss(measured_right_l4_s1, amount):
    result = measured_right_l4_s1[amount]
    for disc in ("L4-L5", "L5-S1"):
        assert _loss(result, disc, "right") == pytest.approx(amount, abs=2.0), disc
    for disc in LUMBAR_DISCS:
        assert abs(_loss(result, disc, "left")) < 1.0, f"untargeted left side changed at {disc}"
    for disc in ("L1-L2", "L2-L3", "L3-L4"):
        assert abs(_loss(result, disc, "right")) < 1.0, f"level outside L4-S1 changed at {disc}"


def test_both_sides_and_an_upper_range(real_atlas):
    model = SceneModel(real_atlas)
    apply_atrophy(model, AtrophyParams(50, "L2-L4", "both"))
    result = measure_muscle(model, "multifidus", LUMBAR_DISCS)
    for side in ("left", "right"):
        for disc in ("L2-L3", "L3-L4"):
            assert _loss(result, disc, side) == pytest.approx(50.0, abs=2.0)
        for disc in ("L4-L5", "L5-S1"):
            assert abs(_loss(result, disc, side)) < 1.0


def test_more_atrophy_never_gives_more_area(real_atlas):
    model = SceneModel(real_atlas)
    previous = {disc: np.inf for disc in ("L4-L5", "L5-S1")}
    for amount in np.arange(0.0, MAX_AMOUNT + 0.1, 2.5):
        apply_atrophy(model, AtrophyParams(amount, "L4-S1", "right"))
        result = measure_muscle(model, "multifidus", ("L4-L5", "L5-S1"))
        for disc in previous:
            area = result["levels"][disc]["right"]["csa_cm2"]
            assert area <= previous[disc] + 1e-9, f"{disc} grew at {amount}%"
            previous[disc] = area


def test_zero_is_the_original_geometry_exactly(real_atlas):
    model = SceneModel(real_atlas)
    apply_atrophy(model, AtrophyParams(60, "L4-S1", "both"))
    apply_atrophy(model, AtrophyParams(0, "L4-S1", "both"))
    for sid in MF:
        assert np.array_equal(model.vertices(sid), real_atlas.meshes[sid].vertices)


def test_the_bony_bed_stays_and_the_mesh_stays_whole(real_atlas):
    model = SceneModel(real_atlas)
    apply_atrophy(model, AtrophyParams(MAX_AMOUNT, "L1-S1", "both"))
    for sid in MF:
        original = real_atlas.meshes[sid]
        shown = model.vertices(sid)
        assert shown.shape == original.vertices.shape
        bed = bony_bed(real_atlas, sid)
        on_bone = bed.distance <= BED_DISTANCE
        assert on_bone.sum() > 100
        assert np.linalg.norm(shown - original.vertices, axis=1)[on_bone].max() < 1.0
        assert np.linalg.norm(shown - original.vertices, axis=1).max() > 5.0  # it did waste
        mesh = trimesh.Trimesh(shown, original.faces, process=False)
        assert mesh.is_watertight and mesh.is_winding_consistent
        assert 0 < mesh.volume < trimesh.Trimesh(original.vertices, original.faces, process=False).volume


def test_the_muscle_shrinks_toward_the_bone_not_its_own_centre(real_atlas):
    """The wasted muscle keeps lying on the vertebral arch: its vertices get closer to bone, on average."""
    model = SceneModel(real_atlas)
    apply_atrophy(model, AtrophyParams(50, "L1-S1", "right"))
    sid = "multifidus_right"
    bed = bony_bed(real_atlas, sid)
    moved = np.linalg.norm(model.vertices(sid) - real_atlas.meshes[sid].vertices, axis=1) > 0.5
    from viewer.atrophy import _bones_near, closest_bone_points

    _, after = closest_bone_points(model.vertices(sid)[moved], *_bones_near(real_atlas, sid))
    # Measured: 0.74 before the midline rebuild of the atlas, 0.76 after it (the multifidus now
    # keeps off the midline and the spinous tips, so fewer of its vertices sit right on bone);
    # shrinking toward its own centre would give about 1.
    assert np.median(after) < 0.8 * np.median(bed.distance[moved])


def test_other_muscles_are_untouched(real_atlas):
    model = SceneModel(real_atlas)
    apply_atrophy(model, AtrophyParams(50, "L1-S1", "both", fat=40))
    for structure in real_atlas.structures:
        if structure.muscle != "multifidus":
            assert model.vertices(structure.id) is real_atlas.meshes[structure.id].vertices
            assert model.colour(structure.id) == structure.colour


def test_another_muscle_wastes_by_the_same_model(real_atlas):
    model = SceneModel(real_atlas)
    apply_atrophy(model, AtrophyParams(30, "L1-L3", "right", muscle="longissimus"))
    result = measure_muscle(model, "longissimus", ("L1-L2", "L2-L3"))
    for disc in ("L1-L2", "L2-L3"):
        assert _loss(result, disc, "right") == pytest.approx(30.0, abs=2.0)
        assert abs(_loss(result, disc, "left")) < 1.0
    assert model.vertices("multifidus_right") is real_atlas.meshes["multifidus_right"].vertices


def test_switching_muscle_restores_the_previous_one(real_atlas):
    model = SceneModel(real_atlas)
    apply_atrophy(model, AtrophyParams(30, "L4-S1", "right", fat=30))
    apply_atrophy(model, AtrophyParams(30, "L1-L3", "right", muscle="longissimus"))
    assert model.vertices("multifidus_right") is real_atlas.meshes["multifidus_right"].vertices
    assert model.colour("multifidus_right") == real_atlas.structure("multifidus_right").colour


# -- scene options: dorsum shot -----------------------------------------------------------------
def test_shot_shows_and_records_the_atrophy(fixture_atlas_dir, tmp_path):
    from PIL import Image

    from viewer.cli import main
    from viewer.output import read_png_parameters

    common = ["shot", "--atlas", str(fixture_atlas_dir), "--size", "160x120", "--only", "deep"]
    healthy, fatty = tmp_path / "healthy.png", tmp_path / "fatty.png"
    assert main([*common, "--out", str(healthy)]) == 0
    assert main([*common, "--out", str(fatty), "--fat", "60", "--side", "right", "--segments", "L4-S1"]) == 0
    assert read_png_parameters(fatty)["atrophy"] == {"muscle": "multifidus", "amount": 0.0, "segments": "L4-S1",
                                                     "side": "right", "fat": 60.0}
    assert read_png_parameters(healthy)["atrophy"] is None
    a = np.asarray(Image.open(healthy).convert("RGB")).astype(int)
    b = np.asarray(Image.open(fatty).convert("RGB")).astype(int)
    # Posterior view: the patient's right (the fatty side) is on the right of the picture.
    assert np.abs(a[:, :75] - b[:, :75]).max() == 0
    changed = np.abs(a[:, 85:] - b[:, 85:]).sum(axis=2) > 30
    assert changed.sum() > 200
    assert (b[:, 85:, 0] - a[:, 85:, 0])[changed].mean() > 30  # toward fat yellow: redder, less blue


def test_renderer_updates_points_in_place(fixture_atlas):
    from viewer.render import SceneRenderer, offscreen_plotter, points_of

    model = SceneModel(fixture_atlas)
    plotter = offscreen_plotter((160, 120))
    renderer = SceneRenderer(plotter, model)
    try:
        actor, polydata = renderer.actor("mf_right"), renderer.polydata("mf_right")
        n_points, n_cells = polydata.GetNumberOfPoints(), polydata.GetNumberOfCells()
        apply_atrophy(model, AtrophyParams(20, "L4-S1", "right"))
        assert renderer.actor("mf_right") is actor and renderer.polydata("mf_right") is polydata
        assert (polydata.GetNumberOfPoints(), polydata.GetNumberOfCells()) == (n_points, n_cells)
        np.testing.assert_allclose(points_of(polydata), model.vertices("mf_right"), atol=1e-4)
        assert not np.allclose(points_of(polydata), fixture_atlas.meshes["mf_right"].vertices, atol=0.1)
        np.testing.assert_allclose(points_of(renderer.polydata("mf_left")), fixture_atlas.meshes["mf_left"].vertices,
                                   atol=1e-4)
    finally:
        renderer.close()
        plotter.close()
