"""`dorsum atlas check|build` as a user runs them."""

from __future__ import annotations

import shutil

from viewer.cli import main


def test_check_passes_on_a_sound_atlas(fixture_atlas_dir, capsys):
    assert main(["atlas", "check", "--atlas", str(fixture_atlas_dir)]) == 0
    assert "atlas check: passed" in capsys.readouterr().out


def test_check_reports_a_muscle_sunk_into_bone(fixture_atlas_dir, tmp_path, capsys):
    broken = tmp_path / "atlas"
    shutil.copytree(fixture_atlas_dir, broken)
    shutil.copy(broken / "bone.ply", broken / "column.ply")  # a muscle exactly where the bone is
    assert main(["atlas", "check", "--atlas", str(broken)]) == 1
    out = capsys.readouterr().out
    assert "FAIL column:" in out and "inside bone" in out


def test_build_refuses_to_replace_an_atlas_without_overwrite(fixture_atlas_dir, tmp_path, capsys):
    target = tmp_path / "atlas"
    shutil.copytree(fixture_atlas_dir, target)
    before = sorted(p.name for p in target.iterdir())
    assert main(["atlas", "build", "--out", str(target)]) == 2
    assert "folder is not empty; pass --overwrite" in capsys.readouterr().err
    assert sorted(p.name for p in target.iterdir()) == before


def test_build_without_the_atlas_extra_is_one_line(tmp_path, capsys, monkeypatch):
    import sys

    # What a plain `pip install .` looks like to the builder: the simulator package is absent.
    monkeypatch.setitem(sys.modules, "mujoco", None)
    target = tmp_path / "atlas"
    assert main(["atlas", "build", "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "mujoco is missing" in err and "pip install 'dorsum[atlas]'" in err
    assert not target.exists()
