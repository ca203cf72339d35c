"""What loading an atlas refuses: empty or impossible manifest values, and geometry the numbers cannot use.

Also a fuzz of the loader (hypothesis, fixed seed): whatever the manifest holds, loading gives an
atlas or an :class:`AtlasError`, never another exception.
"""

from __future__ import annotations

import os
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest
import tomli_w
import trimesh
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trimesh.exchange.ply import export_ply

from viewer.atlas import load_atlas
from viewer.cli import main
from viewer.errors import AtlasError, DorsumError


@pytest.fixture
def atlas_copy(fixture_atlas_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "atlas"
    shutil.copytree(fixture_atlas_dir, target)
    return target


def edit(root: Path, old: str, new: str) -> None:
    manifest = root / "atlas.toml"
    text = manifest.read_text(encoding="utf-8")
    assert old in text, old
    manifest.write_text(text.replace(old, new, 1), encoding="utf-8")


def problems(root: Path) -> list[str]:
    with pytest.raises(AtlasError) as info:
        load_atlas(root)
    return info.value.problems


def rewrite_mesh(path: Path, change) -> None:
    mesh = trimesh.load(path, process=False)
    attributes = {name: np.array(mesh.metadata["_ply_raw"]["vertex"]["data"][name])
                  for name in ("segment", "side") if name in mesh.metadata["_ply_raw"]["vertex"]["data"].dtype.names}
    vertices, faces = change(np.asarray(mesh.vertices), np.asarray(mesh.faces), attributes)
    out = trimesh.Trimesh(vertices, faces, process=False)
    for name, values in attributes.items():
        out.vertex_attributes[name] = values[: len(vertices)]
    path.write_bytes(export_ply(out, include_attributes=True))


# -- item 16: empty strings, NUL, and what a mesh path names ---------------------------------------------
@pytest.mark.parametrize("key,value", [("layer", "deep"), ("side", "right"), ("id", "mf_right"),
                                       ("kind", "muscle"), ("mesh", "mf_right.ply"), ("name", "Mf Right"),
                                       ("muscle", "multifidus")])
def test_an_empty_value_is_named(key, value, atlas_copy):
    edit(atlas_copy, f'{key} = "{value}"', f'{key} = ""')
    found = problems(atlas_copy)
    assert any(p.startswith("atlas.toml: structures[") and f"].{key}: must not be empty" in p for p in found), found


def test_an_empty_layer_name_is_named(atlas_copy):
    edit(atlas_copy, 'name = "deep"', 'name = ""')
    assert any("layers[2].name: must not be empty" in p for p in problems(atlas_copy))


def test_a_nul_in_a_mesh_path_is_named(atlas_copy):
    edit(atlas_copy, 'mesh = "mf_right.ply"', 'mesh = "mf_right\\u0000.ply"')
    assert any("structures[2].mesh" in p and "NUL" in p for p in problems(atlas_copy))


@pytest.mark.parametrize("make,expected", [("folder", "is a folder, not a mesh file"),
                                           ("fifo", "is not a regular file")])
def test_a_folder_or_fifo_as_mesh_says_what_it_is(make, expected, atlas_copy):
    target = atlas_copy / "odd.ply"
    target.mkdir() if make == "folder" else os.mkfifo(target)
    edit(atlas_copy, 'mesh = "mf_right.ply"', 'mesh = "odd.ply"')
    found = problems(atlas_copy)
    assert any(f"structures[2].mesh: 'odd.ply' {expected}" in p for p in found), found


# -- item 17: geometry that measurements depend on --------------------------------------------------------
def test_an_open_muscle_is_refused(atlas_copy):
    rewrite_mesh(atlas_copy / "mf_right.ply", lambda v, f, a: (v, f[10:]))
    found = problems(atlas_copy)
    assert any("'mf_right.ply' is not a closed surface" in p for p in found), found


def test_a_one_triangle_muscle_is_refused(atlas_copy):
    rewrite_mesh(atlas_copy / "column.ply", lambda v, f, a: (v[:3], np.array([[0, 1, 2]])))
    assert any("'column.ply' is not a closed surface (3 edges" in p for p in problems(atlas_copy))


def test_nan_level_data_is_refused(atlas_copy):
    def poison(vertices, faces, attributes):
        attributes["segment"][5] = np.nan
        return vertices, faces

    rewrite_mesh(atlas_copy / "mf_left.ply", poison)
    assert any("'mf_left.ply' has per-vertex 'segment' data" in p for p in problems(atlas_copy))


def test_metres_under_units_mm_are_refused(atlas_copy):
    for name in ("sheet", "column", "mf_right", "mf_left", "bone"):
        rewrite_mesh(atlas_copy / f"{name}.ply", lambda v, f, a: (v / 1000.0, f))
    found = problems(atlas_copy)
    assert any("atlas.units: the meshes span 0.2" in p and "metres" in p for p in found), found


def test_one_muscle_in_metres_is_refused(atlas_copy):
    rewrite_mesh(atlas_copy / "column.ply", lambda v, f, a: (v / 1000.0, f))
    assert any("'column.ply' is 0.06 x 0.06 x 0.16 mm" in p for p in problems(atlas_copy))


def test_coincident_landmarks_are_refused(atlas_copy):
    edit(atlas_copy, "centre = [0.0, 20.0, -20.0]", "centre = [0.0, 20.0, 0.0]")
    found = problems(atlas_copy)
    assert any("spine: the centres of L4 and L5 are 0 mm apart" in p for p in found), found


def test_measure_on_an_open_multifidus_is_an_error_not_zero(atlas_copy, capsys):
    rewrite_mesh(atlas_copy / "mf_right.ply", lambda v, f, a: (v, f[10:]))
    assert main(["measure", "--atlas", str(atlas_copy)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a closed surface" in err[0]


def test_the_shipped_atlas_passes(real_atlas):
    assert len(real_atlas.structures) > 50


# -- item 18: atrophy only where the model's result is what measure measures -------------------------
def test_atrophy_of_a_muscle_the_model_cannot_waste_is_refused(capsys):
    code = main(["measure", "--muscle", "trapezius", "--atrophy", "30", "--segments", "T4-T8"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("dorsum measure: error: atrophy: trapezius cannot waste as asked in T4-T8: checked "
                             "with 'dorsum measure', 30% set gives ")
    assert err[0].endswith("muscles with per-vertex level and side data waste exactly: multifidus)")


def test_the_refusal_is_in_the_model_every_command_uses(real_atlas, fixture_atlas):
    from viewer.atrophy import AtrophyParams, apply_atrophy, atrophy_muscles
    from viewer.model import SceneModel

    model = SceneModel(real_atlas)
    with pytest.raises(DorsumError, match="trapezius cannot waste as asked"):
        apply_atrophy(model, AtrophyParams(amount=30, segments="T4-T8", muscle="trapezius"))
    assert model.atrophy is None and model.vertices("trapezius_left") is real_atlas.meshes["trapezius_left"].vertices
    assert atrophy_muscles(real_atlas) == ("multifidus",) and atrophy_muscles(fixture_atlas) == ("multifidus",)


# -- the loader under fuzzing ---------------------------------------------------------------------------
MESH_PATHS = ["sheet.ply", "", " ", "dir.ply", "nul\x00.ply", "../sheet.ply", "/etc/passwd", "garbage.ply",
              "a" * 300 + ".ply", "missing.ply", "sheet.PLY", "LICENSE.txt", "loop.ply", "sub/../sheet.ply"]
ODD_VALUES = st.one_of(
    st.text(max_size=12), st.sampled_from(["", " ", "deep", "muscle", "left", "midline", "\x00", "Ü", "a\nb"]),
    st.integers(-2**63, 2**63 - 1), st.floats(), st.booleans(), st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory, fixture_atlas_dir) -> Path:
    root = tmp_path_factory.mktemp("fuzz") / "atlas"
    shutil.copytree(fixture_atlas_dir, root)
    (root / "dir.ply").mkdir()
    (root / "garbage.ply").write_bytes(b"ply\nformat ascii 1.0\nelement vertex 2\nend_header\n1 2\n")
    (root / "loop.ply").symlink_to(root / "loop.ply")
    return root


@st.composite
def manifests(draw, base: dict) -> dict:
    data = {key: (dict(value) if isinstance(value, dict) else [dict(t) for t in value]) for key, value in base.items()}
    for _ in range(draw(st.integers(1, 4))):
        section = draw(st.sampled_from(["atlas", "layers", "structures", "spine", "top"]))
        if section == "top":
            data[draw(st.sampled_from(["atlas", "layers", "structures", "spine", "extra"]))] = draw(ODD_VALUES)
            continue
        if not isinstance(data.get(section), (dict, list)) or not data[section]:
            continue
        table = data[section] if isinstance(data[section], dict) else draw(st.sampled_from(data[section]))
        key = draw(st.sampled_from(sorted(table) + ["extra", "levels", "colour", "teaching"]))
        if key == "mesh" or (section == "structures" and draw(st.booleans())):
            table["mesh"] = draw(st.one_of(st.sampled_from(MESH_PATHS), st.text(max_size=20)))
        elif draw(st.booleans()):
            table.pop(key, None)
        else:
            table[key] = draw(ODD_VALUES)
    return data


@settings(max_examples=150, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_fuzzed_manifests_give_an_atlas_or_an_atlas_error(fuzz_root, fixture_atlas_dir, data):
    base = tomllib.loads((fixture_atlas_dir / "atlas.toml").read_text(encoding="utf-8"))
    manifest = data.draw(manifests(base))
    try:
        text = tomli_w.dumps(manifest)
    except (TypeError, ValueError):
        return  # not expressible as TOML: nothing a user can write
    (fuzz_root / "atlas.toml").write_text(text, encoding="utf-8")
    try:
        load_atlas(fuzz_root)
    except AtlasError:
        pass


@settings(max_examples=100, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_fuzzed_manifest_text_gives_an_atlas_error(tmp_path, text):
    (tmp_path / "atlas.toml").write_text(text, encoding="utf-8")
    with pytest.raises(AtlasError):
        load_atlas(tmp_path)
