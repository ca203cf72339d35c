"""The numpy PLY reader gives exactly the arrays trimesh gives; other files still load through trimesh."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import trimesh

from viewer.atlas import _read_binary_ply, _read_with_trimesh, default_atlas_dir, read_mesh


def assert_same_mesh(a, b, where: str) -> None:
    assert a.vertices.dtype == b.vertices.dtype and np.array_equal(a.vertices, b.vertices), where
    assert a.faces.dtype == b.faces.dtype and np.array_equal(a.faces, b.faces), where
    assert set(a.point_data) == set(b.point_data), where
    for name in a.point_data:
        assert a.point_data[name].dtype == b.point_data[name].dtype, (where, name)
        assert np.array_equal(a.point_data[name], b.point_data[name]), (where, name)


def test_every_built_in_mesh_reads_as_trimesh_reads_it():
    files = sorted(default_atlas_dir().glob("*/*.ply"))
    assert len(files) > 40
    for path in files:
        fast = _read_binary_ply(path)
        assert fast is not None, path
        assert_same_mesh(fast, _read_with_trimesh(path), path.name)
    assert "segment" in read_mesh(default_atlas_dir() / "muscles" / "multifidus_right.ply").point_data


def test_fixture_meshes_read_as_trimesh_reads_them(fixture_atlas_dir):
    files = sorted(fixture_atlas_dir.rglob("*.ply"))
    assert files
    for path in files:
        assert_same_mesh(read_mesh(path), _read_with_trimesh(path), path.name)


@pytest.mark.parametrize("encoding", ["binary_big_endian", "ascii"])
def test_other_ply_encodings_give_the_same_arrays(tmp_path, encoding):
    mesh = trimesh.creation.icosphere(subdivisions=1)
    path = tmp_path / "sphere.ply"
    path.write_bytes(trimesh.exchange.ply.export_ply(mesh, encoding=encoding.split("_")[0]
                                                    if encoding == "ascii" else "binary"))
    if encoding == "binary_big_endian":  # rewrite the little-endian file big-endian by hand
        data = path.read_bytes()
        head, _, body = data.partition(b"end_header\n")
        n_vertices, n_faces = len(mesh.vertices), len(mesh.faces)
        vertices = np.frombuffer(body, "<f4", count=3 * n_vertices).astype(">f4")
        faces = np.frombuffer(body, np.dtype([("n", "u1"), ("i", "<i4", (3,))]), count=n_faces, offset=12 * n_vertices)
        big = np.empty(n_faces, np.dtype([("n", "u1"), ("i", ">i4", (3,))]))
        big["n"], big["i"] = faces["n"], faces["i"]
        path.write_bytes(head.replace(b"binary_little_endian", b"binary_big_endian") + b"end_header\n"
                         + vertices.tobytes() + big.tobytes())
    loaded = read_mesh(path)
    assert np.allclose(loaded.vertices, mesh.vertices, atol=1e-6)
    assert np.array_equal(loaded.faces, mesh.faces)


def test_quads_are_triangulated_as_before(tmp_path):
    path = tmp_path / "quad.ply"
    path.write_text("ply\nformat ascii 1.0\nelement vertex 4\nproperty float x\nproperty float y\nproperty float z\n"
                    "element face 1\nproperty list uchar int vertex_indices\nend_header\n"
                    "0 0 0\n1 0 0\n1 1 0\n0 1 0\n4 0 1 2 3\n")
    assert read_mesh(path).faces.shape == (2, 3)


def test_a_truncated_binary_ply_is_an_error(tmp_path):
    source = default_atlas_dir() / "bones" / "vertebra_l4.ply"
    path = tmp_path / "cut.ply"
    path.write_bytes(source.read_bytes()[:-100])
    with pytest.raises(ValueError, match="cannot be read as a mesh"):
        read_mesh(path)


def test_loading_the_built_in_atlas_imports_no_trimesh_scipy_or_vtk():
    code = ("import sys; from viewer.atlas import load_atlas; load_atlas(); "
            "print(sorted(m for m in ('trimesh', 'scipy', 'vtk', 'vtkmodules', 'pyvista') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
