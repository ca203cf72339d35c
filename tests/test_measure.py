"""Cross-sectional area, outlines, disc planes, volume, and the ``dorsum measure`` command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh

from viewer.atrophy import AtrophyParams
from viewer.cli import main
from viewer.errors import DorsumError
from viewer.measure import (
    cross_sectional_area,
    disc_plane,
    measure_muscle,
    mesh_volume,
    muscle_section_loops,
    section_loops,
    spine_levels,
)
from viewer.model import SceneModel


def _loop_area(loop: np.ndarray, origin: np.ndarray, normal: np.ndarray) -> float:
    p, q = loop - origin, np.roll(loop, -1, axis=0) - origin
    return float(0.5 * np.cross(p, q).sum(axis=0) @ normal)


def test_section_of_a_sphere_is_the_circle_it_should_be():
    sphere = trimesh.creation.icosphere(subdivisions=5, radius=10.0)
    origin, normal = np.array([0.0, 0.0, 6.0]), np.array([0.0, 0.0, 1.0])
    area = cross_sectional_area(sphere.vertices, sphere.faces, origin, normal)
    assert area == pytest.approx(np.pi * (100.0 - 36.0), rel=0.003)


def test_a_hole_is_subtracted_and_loops_add_up_to_the_area():
    ring = trimesh.creation.annulus(r_min=5.0, r_max=10.0, height=20.0, sections=128)
    origin, normal = np.zeros(3), np.array([0.0, 0.0, 1.0])
    area = cross_sectional_area(ring.vertices, ring.faces, origin, normal)
    assert area == pytest.approx(np.pi * 75.0, rel=0.003)
    loops = section_loops(ring.vertices, ring.faces, origin, normal)
    signed = sorted(_loop_area(loop, origin, normal) for loop in loops)
    assert len(loops) == 2
    assert signed[0] < 0 < signed[1]  # hole clockwise, outline counter-clockwise
    assert sum(signed) == pytest.approx(area)


def test_plane_that_misses_gives_zero_and_no_loops():
    box = trimesh.creation.box(extents=(10, 10, 10))
    origin, normal = np.array([0.0, 0.0, 50.0]), np.array([0.0, 0.0, 1.0])
    assert cross_sectional_area(box.vertices, box.faces, origin, normal) == 0.0
    assert section_loops(box.vertices, box.faces, origin, normal) == []


def test_volume_of_a_closed_mesh():
    box = trimesh.creation.box(extents=(10, 20, 30))
    assert mesh_volume(box.vertices, box.faces) == pytest.approx(6000.0)


def test_disc_plane_is_midway_and_along_the_spine(fixture_atlas):
    origin, normal = disc_plane(fixture_atlas, "L4-L5")
    np.testing.assert_allclose(origin, [0.0, 20.0, -10.0])
    np.testing.assert_allclose(normal, [0.0, 0.0, -1.0])
    with pytest.raises(DorsumError, match="no spine landmark for L1"):
        disc_plane(fixture_atlas, "L1-L2")


def test_spine_levels_fallback_follows_the_landmarks(fixture_atlas):
    points = np.array([[18.0, -5.0, 0.0], [18.0, -5.0, -10.0], [0.0, 0.0, -40.0]])
    np.testing.assert_allclose(spine_levels(points, fixture_atlas.spine), [22.0, 22.5, 24.0])


def test_real_disc_plane_matches_the_level_data(real_atlas):
    """Points of the multifidus section at L4-L5 carry level 22.5, as the atlas format promises."""
    mesh = real_atlas.meshes["multifidus_right"]
    origin, normal = disc_plane(real_atlas, "L4-L5")
    distance = (mesh.vertices - origin) @ normal
    near = np.abs(distance) < 1.0
    assert near.sum() > 10
    assert np.abs(mesh.point_data["segment"][near] - 22.5).max() < 0.1


def test_measure_json_contract_on_the_real_atlas(real_atlas):
    result = measure_muscle(real_atlas, "multifidus", ("L4-L5", "L5-S1"))
    assert result["muscle"] == "multifidus"
    assert set(result["levels"]) == {"L4-L5", "L5-S1"}
    for sides in result["levels"].values():
        for side in ("left", "right"):
            entry = sides[side]
            assert entry["csa_cm2"] == entry["baseline_cm2"]
            assert 2.0 < entry["csa_cm2"] < 15.0  # adult multifidus, anatomy.md section 2
    assert result["volume_cm3"]["total"]["volume_cm3"] == pytest.approx(
        result["volume_cm3"]["left"]["volume_cm3"] + result["volume_cm3"]["right"]["volume_cm3"])


def test_section_loops_for_figures_equal_the_measured_area(real_atlas):
    model = SceneModel(real_atlas)
    loops = muscle_section_loops(model, "multifidus", "L4-L5")
    result = measure_muscle(model, "multifidus", "L4-L5")
    origin, normal = disc_plane(real_atlas, "L4-L5")
    for side in ("left", "right"):
        total = sum(_loop_area(loop, origin, normal) for loop in loops[side])
        assert total / 100.0 == pytest.approx(result["levels"]["L4-L5"][side]["csa_cm2"], rel=1e-9)
        # The right multifidus lies to the patient's right (+x), the left to the left.
        centre_x = np.concatenate(loops[side])[:, 0].mean()
        assert (centre_x > 0) == (side == "right")


def test_measure_cli_json(real_atlas, capsys):
    code = main(["measure", "--levels", "L3-L4,L4-L5,L5-S1", "--atrophy", "30", "--segments", "L4-S1",
                 "--side", "right", "--fat", "20", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["muscle"] == "multifidus"
    assert result["atrophy"] == {"muscle": "multifidus", "amount": 30.0, "segments": "L4-S1", "side": "right",
                                 "fat": 20.0}
    assert list(result["levels"]) == ["L3-L4", "L4-L5", "L5-S1"]
    right = result["levels"]["L4-L5"]["right"]
    assert 100 * (1 - right["csa_cm2"] / right["baseline_cm2"]) == pytest.approx(30.0, abs=2.0)
    assert result["levels"]["L4-L5"]["left"]["change_percent"] == 0.0
    assert result["volume_cm3"]["right"]["volume_cm3"] < result["volume_cm3"]["right"]["baseline_cm3"]


def test_measure_cli_table(fixture_atlas_dir, capsys):
    assert main(["measure", "--atlas", str(fixture_atlas_dir), "--levels", "L4-L5"]) == 0
    out = capsys.readouterr().out
    assert "L4-L5    left" in out and "L4-L5    right" in out and "total" in out


@pytest.mark.parametrize(("options", "message"), [
    (["--muscle", "nosuch"], "muscle: unknown value 'nosuch' (allowed: "),
    (["--levels", "L4-L6"], "levels: unknown vertebral level 'L6'"),
    (["--levels", "L4-S1"], "levels: unknown disc level 'L4-S1'"),
    (["--atrophy", "-5"], "atrophy: '-5' is out of range (allowed: 0 to 80)"),
    (["--atrophy", "81"], "atrophy: '81' is out of range (allowed: 0 to 80)"),
    (["--atrophy", "lots"], "atrophy: 'lots' is not a number"),
    (["--fat", "120"], "fat: '120' is out of range (allowed: 0 to 100)"),
    (["--side", "top"], "side: unknown value 'top' (allowed: left, right, both)"),
    (["--segments", "L4-Q1"], "segments: unknown vertebral level 'Q1'"),
    (["--segments", "S1-L4"], "segments: 'S1-L4' runs upwards"),
    (["--segments", "L5"], "segments: 'L5' is a single vertebra"),
])
def test_measure_cli_errors_are_one_line(fixture_atlas_dir, capsys, options, message):
    code = main(["measure", "--atlas", str(fixture_atlas_dir), *options])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("dorsum measure: error: ")
    assert message in err


def test_measure_with_params_leaves_a_given_model_alone(real_atlas):
    model = SceneModel(real_atlas)
    result = measure_muscle(real_atlas, "multifidus", "L5-S1", AtrophyParams(20, "L4-S1", "right"))
    assert result["levels"]["L5-S1"]["right"]["change_percent"] == pytest.approx(-20.0, abs=2.0)
    assert model.atrophy is None
    assert model.vertices("multifidus_right") is real_atlas.meshes["multifidus_right"].vertices


def test_measurement_and_atrophy_load_no_vtk_or_qt():
    import subprocess
    import sys

    code = ("import sys, viewer.measure, viewer.atrophy, viewer.commands.measure; "
            "bad = [m for m in ('vtk', 'vtkmodules', 'pyvista', 'PySide6') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
