"""View sessions: capture, save, load and apply the whole view state as a small TOML file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from viewer.cli import main
from viewer.errors import DorsumError
from viewer.model import SceneModel
from viewer.render import Camera, offscreen_plotter, SceneRenderer
from viewer.session import (
    CameraState,
    apply_session,
    capture_session,
    load_session,
    save_session,
)

CAMERA = Camera((10.0, -900.5, 33.25), (0.0, 1.0, 2.0), (0.0, 0.0, 1.0), 22.5)


def edited_model(atlas) -> SceneModel:
    model = SceneModel(atlas)
    model.set_layer_visible("superficial", False)
    model.set_visible("mf_left", False)
    model.set_opacity("intermediate", 0.35)
    model.set_opacity("bone", 0.8)
    model.set_highlight("column")
    return model


def test_save_and_load_round_trip_exactly(fixture_atlas, tmp_path):
    session = capture_session(edited_model(fixture_atlas), CAMERA, view=None)
    path = save_session(tmp_path / "lecture.toml", session)
    loaded = load_session(path)
    assert loaded == session
    assert loaded.camera.position == (10.0, -900.5, 33.25)
    assert loaded.structures["mf_left"].visible is False
    assert loaded.layers["intermediate"].opacity == 0.35
    # Small: only what differs from the defaults for single structures.
    assert "sheet" not in path.read_text()
    assert len(path.read_text()) < 1200


def test_apply_reproduces_the_model_state(fixture_atlas):
    source = edited_model(fixture_atlas)
    session = capture_session(source, CAMERA)
    target = SceneModel(fixture_atlas)
    target.set_visible("column", False)  # to be undone by the session
    apply_session(session, target)
    assert target.visible_ids() == source.visible_ids() == ("column", "mf_right", "bone")
    assert target.opacity("column") == pytest.approx(0.35)
    assert target.opacity("bone") == pytest.approx(0.8)
    assert target.highlight == "column"
    assert capture_session(target, CAMERA) == session


def test_apply_is_one_event_per_kind(fixture_atlas):
    session = capture_session(edited_model(fixture_atlas))
    target = SceneModel(fixture_atlas)
    calls = []
    target.events.visibility.connect(calls.append)
    apply_session(session, target)
    assert len(calls) == 1


def test_structure_shown_in_hidden_layer_keeps_its_siblings(fixture_atlas):
    source = SceneModel(fixture_atlas)
    source.set_layer_visible("deep", False)  # both multifidus flags stay on, the layer is off
    target = SceneModel(fixture_atlas)
    target.set_visible("mf_left", False)
    apply_session(capture_session(source), target)
    assert not target.layer_visible("deep")
    assert target.structure_visible("mf_left") and target.structure_visible("mf_right")


def test_existing_file_is_not_clobbered(fixture_atlas, tmp_path):
    path = tmp_path / "lecture.toml"
    path.write_text("keep me")
    with pytest.raises(DorsumError, match="file exists"):
        save_session(path, capture_session(SceneModel(fixture_atlas)))
    assert path.read_text() == "keep me"
    save_session(path, capture_session(SceneModel(fixture_atlas)), overwrite=True)
    assert load_session(path).layers["deep"].visible


@pytest.mark.parametrize(("text", "message"), [
    ("format = 1\n[camera\n", "not a valid TOML state file"),
    ("format = 7\n", "this dorsum reads format 1"),
    ("format = 1\ncolour = 'red'\n", "unknown key 'colour'"),
    ("format = 1\n[layers.deep]\nopacity = 2.0\n", "layers.deep.opacity is 2.0, outside 0 to 1"),
    ("format = 1\n[layers.deep]\nvisible = 'yes'\n", "must be true or false"),
    ("format = 1\n[camera]\nposition = [1, 2]\nfocal_point = [0, 0, 0]\nup = [0, 0, 1]\nview_angle = 20\n",
     "camera position must be three numbers"),
    ("format = 1\n[camera]\nview = 'sideways'\nposition = [1, 2, 3]\nfocal_point = [0, 0, 0]\nup = [0, 0, 1]\n"
     "view_angle = 20\n", "camera view 'sideways' is unknown"),
])
def test_bad_files_give_one_line_errors(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(DorsumError, match=message) as info:
        load_session(path)
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)


def test_camera_without_position(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("format = 1\n[camera]\nfocal_point = [0, 0, 0]\nup = [0, 0, 1]\nview_angle = 20\n")
    with pytest.raises(DorsumError, match="camera\\] needs 'position'"):
        load_session(path)


def test_bad_atrophy_in_file_names_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("format = 1\n[atrophy]\namount = 95.0\nsegments = 'L4-S1'\n")
    with pytest.raises(DorsumError, match="bad.toml: not a valid state file: atrophy"):
        load_session(path)


def test_atrophy_round_trips_through_the_file(fixture_atlas, tmp_path):
    from viewer.atrophy import AtrophyParams, apply_atrophy

    model = SceneModel(fixture_atlas)
    apply_atrophy(model, AtrophyParams(amount=15, segments="L4-S1", side="left", fat=30))
    path = save_session(tmp_path / "a.toml", capture_session(model))
    target = SceneModel(fixture_atlas)
    apply_session(load_session(path), target)
    assert target.atrophy == model.atrophy
    assert np.array_equal(target.vertices("mf_left"), model.vertices("mf_left"))
    assert target.colour("mf_left") == model.colour("mf_left")


def test_missing_file(tmp_path):
    with pytest.raises(DorsumError, match="no such state file"):
        load_session(tmp_path / "nothing.toml")


def test_names_from_another_atlas_are_refused_before_any_change(fixture_atlas, tmp_path):
    path = tmp_path / "other.toml"
    path.write_text("format = 1\natlas = 'Other 1'\n[structures.trapezius_left]\nvisible = false\n")
    model = SceneModel(fixture_atlas)
    with pytest.raises(DorsumError, match="trapezius_left"):
        apply_session(load_session(path), model)
    assert len(model.visible_ids()) == len(fixture_atlas.structure_ids)


def test_shot_with_state_renders_the_saved_camera_and_visibility(fixture_atlas_dir, fixture_atlas, tmp_path):
    model = SceneModel(fixture_atlas)
    model.set_layer_visible("superficial", False)
    plotter = offscreen_plotter((320, 240))
    renderer = SceneRenderer(plotter, model)
    renderer.set_view("left")
    state = save_session(tmp_path / "s.toml", capture_session(model, renderer.camera, renderer.view_name))
    expected = renderer.screenshot((320, 240))
    renderer.close()
    plotter.close()

    out = tmp_path / "shot.png"
    assert main(["shot", "--atlas", str(fixture_atlas_dir), "--state", str(state), "--size", "320x240",
                 "--out", str(out)]) == 0
    from PIL import Image

    pixels = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert pixels.shape == expected.shape
    assert np.abs(pixels - expected.astype(int)).max() <= 2
    red = (np.abs(pixels - [200, 30, 30]).sum(axis=2) < 60).mean()
    assert red == 0.0  # the superficial layer stays hidden


def test_shot_with_state_and_view_uses_the_view(fixture_atlas_dir, tmp_path):
    state = tmp_path / "s.toml"
    state.write_text("format = 1\n[camera]\nposition = [0.0, 0.0, 900.0]\nfocal_point = [0.0, 0.0, 0.0]\n"
                     "up = [0.0, 1.0, 0.0]\nview_angle = 20.0\n")
    out = tmp_path / "shot.png"
    assert main(["shot", "--atlas", str(fixture_atlas_dir), "--state", str(state), "--view", "posterior",
                 "--size", "320x240", "--out", str(out)]) == 0
    from viewer.output import read_png_parameters

    assert read_png_parameters(out)["view"] == "posterior"


def test_shot_with_bad_state_is_one_line_exit_2(fixture_atlas_dir, tmp_path):
    state = tmp_path / "s.toml"
    state.write_text("format = 1\n[layers.deep]\nopacity = -1\n")
    result = subprocess.run([sys.executable, "-m", "viewer.cli", "shot", "--atlas", str(fixture_atlas_dir),
                             "--state", str(state), "--out", str(tmp_path / "x.png")],
                            capture_output=True, text=True, cwd=Path(__file__).parent.parent)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "layers.deep.opacity" in result.stderr
    assert not (tmp_path / "x.png").exists()


def test_camera_state_fields_match_render_camera():
    state = CameraState((1.0, 2.0, 3.0), (0.0, 0.0, 0.0), (0.0, 0.0, 1.0), 20.0, view="posterior")
    assert Camera(**state.camera_fields()) == Camera((1.0, 2.0, 3.0), (0.0, 0.0, 0.0), (0.0, 0.0, 1.0), 20.0)


DEGENERATE_CAMERAS = {
    "position is the focal point": ("[10.0, 20.0, 30.0]", "[10.0, 20.0, 30.0]", "[0.0, 0.0, 1.0]",
                                    "is the focal point"),
    "up along the view": ("[0.0, -900.0, 0.0]", "[0.0, 0.0, 0.0]", "[0.0, 1.0, 0.0]", "parallel to the view"),
    "up nearly along the view": ("[0.0, 0.0, 900.0]", "[0.0, 0.0, 0.0]", "[0.0, 0.001, -1.0]", "parallel to the view"),
    "no up": ("[0.0, -900.0, 0.0]", "[0.0, 0.0, 0.0]", "[0.0, 0.0, 0.0]", "camera up is [0, 0, 0]"),
}


@pytest.mark.parametrize("command", ["shot", "view"])
@pytest.mark.parametrize("case", list(DEGENERATE_CAMERAS))
def test_degenerate_camera_is_refused_when_the_state_is_loaded(fixture_atlas_dir, tmp_path, command, case):
    position, focal_point, up, message = DEGENERATE_CAMERAS[case]
    state = tmp_path / "s.toml"
    state.write_text(f"format = 1\n[camera]\nposition = {position}\nfocal_point = {focal_point}\n"
                     f"up = {up}\nview_angle = 20.0\n")
    out = tmp_path / "x.png"
    extra = ["--out", str(out)] if command == "shot" else []
    result = subprocess.run([sys.executable, "-m", "viewer.cli", command, "--atlas", str(fixture_atlas_dir),
                             "--state", str(state), *extra],
                            capture_output=True, text=True, cwd=Path(__file__).parent.parent, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"dorsum {command}: error: {state}: not a valid state file: camera")
    assert message in result.stderr
    assert not out.exists()


def test_a_sound_camera_loads(tmp_path):
    state = tmp_path / "s.toml"
    state.write_text("format = 1\n[camera]\nposition = [0.0, 0.0, 900.0]\nfocal_point = [0.0, 0.0, 0.0]\n"
                     "up = [0.0, 0.01, 1.0]\nview_angle = 20.0\n")
    with pytest.raises(DorsumError, match="parallel to the view"):
        load_session(state)
    state.write_text(state.read_text().replace("[0.0, 0.01, 1.0]", "[0.0, 1.0, 0.1]"))
    assert load_session(state).camera.up == (0.0, 1.0, 0.1)


def test_labels_switch_round_trips_and_shot_labels_like_the_view(fixture_atlas_dir, fixture_atlas, tmp_path):
    from PIL import Image

    model = SceneModel(fixture_atlas)
    model.set_layer_visible("superficial", False)
    state = save_session(tmp_path / "labelled.toml", capture_session(model, CAMERA, labels=True))
    assert "labels = true" in state.read_text()
    assert load_session(state).labels is True
    plain_state = save_session(tmp_path / "plain.toml", capture_session(model, CAMERA))
    assert load_session(plain_state).labels is False and "labels" not in plain_state.read_text()

    def shot(path: Path) -> np.ndarray:
        out = tmp_path / f"{path.stem}.png"
        assert main(["shot", "--atlas", str(fixture_atlas_dir), "--state", str(path), "--size", "480x320",
                     "--out", str(out)]) == 0
        return np.asarray(Image.open(out).convert("RGB")).astype(int)

    labelled, plain = shot(state), shot(plain_state)
    empty = (plain >= 250).all(axis=-1).all(axis=0)  # columns where the plain picture is white
    dark = (labelled.max(axis=-1) < 120) & (np.ptp(labelled, axis=-1) < 20)
    assert dark[:, empty].sum() > 40  # label text beside the body


def test_labels_must_be_true_or_false(tmp_path):
    state = tmp_path / "s.toml"
    state.write_text('format = 1\nlabels = "yes"\n')
    with pytest.raises(DorsumError, match="labels must be true or false"):
        load_session(state)
