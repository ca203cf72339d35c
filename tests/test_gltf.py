"""GLB export: loads back with the same structures, vertices and colours; passes the Khronos validator."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import trimesh

from viewer.cli import main
from viewer.figures.gltf import RAS_MM_TO_GLTF, base_colour_factor, scene_glb
from viewer.model import SceneModel

# CI installs the validator with: npm install --prefix ~/.cache/dorsum/gltf-validator gltf-validator
VALIDATOR = Path(os.environ.get("DORSUM_GLTF_VALIDATOR",
                                Path.home() / ".cache/dorsum/gltf-validator/node_modules/gltf-validator"))
VALIDATE_JS = """
const validator = require(process.argv[2]);
const data = new Uint8Array(require('fs').readFileSync(process.argv[3]));
validator.validateBytes(data).then(
  (report) => console.log(JSON.stringify(report.issues)),
  (error) => { console.error(String(error)); process.exit(1); });
"""


def load_glb(path: Path) -> trimesh.Scene:
    return trimesh.load(str(path), file_type="glb", force="scene")


def khronos_validate(path: Path, tmp_path: Path) -> dict:
    node = shutil.which("node")
    assert node, "Node.js is needed to run the Khronos glTF validator"
    assert VALIDATOR.is_dir(), (f"glTF validator not found at {VALIDATOR}; install it with "
                                "'npm install --prefix ~/.cache/dorsum/gltf-validator gltf-validator'")
    script = tmp_path / "validate.js"
    script.write_text(VALIDATE_JS)
    done = subprocess.run([node, str(script), str(VALIDATOR), str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_export_round_trip_and_validator(fixture_atlas_dir, fixture_atlas, tmp_path, capsys):
    out = tmp_path / "scene.glb"
    assert main(["export", "--atlas", str(fixture_atlas_dir), "--out", str(out), "--hide", "intermediate",
                 "--opacity", "superficial=0.5"]) == 0
    assert "wrote" in capsys.readouterr().out
    scene = load_glb(out)
    expected = ["bone", "mf_left", "mf_right", "sheet"]
    assert sorted(scene.graph.nodes_geometry) == expected
    for sid in expected:
        _, geometry_name = scene.graph[sid]
        mesh = scene.geometry[geometry_name]
        source = fixture_atlas.meshes[sid]
        assert mesh.vertices.shape == source.vertices.shape
        assert mesh.faces.shape == source.faces.shape
        np.testing.assert_allclose(mesh.vertices, source.vertices, atol=1e-4)
        np.testing.assert_array_equal(mesh.faces, source.faces)
    sheet = scene.geometry[scene.graph["sheet"][1]].visual.material
    assert np.allclose(np.asarray(sheet.baseColorFactor) / 255.0, base_colour_factor("#c81e1e", 0.5), atol=1 / 255)
    transform, _ = scene.graph["sheet"]
    np.testing.assert_allclose(transform, RAS_MM_TO_GLTF)
    issues = khronos_validate(out, tmp_path)
    assert issues["numErrors"] == 0 and issues["numWarnings"] == 0, issues["messages"][:5]


def test_export_holds_the_displayed_geometry(fixture_atlas, tmp_path):
    model = SceneModel(fixture_atlas)
    shrunk = fixture_atlas.meshes["mf_left"].vertices * np.array([0.7, 0.7, 1.0])
    model.set_vertices("mf_left", shrunk)
    model.set_colour("mf_left", "#d8c060")
    model.show_only(["deep"])
    path = tmp_path / "deep.glb"
    path.write_bytes(scene_glb(model))
    scene = load_glb(path)
    assert sorted(scene.graph.nodes_geometry) == ["mf_left", "mf_right"]
    mesh = scene.geometry[scene.graph["mf_left"][1]]
    np.testing.assert_allclose(mesh.vertices, shrunk, atol=1e-4)
    colour = np.asarray(mesh.visual.material.baseColorFactor) / 255.0
    assert np.allclose(colour, base_colour_factor("#d8c060", 1.0), atol=1 / 255)


def test_export_refuses_to_clobber_and_wrong_suffix(fixture_atlas_dir, tmp_path, capsys):
    existing = tmp_path / "mine.glb"
    existing.write_bytes(b"keep")
    assert main(["export", "--atlas", str(fixture_atlas_dir), "--out", str(existing)]) == 2
    assert "file exists" in capsys.readouterr().err
    assert existing.read_bytes() == b"keep"
    assert main(["export", "--atlas", str(fixture_atlas_dir), "--out", str(tmp_path / "scene.obj")]) == 2
    assert "unsupported file type '.obj'" in capsys.readouterr().err


def test_html_export_is_offline_and_holds_the_displayed_meshes(fixture_atlas_dir, fixture_atlas, tmp_path):
    import base64

    out = tmp_path / "back.html"
    assert main(["export", "--atlas", str(fixture_atlas_dir), "--out", str(out), "--only", "deep"]) == 0
    page = out.read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page  # nothing is fetched
    data = json.loads(page[page.index("const SCENE = ") + len("const SCENE = "): page.index(";\nfunction decode")])
    assert [s["id"] for s in data["structures"]] == ["mf_right", "mf_left"]
    for structure in data["structures"]:
        positions = np.frombuffer(base64.b64decode(structure["positions"]), "<f4").reshape(-1, 3)
        np.testing.assert_allclose(positions, fixture_atlas.meshes[structure["id"]].vertices, atol=1e-4)
        indices = np.frombuffer(base64.b64decode(structure["indices"]), "<u4").reshape(-1, 3)
        np.testing.assert_array_equal(indices, fixture_atlas.meshes[structure["id"]].faces)
    script = tmp_path / "page.js"
    script.write_text(page[page.index("<script>") + len("<script>"): page.index("</script>")])
    node = shutil.which("node")
    assert node, "Node.js is needed to check the page's script"
    checked = subprocess.run([node, "--check", str(script)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr


def test_export_holds_the_atrophy_as_shown(fixture_atlas_dir, fixture_atlas, tmp_path):
    from viewer.atrophy import AtrophyParams, apply_atrophy

    out = tmp_path / "wasted.glb"
    assert main(["export", "--atlas", str(fixture_atlas_dir), "--out", str(out), "--only", "deep",
                 "--atrophy", "30", "--segments", "L4-S1", "--side", "left", "--fat", "50"]) == 0
    model = SceneModel(fixture_atlas)
    apply_atrophy(model, AtrophyParams(amount=30, segments="L4-S1", side="left", fat=50))
    scene = load_glb(out)
    left = scene.geometry[scene.graph["mf_left"][1]]
    np.testing.assert_allclose(left.vertices, model.vertices("mf_left"), atol=1e-4)
    assert not np.allclose(left.vertices, fixture_atlas.meshes["mf_left"].vertices, atol=0.1)
    colour = np.asarray(left.visual.material.baseColorFactor) / 255.0
    assert np.allclose(colour, base_colour_factor(model.colour("mf_left"), 1.0), atol=1 / 255)
    assert model.colour("mf_left") != fixture_atlas.structure("mf_left").colour  # fat shows


def test_export_of_the_shipped_atlas_passes_the_validator(real_atlas, tmp_path):
    """Every structure of the real atlas (not only the fixture): unit normals, valid GLB."""
    model = SceneModel(real_atlas)
    assert sorted(model.visible_ids()) == sorted(s.id for s in real_atlas.structures)
    path = tmp_path / "atlas.glb"
    path.write_bytes(scene_glb(model))
    issues = khronos_validate(path, tmp_path)
    assert issues["numErrors"] == 0 and issues["numWarnings"] == 0, issues["messages"][:5]
    scene = load_glb(path)
    assert len(scene.graph.nodes_geometry) == len(real_atlas.structures)


def test_normals_stay_unit_length_on_a_two_sided_flap():
    """A triangle drawn twice with opposite winding cancels its area-weighted normals."""
    from viewer.figures.gltf import unit_vertex_normals

    vertices = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [5.0, 5.0, 5.0]])
    faces = np.array([[0, 1, 2], [0, 2, 1]])
    normals = unit_vertex_normals(vertices, faces)
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-6)
