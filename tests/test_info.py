"""`dorsum info`: the JSON contract others rely on, and the installed program finding its atlas."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from viewer.cli import main


def test_info_json_contract(fixture_atlas_dir, capsys):
    assert main(["info", "--atlas", str(fixture_atlas_dir), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["atlas"]["units"] == "mm" and info["atlas"]["name"] == "Fixture"
    assert [layer["name"] for layer in info["layers"]] == ["superficial", "intermediate", "deep", "skeleton"]
    assert [layer["depth"] for layer in info["layers"]] == [1, 2, 3, 4]
    mf = next(s for s in info["structures"] if s["id"] == "mf_left")
    assert {k: mf[k] for k in ("name", "muscle", "side", "kind", "layer")} == {
        "name": "Mf Left", "muscle": "multifidus", "side": "left", "kind": "muscle", "layer": "deep"}
    assert Path(mf["mesh"]).is_absolute() and Path(mf["mesh"]).is_file()
    assert mf["n_triangles"] == 1152


def test_info_table_lists_every_structure(fixture_atlas_dir, capsys):
    assert main(["info", "--atlas", str(fixture_atlas_dir)]) == 0
    out = capsys.readouterr().out
    for sid in ("sheet", "column", "mf_right", "mf_left", "bone"):
        assert sid in out
    assert "5 structures, 5760 triangles" in out


def test_bad_atlas_folder_is_one_line(tmp_path, capsys):
    assert main(["info", "--atlas", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no atlas manifest here" in err and err.count("\n") == 1


def test_program_finds_its_shipped_atlas_from_any_folder(tmp_path):
    """Run from a folder outside the checkout, as after `pip install .`: the atlas must come along."""
    result = subprocess.run([sys.executable, "-m", "viewer.cli", "info", "--json"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert len(info["structures"]) > 40
    assert all(Path(s["mesh"]).is_file() for s in info["structures"])
