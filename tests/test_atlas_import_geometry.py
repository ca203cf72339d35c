"""Units of the BodyParts3D import: catalogue, frame, surface repair, decimation, landmarks, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh

from viewer.atlas import MeshData
from viewer.atlas_import import landmarks, repair
from viewer.atlas_import.build import build_atlas_from_files, missing_required
from viewer.atlas_import.catalogue import load_catalogue
from viewer.errors import DorsumError


def _mesh(tm: trimesh.Trimesh) -> MeshData:
    return MeshData(np.asarray(tm.vertices, dtype=float), np.asarray(tm.faces, dtype=np.int64))


def _holed_box(extents=(40.0, 20.0, 6.0), holes: int = 12, seed: int = 1) -> trimesh.Trimesh:
    """A subdivided box with triangles knocked out (an open surface) and a loose crumb."""
    box = trimesh.creation.box(extents=extents).subdivide().subdivide().subdivide()
    rng = np.random.default_rng(seed)
    keep = np.ones(len(box.faces), dtype=bool)
    keep[rng.choice(len(box.faces), holes, replace=False)] = False
    crumb = trimesh.creation.icosphere(subdivisions=0, radius=0.3)
    crumb.apply_translation([30.0, 0.0, 0.0])
    return trimesh.util.concatenate([trimesh.Trimesh(box.vertices, box.faces[keep]), crumb])


def test_missing_required_names_the_concepts():
    lines = missing_required([])
    assert "FMA13075 fourth lumbar vertebra" in lines
    assert "FMA22878 right multifidus" in lines
    assert any(line.startswith("FMA33586 ") and "trapezius" in line for line in lines)
    assert all(line.startswith("FMA") for line in lines)
    every = load_catalogue().known_fma
    assert missing_required(every) == []
    assert missing_required([f for f in every if f != 16202]) == ["FMA16202 sacrum"]


def test_catalogue_expands_sides_and_splits():
    catalogue = load_catalogue()
    ids = [s.id for s in catalogue.structures]
    assert len(ids) == len(set(ids))
    left = catalogue.structure("rotatores_thoracic_left")
    right = catalogue.structure("rotatores_thoracic_right")
    assert left.fma == right.fma == (23083,) and (left.split, right.split) == ("left", "right")
    assert catalogue.structure("multifidus_right").fma == (22878,)
    assert catalogue.structure("hip_bone_left").muscle == "hip_bone_left"
    assert catalogue.structure("trapezius_ascending_left").muscle == "trapezius"
    assert len(catalogue.structure("skull").fma) > 10


def test_read_source_turns_bodyparts3d_into_ras(tmp_path: Path):
    path = tmp_path / "FMA1.obj"
    path.write_text("v 10 20 30\nv 11 20 30\nv 10 21 31\nf 1 2 3\n")
    mesh = repair.read_source([path])
    # +x left -> +x right and +y posterior -> +y anterior: both flip, z stays; a rotation.
    assert np.allclose(mesh.vertices[0], [-10.0, -20.0, 30.0])
    normal = np.cross(*(mesh.vertices[1:] - mesh.vertices[0]))
    # The source normal (0, -1, 1) turned half a turn about z is (0, 1, 1); a mirror would flip it.
    assert np.allclose(normal, [0.0, 1.0, 1.0])


@pytest.mark.parametrize("content", [b"", b"this is not a mesh \x00\x01", b"v 1 2 3\n"])
def test_read_source_names_an_empty_or_corrupt_file(tmp_path: Path, content: bytes):
    path = tmp_path / "FMA22878.obj"
    path.write_bytes(content)
    with pytest.raises(DorsumError, match="FMA22878.obj"):
        repair.read_source([path])


def test_close_surface_closes_an_open_crumbly_sheet_and_keeps_its_volume():
    source = _holed_box()
    closed = repair.close_surface(_mesh(source))
    tm = trimesh.Trimesh(closed.vertices, closed.faces)
    assert tm.is_watertight and tm.volume > 0
    assert len(tm.split(only_watertight=False)) == 1  # the crumb is gone
    assert tm.volume == pytest.approx(40 * 20 * 6, rel=0.1)
    assert np.allclose(tm.bounds, [[-20, -10, -3], [20, 10, 3]], atol=0.8)


def test_close_surface_split_keeps_one_side():
    box = trimesh.creation.box(extents=(40.0, 10.0, 10.0)).subdivide().subdivide()
    right = repair.close_surface(_mesh(box), split="right")
    assert right.vertices[:, 0].min() > -0.8 and right.vertices[:, 0].max() > 19.0
    assert trimesh.Trimesh(right.vertices, right.faces).is_watertight


def test_decimate_meets_the_budget_and_stays_closed():
    closed = repair.close_surface(_mesh(_holed_box()))
    small = repair.decimate(closed, 2000)
    tm = trimesh.Trimesh(small.vertices, small.faces)
    assert len(small.faces) <= 2000 * 1.3
    assert tm.is_watertight
    assert tm.volume == pytest.approx(trimesh.Trimesh(closed.vertices, closed.faces).volume, rel=0.03)


def test_drop_strays_removes_pieces_across_the_midline():
    near = trimesh.creation.icosphere(radius=5.0)
    near.apply_translation([30.0, 0.0, 0.0])
    far = trimesh.creation.icosphere(radius=5.0)
    far.apply_translation([-40.0, 0.0, 0.0])
    kept = repair.drop_strays(_mesh(trimesh.util.concatenate([near, far])), "right")
    assert kept.vertices[:, 0].min() > 20.0 and len(kept.faces) == len(near.faces)


def test_spine_centres_from_discs():
    meshes = {}
    for i, (upper, lower) in enumerate(zip(("T12", "L1", "L2"), ("L1", "L2", "L3"))):
        disc = trimesh.creation.cylinder(radius=20.0, height=8.0)
        disc.apply_translation([1.0, 80.0, 1000.0 - 30.0 * i])
        meshes[landmarks.disc_id(upper, lower)] = _mesh(disc)
    centres = landmarks.spine_centres(meshes)
    assert list(centres) == ["T12", "L1", "L2", "L3"]
    assert np.allclose(centres["L1"], [1.0, 80.0, 985.0], atol=0.1)  # between its two discs
    # The end bodies, with a disc on one side only, lie half a level beyond it.
    assert np.allclose(centres["T12"], [1.0, 80.0, 1015.0], atol=0.1)
    assert np.allclose(centres["L3"], [1.0, 80.0, 925.0], atol=0.1)
    assert landmarks.midline_offset(centres) == pytest.approx(1.0, abs=0.1)


def test_build_reports_missing_required_concepts(tmp_path: Path):
    with pytest.raises(DorsumError, match="FMA13075 fourth lumbar vertebra"):
        build_atlas_from_files({}, tmp_path / "out")


def test_build_names_a_corrupt_file(tmp_path: Path):
    sphere = tmp_path / "sphere.obj"
    trimesh.creation.icosphere(subdivisions=1, radius=5.0).export(sphere)
    corrupt = tmp_path / "FMA13076.obj"
    corrupt.write_bytes(b"garbage\x00")
    files = {fma: [sphere] for fma in load_catalogue().required_fma}
    files[13076] = [corrupt]
    with pytest.raises(DorsumError, match="FMA13076.obj"):
        build_atlas_from_files(files, tmp_path / "out")


def test_new_ids_of_the_lumbar_rebuild_get_a_plausible_entry():
    catalogue = load_catalogue()
    ligament = catalogue.planned_or_guessed("supraspinous_ligament")
    assert (ligament.kind, ligament.layer, ligament.side) == ("ligament", "skeleton", "midline")
    aponeurosis = catalogue.planned_or_guessed("erector_spinae_aponeurosis_left")
    assert (aponeurosis.kind, aponeurosis.side, aponeurosis.layer) == ("fascia", "left", "superficial")
    assert catalogue.planned_or_guessed("multifidus_right") is catalogue.structure("multifidus_right")
    assert len(aponeurosis.teaching.notes) > 30


def test_build_uses_what_the_lumbar_rebuild_returns(tmp_path: Path, monkeypatch):
    """A tiny synthetic download (only the required concepts, as spheres) through the whole build,
    with a lumbar rebuild that replaces the left multifidus and adds a fascia and a ligament."""
    from viewer.atlas import load_atlas
    from viewer.atlas_import import lumbar

    catalogue = load_catalogue()
    files = {}
    for i, fma in enumerate(catalogue.required_fma):
        structure = next(s for s in catalogue.structures if fma in s.fma)
        # BodyParts3D frame: +x is the body's left.
        x = {"left": 25.0, "right": -25.0}.get(structure.side, 0.0)
        sphere = trimesh.creation.icosphere(subdivisions=2, radius=6.0)
        sphere.apply_translation([x, 10.0 * (i % 3), 1000.0 - 12.0 * i])
        path = tmp_path / f"FMA{fma}.obj"
        sphere.export(path)
        files[fma] = [path]
    replacement = _mesh(trimesh.creation.icosphere(subdivisions=3, radius=8.0))
    sheet = _mesh(trimesh.creation.box(extents=(60.0, 2.0, 80.0)))

    def fake_rebuild(bones, muscles, spine):
        assert "vertebra_l4" in bones and "multifidus_right" in muscles and "L4" in spine
        return {"multifidus_left": replacement, "thoracolumbar_fascia": sheet, "supraspinous_ligament": sheet}

    monkeypatch.setattr(lumbar, "rebuild_lumbar", fake_rebuild)
    stages = []
    summary = build_atlas_from_files(files, tmp_path / "atlas", progress=lambda s, f: stages.append((s, f)))
    atlas = load_atlas(tmp_path / "atlas")
    assert atlas.structure("thoracolumbar_fascia").kind == "fascia"
    assert atlas.structure("thoracolumbar_fascia").layer == "superficial"
    assert atlas.structure("supraspinous_ligament").kind == "ligament"
    multifidus = atlas.meshes["multifidus_left"]
    assert len(multifidus.faces) == len(replacement.faces)
    assert set(np.unique(multifidus.point_data["side"])) == {0}
    assert "FMA22726 right splenius cervicis" in summary.missing_optional
    assert summary.structures == len(atlas.structures) and summary.triangles > 0
    finished = list(dict.fromkeys(s for s, f in stages if f == 1.0))
    assert finished == ["reading", "landmarks", "bones", "muscles", "lumbar", "writing"]
    assert all(0.0 <= f <= 1.0 for _, f in stages)
    assert any(note.startswith("time:") for note in summary.notes)


def test_a_muscle_reaching_across_the_midline_is_laid_on_it():
    from viewer.atlas import MeshData
    from viewer.atlas_import.build import MIDLINE_CLEARANCE_MM, keep_to_own_side

    vertices = np.array([[-4.0, 0.0, 0.0], [10.0, 0.0, 0.0], [10.0, 5.0, 0.0], [10.0, 0.0, 5.0]])
    faces = np.array([[0, 1, 2], [0, 2, 3], [0, 3, 1], [1, 3, 2]])
    right = keep_to_own_side(MeshData(vertices, faces), "right")
    assert right.vertices[:, 0].min() == MIDLINE_CLEARANCE_MM and right.vertices[1:, 0].tolist() == [10.0] * 3
    left = keep_to_own_side(MeshData(-vertices, faces), "left")
    assert left.vertices[:, 0].max() == -MIDLINE_CLEARANCE_MM
    midline = MeshData(vertices, faces)
    assert keep_to_own_side(midline, "midline") is midline
