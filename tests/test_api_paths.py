"""One code path: ``dorsum view``, ``animate`` and ``lesson`` reach the functions the Python API calls."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageSequence
from test_lesson import GOOD, hue_share, run_lesson, write

import viewer as dorsum
import viewer.app
from viewer.api import render_lesson
from viewer.cli import main
from viewer.errors import DorsumError
from viewer.output import read_png_credits, read_png_parameters


def window_recorder(monkeypatch) -> list:
    """Replace the desktop window by a recorder of the scene it would open on."""
    calls = []

    def run_scene(model, **options):
        calls.append(({s.id: (model.is_visible(s.id), model.opacity(s.id)) for s in model.atlas.structures},
                      options))
        return 0

    monkeypatch.setattr(viewer.app, "run_scene", run_scene)
    return calls


def test_dorsum_view_and_show_open_the_same_window_on_the_same_scene(fixture_atlas_dir, monkeypatch):
    calls = window_recorder(monkeypatch)
    assert main(["view", "--atlas", str(fixture_atlas_dir), "--hide", "superficial",
                 "--opacity", "intermediate=0.3", "--view", "left"]) == 0
    scene = dorsum.Scene(atlas=fixture_atlas_dir).hide("superficial").opacity("intermediate", 0.3).set_view("left")
    assert scene.show() == 0  # outside a notebook: the desktop viewer
    assert len(calls) == 2 and calls[0] == calls[1]
    shown, options = calls[0]
    assert shown["sheet"][0] is False and shown["column"] == (True, 0.3) and shown["bone"] == (True, 1.0)
    assert options == {"view": "left", "camera": None}


def test_dorsum_view_with_a_state_keeps_its_camera(fixture_atlas_dir, tmp_path, monkeypatch):
    calls = window_recorder(monkeypatch)
    state = tmp_path / "s.toml"
    state.write_text("format = 1\n[camera]\nposition = [-900.0, 0.0, 0.0]\nfocal_point = [0.0, 0.0, 0.0]\n"
                     "up = [0.0, 0.0, 1.0]\nview_angle = 20.0\n[layers.skeleton]\nvisible = false\nopacity = 1.0\n")
    assert main(["view", "--atlas", str(fixture_atlas_dir), "--state", str(state)]) == 0
    shown, options = calls[0]
    assert shown["bone"][0] is False
    assert options["view"] is None and options["state_path"] == state  # the saved camera, saved back there
    assert options["session"].camera.position == (-900.0, 0.0, 0.0)


def gif_frames(path) -> list[np.ndarray]:
    with Image.open(path) as movie:
        return [np.asarray(frame.convert("RGB")).astype(int) for frame in ImageSequence.Iterator(movie)]


def test_animate_from_python_writes_the_movie_dorsum_animate_writes(fixture_atlas_dir, tmp_path):
    assert main(["animate", "--kind", "peel", "--atlas", str(fixture_atlas_dir), "--out", str(tmp_path / "cli.gif"),
                 "--frames", "4", "--size", "160x120", "--hide", "skeleton", "--quiet"]) == 0
    seen = []
    written = dorsum.Scene(atlas=fixture_atlas_dir).hide("skeleton").animate(
        tmp_path / "api.gif", "peel", frames=4, size=(160, 120), on_frame=seen.append)
    assert written == tmp_path / "api.gif" and seen == [0, 1, 2, 3]
    cli, api = gif_frames(tmp_path / "cli.gif"), gif_frames(tmp_path / "api.gif")
    assert len(api) == 4 and api[0].shape == (120, 160, 3)
    for a, c in zip(api, cli):
        np.testing.assert_array_equal(a, c)
    # The peel: the superficial red is there at first and gone at the end.
    assert hue_share(api[0], "red") > 0.05 and hue_share(api[-1], "red") == 0.0


def test_animate_errors_are_the_command_lines(fixture_atlas_dir, tmp_path, capsys):
    scene = dorsum.Scene(atlas=fixture_atlas_dir)
    with pytest.raises(DorsumError) as raised:
        scene.animate(tmp_path / "a.gif", "atrophy", frames=4, size=(160, 120))
    assert main(["animate", "--kind", "atrophy", "--atlas", str(fixture_atlas_dir), "--out", str(tmp_path / "b.gif"),
                 "--frames", "4", "--size", "160x120", "--quiet"]) == 2
    assert str(raised.value) in capsys.readouterr().err and "--atrophy PERCENT" in str(raised.value)
    with pytest.raises(DorsumError, match="unsupported file type '.avi'"):
        scene.animate(tmp_path / "a.avi")
    with pytest.raises(DorsumError, match="MP4 needs an even width and height"):
        scene.animate(tmp_path / "a.mp4", size=(161, 120))
    assert not list(tmp_path.iterdir())


def test_render_lesson_from_python_writes_what_dorsum_lesson_writes(fixture_atlas_dir, tmp_path):
    lesson = write(tmp_path, GOOD)
    assert run_lesson(fixture_atlas_dir, lesson, tmp_path / "cli") == 0
    seen = []
    written = render_lesson(lesson, tmp_path / "api", atlas=fixture_atlas_dir,
                            on_figure=lambda figure, path, notes: seen.append(path.name))
    assert [p.name for p in written] == seen == ["all.png", "peel.png"]
    for path in written:
        cli = tmp_path / "cli" / path.name
        np.testing.assert_array_equal(np.asarray(Image.open(path)), np.asarray(Image.open(cli)))
        assert read_png_parameters(path) == read_png_parameters(cli)
        assert read_png_credits(path) == read_png_credits(cli) == ["made by the tests"]
    peel = np.asarray(Image.open(tmp_path / "api" / "peel.png"))
    left, right = peel[:, :240], peel[:, 240:]  # panels "Superficial" and "Deep" (only deep and skeleton)
    assert hue_share(left, "red") > 0.02 and hue_share(right, "red") == 0.0 and hue_share(right, "blue") > 0.005


def test_lesson_figures_carry_the_credits_in_any_number_of_processes(fixture_atlas_dir, tmp_path):
    lesson = write(tmp_path, GOOD)
    written = render_lesson(lesson, tmp_path / "two", atlas=fixture_atlas_dir, jobs=2)
    assert [read_png_credits(p) for p in written] == [["made by the tests"]] * 2
    with pytest.raises(DorsumError, match="jobs: 0 is not a whole number from 1 to 16"):
        render_lesson(lesson, tmp_path / "none", atlas=fixture_atlas_dir, jobs=0)
