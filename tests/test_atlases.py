"""The atlas registry: installed atlases by name, the default (`dorsum atlas list|use`, `--atlas NAME`),
and names written for one atlas that work on another (`longissimus_left` on a split longissimus)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from viewer.atlas import default_atlas_dir, load_atlas
from viewer.atlases import atlases_dir, check_atlas_name, config_path, resolve_atlas
from viewer.cli import main
from viewer.errors import DorsumError
from viewer.model import SceneModel
from viewer.output import read_png_parameters
from viewer.session import StructureState, apply_session, capture_session, load_session, save_session

DATA = os.environ  # read at call time: the autouse fixture points XDG_* at a fresh folder per test


def install(source: Path, name: str) -> Path:
    """Put a copy of the atlas ``source`` where `dorsum atlas import` would install ``name``."""
    target = atlases_dir() / name
    shutil.copytree(source, target)
    return target


def split_atlas(root: Path, fixture_atlas_dir: Path) -> Path:
    """The fixture atlas with its left multifidus split into two parts, as BodyParts3D splits muscles."""
    shutil.copytree(fixture_atlas_dir, root)
    text = (root / "atlas.toml").read_text()
    text = text.replace('name = "Fixture"', 'name = "Split fixture"')
    left = text[text.index('[[structures]]\nid = "mf_left"'):text.index('[[structures]]\nid = "bone"')]
    upper = left.replace('id = "mf_left"', 'id = "multifidus_upper_left"')
    lower = left.replace('id = "mf_left"', 'id = "multifidus_lower_left"').replace("mf_left.ply", "mf_lower.ply")
    shutil.copy(root / "mf_left.ply", root / "mf_lower.ply")
    (root / "atlas.toml").write_text(text.replace(left, upper + "\n" + lower))
    return root


def test_user_folders_follow_xdg(tmp_path, _user_folders):
    assert atlases_dir() == Path(DATA["XDG_DATA_HOME"]) / "dorsum" / "atlases"
    assert config_path().parent == Path(DATA["XDG_CONFIG_HOME"]) / "dorsum"


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "builtin", "BuiltIn", "x" * 65, "a b", "trailing."])
def test_unsafe_or_reserved_names_are_refused(name):
    with pytest.raises(DorsumError):
        check_atlas_name(name)


def test_good_names_pass():
    assert check_atlas_name("bodyparts3d") == "bodyparts3d"
    assert check_atlas_name("bp3d-4.0_99") == "bp3d-4.0_99"


def test_resolve_none_name_and_folder(fixture_atlas_dir, tmp_path):
    assert resolve_atlas(None) == default_atlas_dir()
    assert resolve_atlas("builtin") == default_atlas_dir()
    folder = install(fixture_atlas_dir, "fx")
    assert resolve_atlas("fx") == folder
    assert resolve_atlas(str(fixture_atlas_dir)) == fixture_atlas_dir
    with pytest.raises(DorsumError, match=r"unknown atlas 'nope' \(installed: builtin, fx;"):
        resolve_atlas("nope")


def test_list_json_shape_and_use_round_trip(fixture_atlas_dir, capsys):
    install(fixture_atlas_dir, "fx")
    assert main(["atlas", "list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["default"] == "builtin"
    assert [a["name"] for a in data["atlases"]] == ["builtin", "fx"]
    fx = data["atlases"][1]
    assert fx == {"name": "fx", "path": str(atlases_dir() / "fx"), "builtin": False, "default": False,
                  "title": "Fixture", "version": "0.1", "structures": 5, "sources": ["tests"]}
    assert data["atlases"][0]["builtin"] is True and data["atlases"][0]["default"] is True

    assert main(["atlas", "use", "fx"]) == 0
    assert "default atlas: fx" in capsys.readouterr().out
    assert main(["atlas", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("  builtin") and lines[1].startswith("* fx ") and "5 structures" in lines[1]
    # Every command now shows the imported atlas without --atlas...
    assert main(["info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["atlas"]["name"] == "Fixture"
    # ...until `atlas use builtin` returns to the shipped one.
    assert main(["atlas", "use", "builtin"]) == 0
    capsys.readouterr()
    assert main(["info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["atlas"]["root"] == str(default_atlas_dir().resolve())


def test_use_unknown_name_is_one_line_and_changes_nothing(fixture_atlas_dir, capsys):
    install(fixture_atlas_dir, "fx")
    assert main(["atlas", "use", "missing"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("dorsum atlas: error: unknown atlas 'missing' (installed: builtin, fx;")
    assert not config_path().exists()


def test_default_atlas_that_was_deleted_says_how_to_fix(fixture_atlas_dir, capsys):
    folder = install(fixture_atlas_dir, "fx")
    assert main(["atlas", "use", "fx"]) == 0
    shutil.rmtree(folder)
    capsys.readouterr()
    assert main(["info"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the default atlas 'fx' is not installed any more" in err
    assert "dorsum atlas use" in err


def test_every_command_takes_atlas_name(fixture_atlas_dir, tmp_path, capsys):
    install(fixture_atlas_dir, "fx")
    assert main(["info", "--atlas", "fx", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["atlas"]["name"] == "Fixture"
    assert main(["atlas", "check", "--atlas", "fx"]) == 0
    assert "atlas check: passed" in capsys.readouterr().out
    assert main(["measure", "--atlas", "fx", "--levels", "L4-L5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)
    out = tmp_path / "fx.png"
    assert main(["shot", "--atlas", "fx", "--out", str(out), "--size", "200x150"]) == 0
    assert read_png_parameters(out)["atlas"] == "Fixture 0.1"
    assert main(["export", "--atlas", "fx", "--out", str(tmp_path / "fx.glb")]) == 0
    assert (tmp_path / "fx.glb").stat().st_size > 1000
    assert main(["info", "--atlas", "nope"]) == 2
    assert "unknown atlas 'nope' (installed: builtin, fx;" in capsys.readouterr().err


def test_muscle_side_names_every_part_of_a_split_muscle(fixture_atlas_dir, tmp_path):
    model = SceneModel(load_atlas(split_atlas(tmp_path / "split", fixture_atlas_dir)))
    assert model.resolve("multifidus_left") == ("multifidus_upper_left", "multifidus_lower_left")
    assert model.resolve("multifidus_right") == ("mf_right",)
    model.set_visible("multifidus_left", False)
    assert not model.is_visible("multifidus_upper_left") and not model.is_visible("multifidus_lower_left")
    assert model.is_visible("mf_right")
    with pytest.raises(DorsumError, match="unknown layer or structure 'multifidus_middle'"):
        model.resolve("multifidus_middle")
    assert model.resolve("deep_group_right") == ("mf_right",)  # <group>_<side>
    with pytest.raises(DorsumError):
        model.resolve("sheet_left")  # sheet is a midline muscle: nothing on the left


def test_state_and_shot_options_written_for_one_atlas_run_on_the_split_one(fixture_atlas_dir, tmp_path, capsys):
    # A state file saved on the fixture atlas hides mf_left and selects it: the split atlas has no
    # mf_left, but `multifidus_left` (what the built-in atlas calls its whole muscle) must work.
    source = SceneModel(load_atlas(fixture_atlas_dir))
    split = split_atlas(tmp_path / "split", fixture_atlas_dir)
    path = tmp_path / "view.toml"
    session = capture_session(source)
    session = dataclasses.replace(session, structures={"multifidus_left": StructureState(visible=False)},
                                  highlight="multifidus_left")
    save_session(path, session)
    target = SceneModel(load_atlas(split))
    apply_session(load_session(path), target)
    assert not target.is_visible("multifidus_upper_left") and not target.is_visible("multifidus_lower_left")
    assert target.is_visible("mf_right") and target.highlight == "multifidus_upper_left"
    out = tmp_path / "split.png"
    assert main(["shot", "--atlas", str(split), "--state", str(path), "--hide", "multifidus_right",
                 "--out", str(out), "--size", "160x120"]) == 0


def test_lesson_names_resolve_muscle_side(fixture_atlas_dir, tmp_path):
    from viewer.figures.lesson import parse_lesson

    atlas = load_atlas(split_atlas(tmp_path / "split", fixture_atlas_dir))
    lesson = parse_lesson({"figures": [{"output": "a.png", "only": ["multifidus_left"],
                                        "opacity": {"multifidus_left": 0.5}}]}, atlas)
    assert lesson.figures[0].panels[0].scene.only == ("multifidus_left",)
    with pytest.raises(DorsumError, match="unknown layer or structure 'longissimus_left'"):
        parse_lesson({"figures": [{"output": "a.png", "only": ["longissimus_left"]}]}, atlas)


def test_state_file_reopens_on_the_atlas_it_was_saved_with(fixture_atlas_dir, tmp_path, capsys):
    # Saved on an imported atlas (not the default): `--state` alone finds that atlas again.
    install(fixture_atlas_dir, "fx")
    path = tmp_path / "view.toml"
    session = capture_session(SceneModel(load_atlas(atlases_dir() / "fx")))
    save_session(path, session)
    out = tmp_path / "state.png"
    assert main(["shot", "--state", str(path), "--out", str(out), "--size", "160x120"]) == 0
    assert read_png_parameters(out)["atlas"] == "Fixture 0.1"


# -- attribution travels with the pictures -----------------------------------------------------
BP_CREDIT = ("BodyParts3D, © The Database Center for Life Science licensed under CC Attribution-Share Alike "
             "2.1 Japan")


def cc_atlas(root: Path, fixture_atlas_dir: Path) -> Path:
    """The fixture atlas with a second data source under a Creative Commons licence."""
    shutil.copytree(fixture_atlas_dir, root)
    text = (root / "atlas.toml").read_text()
    source = f'[[atlas.sources]]\nname = "BodyParts3D"\nlicence = "CC-BY-SA-2.1-JP"\nattribution = "{BP_CREDIT}"\n'
    (root / "atlas.toml").write_text(text.replace("[[layers]]", source + "\n[[layers]]", 1))
    return root


def lesson_file(tmp_path: Path, credit: str = "") -> Path:
    path = tmp_path / f"lesson{credit.replace(' ', '')}.toml"
    path.write_text(f'[lesson]\nsize = "480x360"\n{credit}\n[[figures]]\noutput = "a.png"\nview = "posterior"\n')
    return path


def bottom_band_ink(path: Path, rows: int = 24) -> int:
    from PIL import Image

    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB")).astype(int)
    band = pixels[-rows:]
    grey_ink = (band.max(axis=2) < 170) & (band.max(axis=2) - band.min(axis=2) < 16)  # text, not red muscle
    return int(grey_ink.sum())


def test_lesson_figures_print_the_cc_credit_unless_turned_off(fixture_atlas_dir, tmp_path, capsys):
    from viewer.output import read_png_credits

    atlas = cc_atlas(tmp_path / "cc", fixture_atlas_dir)
    assert main(["lesson", str(lesson_file(tmp_path)), "--out", str(tmp_path / "on"), "--atlas", str(atlas),
                 "--quiet"]) == 0
    assert main(["lesson", str(lesson_file(tmp_path, "credit = false")), "--out", str(tmp_path / "off"),
                 "--atlas", str(atlas), "--quiet"]) == 0
    assert main(["lesson", str(lesson_file(tmp_path)), "--out", str(tmp_path / "plain"),
                 "--atlas", str(fixture_atlas_dir), "--quiet"]) == 0
    on, off, plain = (tmp_path / d / "a.png" for d in ("on", "off", "plain"))
    # Small dark text along the bottom edge only when the atlas has CC data and the lesson allows it.
    assert bottom_band_ink(on) > 40
    assert bottom_band_ink(off) == 0 and bottom_band_ink(plain) == 0
    # The metadata always carries every source's credit.
    assert read_png_credits(on) == ["made by the tests", BP_CREDIT]
    assert read_png_credits(off) == ["made by the tests", BP_CREDIT]
    assert read_png_credits(plain) == ["made by the tests"]
    assert read_png_parameters(off)["credit"] is False


def test_shot_and_animation_carry_the_credit(fixture_atlas_dir, tmp_path):
    from PIL import Image

    from viewer.output import read_png_credits

    atlas = cc_atlas(tmp_path / "cc", fixture_atlas_dir)
    shot = tmp_path / "s.png"
    assert main(["shot", "--atlas", str(atlas), "--out", str(shot), "--size", "200x150"]) == 0
    assert read_png_credits(shot) == ["made by the tests", BP_CREDIT]
    gif = tmp_path / "t.gif"
    assert main(["animate", "--kind", "turntable", "--frames", "2", "--size", "120x90", "--atlas", str(atlas),
                 "--out", str(gif), "--quiet"]) == 0
    with Image.open(gif) as image:
        assert BP_CREDIT.encode("utf-8") in image.info["comment"]


def test_lesson_credit_must_be_true_or_false(fixture_atlas_dir, tmp_path, capsys):
    assert main(["lesson", str(lesson_file(tmp_path, 'credit = "no"')), "--out", str(tmp_path / "x"),
                 "--atlas", str(fixture_atlas_dir)]) == 2
    assert "lesson.credit: 'no' is not true or false" in capsys.readouterr().err


def test_remove_deletes_an_imported_atlas_and_resets_the_default(fixture_atlas_dir, capsys):
    folder = install(fixture_atlas_dir, "mine")
    assert main(["atlas", "use", "mine"]) == 0
    assert main(["atlas", "remove", "mine", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "removed atlas 'mine'" in out and "built-in one again" in out
    assert not folder.exists() and not any(atlases_dir().iterdir())  # no hidden leftovers either
    assert main(["atlas", "list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["default"] == "builtin" and [a["name"] for a in listing["atlases"]] == ["builtin"]


@pytest.mark.parametrize("argv,message", [
    (["atlas", "remove", "builtin", "--yes"], "the built-in atlas cannot be removed"),
    (["atlas", "remove", "nothere", "--yes"], "unknown atlas 'nothere'"),
    (["atlas", "remove", "mine"], "add --yes to confirm"),
])
def test_remove_refusals_are_one_line_and_delete_nothing(fixture_atlas_dir, capsys, argv, message):
    folder = install(fixture_atlas_dir, "mine")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert (folder / "atlas.toml").is_file()


def test_remove_asks_on_a_terminal_and_no_keeps_it(fixture_atlas_dir, capsys, monkeypatch):
    folder = install(fixture_atlas_dir, "mine")
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    assert main(["atlas", "remove", "mine"]) == 0
    assert "nothing removed" in capsys.readouterr().out and folder.is_dir()
    monkeypatch.setattr("builtins.input", lambda prompt: "y")
    assert main(["atlas", "remove", "mine"]) == 0
    assert not folder.exists()
