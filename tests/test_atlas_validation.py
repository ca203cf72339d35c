"""Bad atlases get clear errors naming the problem; good ones load with their per-vertex data."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from viewer.atlas import load_atlas, read_mesh
from viewer.errors import AtlasError


@pytest.fixture
def atlas_copy(fixture_atlas_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "atlas"
    shutil.copytree(fixture_atlas_dir, target)
    return target


def _edit(root: Path, old: str, new: str, count: int = 1) -> None:
    manifest = root / "atlas.toml"
    text = manifest.read_text()
    assert old in text, f"fixture text {old!r} not found"
    manifest.write_text(text.replace(old, new, count))


def _problems(root: Path) -> list[str]:
    with pytest.raises(AtlasError) as info:
        load_atlas(root)
    return info.value.problems


def test_fixture_atlas_loads_with_layers_in_depth_order(fixture_atlas):
    assert fixture_atlas.layer_names == ("superficial", "intermediate", "deep", "skeleton")
    assert fixture_atlas.units == "mm" and fixture_atlas.frame == "RAS"
    assert fixture_atlas.structure("mf_left").side == "left"
    assert fixture_atlas.structure("sheet").colour == "#c81e1e"  # layer colour by default


def test_per_vertex_data_survives_the_round_trip(fixture_atlas):
    mesh = fixture_atlas.meshes["mf_right"]
    assert set(mesh.point_data) == {"segment", "side"}
    assert mesh.point_data["segment"].shape == (len(mesh.vertices),)
    assert np.all(mesh.point_data["side"] == 1)
    top = mesh.vertices[:, 2].argmax()
    assert mesh.point_data["segment"][top] == pytest.approx(19.0 + (50.0 - mesh.vertices[top, 2]) / 20.0)


BAD_EDITS = [
    ('layer = "deep"', 'layer = "middle"',
     "structures[2].layer: unknown layer 'middle' (known: superficial, intermediate, deep, skeleton)"),
    ('side = "right"', 'side = "up"', "structures[2].side: unknown side 'up'"),
    ('kind = "bone"', 'kind = "organ"', "structures[4].kind: unknown kind 'organ'"),
    ('id = "column"', 'id = "sheet"', "structures: duplicate id 'sheet'"),
    ('id = "column"', 'id = "Column"', "structures[1].id: 'Column' is not snake_case"),
    ('mesh = "column.ply"', 'mesh = "../column.ply"', "structures[1].mesh: '../column.ply' points outside the atlas folder"),
    ('mesh = "column.ply"', 'mesh = "missing.ply"', "structures[1].mesh: 'missing.ply' does not exist"),
    ('mesh = "column.ply"', 'mesh = "column.xyz"', "structures[1].mesh: 'column.xyz' has an unsupported type"),
    ('units = "mm"', 'units = "inch"', "atlas.units: unsupported units 'inch' (allowed: mm)"),
    ('frame = "RAS"', 'frame = "LPS"', "atlas.frame: unsupported frame 'LPS' (allowed: RAS)"),
    ('colour = "#c81e1e"', 'colour = "red"', "layers[0].colour: 'red' is not a colour of the form '#rrggbb'"),
    ("depth = 1", 'depth = "one"', "layers[0].depth: 'one' is not a whole number"),
    ('[[structures]]\nid = "sheet"', '[[structures]]\nshape = "flat"\nid = "sheet"', "structures[0].shape: unknown key"),
    ('layer = "deep"\n', 'layer = "deep"\nlevels = ["L9"]\n', "structures[2].levels: ['L9'] is not a list of vertebrae"),
    ('name = "L4"', 'name = "L9"', "spine[0].name: unknown vertebra 'L9'"),
    ("centre = [0.0, 20.0, 0.0]", "centre = [0.0, 20.0]", "spine[0].centre: [0.0, 20.0] is not three finite numbers"),
    ('licence_file = "LICENSE.txt"', 'licence_file = "NOPE.txt"', "atlas.sources[0].licence_file: 'NOPE.txt' does not exist"),
    ('[[structures]]\nid = "sheet"', '[[structures]]\nid = "sheet"\n[structures.teaching]\norigin = "x"\nmood = "y"\n',
     "structures[0].teaching.mood: unknown key"),
    ('name = "Fixture"\n', "", "atlas: missing required key 'name'"),
]


@pytest.mark.parametrize(("old", "new", "expected"), BAD_EDITS, ids=[e[2][:40] for e in BAD_EDITS])
def test_bad_manifest_names_the_problem(atlas_copy, old, new, expected):
    _edit(atlas_copy, old, new)
    problems = _problems(atlas_copy)
    assert any(expected in p for p in problems), problems
    assert all(p.startswith("atlas.toml: ") for p in problems)


def test_all_problems_are_reported_together(atlas_copy):
    _edit(atlas_copy, 'layer = "deep"', 'layer = "middle"')
    _edit(atlas_copy, 'units = "mm"', 'units = "cm"')
    _edit(atlas_copy, 'mesh = "bone.ply"', 'mesh = "gone.ply"')
    problems = _problems(atlas_copy)
    assert len(problems) == 3, problems


def test_invalid_toml_is_one_clear_problem(atlas_copy):
    (atlas_copy / "atlas.toml").write_text("[atlas\nname = 1\n")
    [problem] = _problems(atlas_copy)
    assert problem.startswith("atlas.toml: not valid TOML")


def test_missing_manifest(tmp_path):
    [problem] = _problems(tmp_path)
    assert "no atlas manifest here" in problem


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "cannot be read as a mesh"),
        (b"ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty float x\nend_header\n\x00",
         "cannot be read as a mesh"),
    ],
)
def test_unreadable_mesh_file(atlas_copy, content, expected):
    (atlas_copy / "column.ply").write_bytes(content)
    problems = _problems(atlas_copy)
    assert any("structures[1].mesh: 'column.ply'" in p for p in problems), problems


def _write_ply(path: Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    import trimesh
    from trimesh.exchange.ply import export_ply

    path.write_bytes(export_ply(trimesh.Trimesh(vertices, faces, process=False)))


def test_empty_mesh(atlas_copy):
    _write_ply(atlas_copy / "column.ply", np.zeros((0, 3)), np.zeros((0, 3), dtype=int))
    problems = _problems(atlas_copy)
    assert any("'column.ply'" in p and ("empty" in p or "cannot be read" in p) for p in problems), problems


def test_non_finite_coordinates(atlas_copy):
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, np.nan, 0]], dtype=float)
    _write_ply(atlas_copy / "column.ply", vertices, np.array([[0, 1, 2]]))
    problems = _problems(atlas_copy)
    assert any("'column.ply' has non-finite vertex coordinates" in p for p in problems), problems


def test_read_mesh_keeps_triangles(fixture_atlas_dir):
    mesh = read_mesh(fixture_atlas_dir / "bone.ply")
    assert mesh.faces.shape[1] == 3 and mesh.n_triangles == len(mesh.faces) > 0
