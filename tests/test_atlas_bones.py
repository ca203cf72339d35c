"""Bones of the shipped atlas: a real sternum and no logo (issue #12 item 7), no two-sided flaps
that give zero-length normals (item 10).

These tests read meshes/; they never rebuild it.
"""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from viewer.atlas import Atlas
from viewer.atlas_build import volume


def _mesh(atlas: Atlas, sid: str) -> trimesh.Trimesh:
    data = atlas.meshes[sid]
    return trimesh.Trimesh(np.asarray(data.vertices, float), np.asarray(data.faces), process=False)


def _bones(atlas: Atlas) -> list[str]:
    return [s.id for s in atlas.structures if s.kind == "bone"]


def test_rib_cage_has_no_logo(real_atlas: Atlas) -> None:
    """The MyoSuite logo was a 15,180-triangle disc plus open figure pieces in front of the sternum."""
    pieces = _mesh(real_atlas, "rib_cage").split(only_watertight=False)
    sizes = sorted((len(p.faces) for p in pieces), reverse=True)
    assert sizes[0] < 3000, f"a rib-cage piece has {sizes[0]} triangles"
    assert all(p.is_watertight for p in pieces), "open (logo) pieces in the rib cage"
    # 24 ribs and the costal cartilage plate that carries the sternum.
    assert len(pieces) == 25, sizes


def test_sternum_lies_on_the_anterior_midline(real_atlas: Atlas) -> None:
    """Rays from the front on the midline meet a sternum (manubrium, body, xiphoid) that is a
    plate 5-20 mm thick, without anything in front of it."""
    rib = _mesh(real_atlas, "rib_cage")
    flipped = trimesh.Trimesh(rib.vertices * [1.0, -1.0, 1.0], rib.faces[:, ::-1], process=False)
    # Manubriosternal joint to the xiphoid: about the T4 to T9 vertebral levels.
    zs = np.arange(real_atlas.spine["T9"][2], real_atlas.spine["T4"][2], 2.0)
    front = -volume.first_hits_along_y(flipped, np.zeros_like(zs), zs)
    back = volume.first_hits_along_y(rib, np.zeros_like(zs), zs)
    assert np.all(np.isfinite(front)), "gaps in the sternum"
    # The back of the sternum is the first surface met from behind on the midline (anterior).
    assert np.all(back > -200.0)
    thickness = front - back
    assert np.all((thickness > 3.0) & (thickness < 20.0)), np.round(thickness, 1)


def _zero_normal_vertices(mesh: trimesh.Trimesh) -> int:
    v, f = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    cross = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    summed = np.zeros_like(v)
    for corner in range(3):
        np.add.at(summed, f[:, corner], cross)
    return int((np.linalg.norm(summed, axis=1) < 1e-9).sum())


def test_no_mesh_has_two_sided_flaps_or_unused_vertices(real_atlas: Atlas) -> None:
    """Repeated triangles (a flap drawn from both sides) cancel their normals: invalid in glTF."""
    bad = {}
    for s in real_atlas.structures:
        mesh = _mesh(real_atlas, s.id)
        repeated = len(mesh.faces) - len(np.unique(np.sort(mesh.faces, axis=1), axis=0))
        unused = len(mesh.vertices) - len(np.unique(mesh.faces))
        zero = _zero_normal_vertices(mesh)
        if repeated or unused or zero:
            bad[s.id] = (repeated, unused, zero)
    assert not bad, f"(repeated triangles, unused vertices, zero normals): {bad}"


@pytest.mark.parametrize("sid", ["hip_bone_left", "scapula_right", "vertebra_c5", "rib_cage"])
def test_bone_has_no_degenerate_triangles(real_atlas: Atlas, sid: str) -> None:
    mesh = _mesh(real_atlas, sid)
    assert (mesh.area_faces > 1e-10).all()
