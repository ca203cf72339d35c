"""What an atlas imported from BodyParts3D holds (issue 9): structures, closed surfaces, frame,
attribution, teaching text, colours and budget. The import runs once per session (conftest)."""

from __future__ import annotations

import colorsys
import itertools

import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree

from viewer.atlas import Atlas, MeshData
from viewer.levels import VERTEBRAE

CREDIT = "BodyParts3D, © The Database Center for Life Science licensed under CC Attribution-Share Alike 2.1 Japan"
SIDES = ("left", "right")


def _paired(base: str, layer: str, kind: str = "muscle") -> dict[str, tuple[str, str]]:
    return {f"{base}_{side}": (layer, kind) for side in SIDES}


EXPECTED: dict[str, tuple[str, str]] = {
    **{f"vertebra_{v.lower()}": ("skeleton", "bone") for v in VERTEBRAE if v != "S1"},
    "sacrum": ("skeleton", "bone"), "skull": ("skeleton", "bone"), "sternum": ("skeleton", "bone"),
    **{k: v for n in range(1, 13) for k, v in _paired(f"rib_{n}", "skeleton", "bone").items()},
    **{k: v for n in range(1, 8) for k, v in _paired(f"costal_cartilage_{n}", "skeleton", "bone").items()},
    **{k: v for b in ("hip_bone", "scapula", "clavicle", "humerus") for k, v in _paired(b, "skeleton", "bone").items()},
    **{f"disc_{a.lower()}_{b.lower()}": ("skeleton", "disc")
       for a, b in zip(VERTEBRAE[1:-1], VERTEBRAE[2:])},
    **{k: v for part in ("descending", "transverse", "ascending")
       for k, v in _paired(f"trapezius_{part}", "superficial").items()},
    **{k: v for m in ("latissimus_dorsi", "rhomboid_major", "rhomboid_minor", "levator_scapulae")
       for k, v in _paired(m, "superficial").items()},
    **{k: v for part in ("lumborum", "thoracis", "cervicis") for k, v in _paired(f"iliocostalis_{part}", "intermediate").items()},
    **{k: v for part in ("thoracis", "cervicis", "capitis") for k, v in _paired(f"longissimus_{part}", "intermediate").items()},
    **_paired("spinalis_thoracis", "intermediate"),
    **{k: v for part in ("thoracis", "cervicis", "capitis") for k, v in _paired(f"semispinalis_{part}", "deep").items()},
    **_paired("multifidus", "deep"),
    **{k: v for region in ("cervical", "thoracic", "lumbar") for k, v in _paired(f"rotatores_{region}", "deep").items()},
    **{k: v for m in ("splenius_capitis", "splenius_cervicis", "serratus_posterior_superior",
                      "serratus_posterior_inferior") for k, v in _paired(m, "intermediate").items()},
    **{k: v for m in ("rectus_capitis_posterior_major", "rectus_capitis_posterior_minor",
                      "obliquus_capitis_superior", "obliquus_capitis_inferior", "interspinales_lumborum",
                      "intertransversarii_lumborum_medial", "levatores_costarum_breves")
       for k, v in _paired(m, "deep").items()},
    **{k: v for m in ("quadratus_lumborum", "psoas_major", "gluteus_maximus", "teres_major", "infraspinatus",
                      "supraspinatus", "sternocleidomastoid") for k, v in _paired(m, "context").items()},
}
PARENT = {
    "trapezius_descending_left": "trapezius", "iliocostalis_cervicis_right": "iliocostalis",
    "longissimus_capitis_left": "longissimus", "spinalis_thoracis_right": "spinalis",
    "semispinalis_capitis_left": "semispinalis", "rotatores_thoracic_right": "rotatores",
    "multifidus_left": "multifidus", "latissimus_dorsi_right": "latissimus_dorsi",
}


def _trimesh(mesh: MeshData) -> trimesh.Trimesh:
    return trimesh.Trimesh(mesh.vertices, mesh.faces, process=True)


def _closed_without_crumbs(mesh: MeshData) -> tuple[bool, int]:
    tm = _trimesh(mesh)
    sizes = [len(c) for c in trimesh.graph.connected_components(tm.face_adjacency, min_len=1)]
    return tm.is_watertight, min(sizes)


def _lab(colour: str) -> np.ndarray:
    rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255.0
    lin = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ lin
    xyz /= np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _delta_e(a: str, b: str) -> float:
    return float(np.linalg.norm(_lab(a) - _lab(b)))


def test_every_structure_of_the_issue_is_there_with_its_layer_and_kind(bodyparts3d_atlas: Atlas):
    found = {s.id: (s.layer, s.kind) for s in bodyparts3d_atlas.structures}
    missing = sorted(set(EXPECTED) - set(found))
    assert not missing
    wrong = {sid: (found[sid], want) for sid, want in EXPECTED.items() if found[sid] != want}
    assert not wrong
    assert {s.muscle for s in bodyparts3d_atlas.structures if s.id in PARENT} == set(PARENT.values())
    assert all(bodyparts3d_atlas.structure(sid).muscle == muscle for sid, muscle in PARENT.items())
    assert [layer.name for layer in bodyparts3d_atlas.layers] == [
        "context", "superficial", "intermediate", "deep", "skeleton"]


def test_every_muscle_is_closed_without_crumbs(bodyparts3d_atlas: Atlas):
    muscles = [s.id for s in bodyparts3d_atlas.structures if s.kind == "muscle"]
    assert len(muscles) >= 90
    bad = {}
    for sid in muscles:
        closed, smallest = _closed_without_crumbs(bodyparts3d_atlas.meshes[sid])
        if not closed or smallest < 40:
            bad[sid] = (closed, smallest)
    assert not bad


def test_vertebrae_sacrum_and_discs_are_closed(bodyparts3d_atlas: Atlas):
    ids = [s.id for s in bodyparts3d_atlas.structures if s.id.startswith(("vertebra_", "disc_")) or s.id == "sacrum"]
    assert len(ids) == 24 + 1 + 23
    assert all(_trimesh(bodyparts3d_atlas.meshes[sid]).is_watertight for sid in ids)
    assert all(_trimesh(bodyparts3d_atlas.meshes[sid]).volume > 0 for sid in ids)  # outward normals


def test_body_centres_lie_on_the_midline(bodyparts3d_atlas: Atlas):
    spine = bodyparts3d_atlas.spine
    assert list(spine) == list(VERTEBRAE)
    assert max(abs(c[0]) for c in spine.values()) <= 2.0
    discs = [s.id for s in bodyparts3d_atlas.structures if s.kind == "disc"]
    centroids = np.array([_trimesh(bodyparts3d_atlas.meshes[d]).center_mass for d in discs])
    assert np.abs(centroids[:, 0]).max() <= 2.0
    # Cranial to caudal, body centres descend.
    z = np.array([spine[v][2] for v in VERTEBRAE])
    assert np.all(np.diff(z) < 0)


def test_anterior_is_plus_y(bodyparts3d_atlas: Atlas):
    for name in ("T6", "L1", "L4"):
        vertebra = bodyparts3d_atlas.meshes[f"vertebra_{name.lower()}"].vertices
        body_y = bodyparts3d_atlas.spine[name][1]
        # The spinous process is the most posterior (smallest y) part, well behind the body.
        assert vertebra[:, 1].min() < body_y - 35.0
        assert vertebra[:, 1].max() > body_y
    multifidus = bodyparts3d_atlas.meshes["multifidus_right"].vertices
    assert np.median(multifidus[:, 1]) < bodyparts3d_atlas.spine["L3"][1] - 30.0
    psoas = bodyparts3d_atlas.meshes["psoas_major_right"].vertices
    assert np.median(psoas[:, 1]) > np.median(multifidus[:, 1]) + 40.0


def test_right_is_plus_x(bodyparts3d_atlas: Atlas):
    for base in ("latissimus_dorsi", "multifidus", "rotatores_thoracic", "scapula", "hip_bone"):
        right = bodyparts3d_atlas.meshes[f"{base}_right"].vertices[:, 0]
        left = bodyparts3d_atlas.meshes[f"{base}_left"].vertices[:, 0]
        assert np.median(right) > 5.0 and np.median(left) < -5.0
    # The thoracic rotatores come as one mesh for both sides; each half stays on its side.
    assert bodyparts3d_atlas.meshes["rotatores_thoracic_right"].vertices[:, 0].min() > -1.0
    assert bodyparts3d_atlas.meshes["rotatores_thoracic_left"].vertices[:, 0].max() < 1.0


def test_credit_line_licence_and_notice(bodyparts3d_atlas: Atlas, bodyparts3d_atlas_dir):
    source = next(s for s in bodyparts3d_atlas.sources if s.name == "BodyParts3D")
    assert source.attribution == CREDIT
    assert source.licence == "CC-BY-SA-2.1-JP"
    notice = (bodyparts3d_atlas_dir / source.licence_file).read_text(encoding="utf-8")
    assert CREDIT in notice
    assert "Mitsuhashi" in notice and "Nucleic Acids Research" in notice


def test_triangle_budget(bodyparts3d_atlas: Atlas):
    total = sum(m.n_triangles for m in bodyparts3d_atlas.meshes.values())
    assert 400_000 <= total <= 1_000_000


def test_teaching_text_for_every_structure(bodyparts3d_atlas: Atlas):
    for s in bodyparts3d_atlas.structures:
        t = s.teaching
        if s.kind == "muscle":
            assert all(len(text) > 15 for text in (t.origin, t.insertion, t.innervation, t.action)), s.id
        else:
            assert len(t.notes) > 30 or len(t.origin) > 15, s.id


def test_multifidus_carries_level_and_side_data(bodyparts3d_atlas: Atlas):
    for side, code in (("left", 0), ("right", 1)):
        mesh = bodyparts3d_atlas.meshes[f"multifidus_{side}"]
        segment, sides = mesh.point_data["segment"], mesh.point_data["side"]
        assert segment.dtype == np.float32 and sides.dtype == np.int32
        assert set(np.unique(sides)) == {code}
        assert segment.max() >= 23.5 and segment.min() <= 19.0  # sacrum to above L1
        # Higher vertices have smaller level coordinates; beside L4's body the level is about L4.
        assert np.corrcoef(segment, mesh.vertices[:, 2])[0, 1] < -0.85
        l4 = np.abs(mesh.vertices[:, 2] - bodyparts3d_atlas.spine["L4"][2]) < 3.0
        assert 21.6 < np.median(segment[l4]) < 22.4


def _touching_pairs(atlas: Atlas, kinds=("muscle",), gap_mm: float = 2.0):
    ids = [s.id for s in atlas.structures if s.kind in kinds]
    trees = {sid: cKDTree(atlas.meshes[sid].vertices) for sid in ids}
    boxes = {sid: (atlas.meshes[sid].vertices.min(0), atlas.meshes[sid].vertices.max(0)) for sid in ids}
    for a, b in itertools.combinations(ids, 2):
        sa, sb = atlas.structure(a), atlas.structure(b)
        if sa.layer != sb.layer or sa.colour == sb.colour and sa.name == sb.name:
            continue  # the same muscle's two sides, or different layers
        (la, ha), (lb, hb) = boxes[a], boxes[b]
        if np.any(la > hb + gap_mm) or np.any(lb > ha + gap_mm):
            continue
        if trees[a].query(atlas.meshes[b].vertices, distance_upper_bound=gap_mm)[0].min() <= gap_mm:
            yield sa, sb


def test_neighbouring_muscles_in_a_layer_have_distinct_colours(bodyparts3d_atlas: Atlas):
    pairs = list(_touching_pairs(bodyparts3d_atlas))
    assert len(pairs) > 40
    alike = [(a.id, b.id, round(_delta_e(a.colour, b.colour), 1)) for a, b in pairs
             if a.name != b.name and _delta_e(a.colour, b.colour) < 9.0]
    assert not alike


def test_muscles_read_as_muscle_red_and_fascia_and_discs_do_not_look_like_bone(bodyparts3d_atlas: Atlas):
    for s in bodyparts3d_atlas.structures:
        if s.kind != "muscle":
            continue
        r, g, b = (int(s.colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
        hue, lightness, saturation = colorsys.rgb_to_hls(r, g, b)
        assert hue * 360 >= 330 or hue * 360 <= 30, s.id
        assert saturation > 0.3 and 0.25 < lightness < 0.75, s.id
    bone = bodyparts3d_atlas.structure("vertebra_l4").colour
    disc = bodyparts3d_atlas.structure("disc_l4_l5").colour
    assert _delta_e(disc, bone) > 20
    assert _lab(disc)[2] < 0  # bluish
    fascia = [s for s in bodyparts3d_atlas.structures if s.kind == "fascia"]
    for s in fascia:
        assert _delta_e(s.colour, bone) > 15, s.id


@pytest.mark.parametrize("sid", ["trapezius_transverse_right", "latissimus_dorsi_left", "serratus_posterior_superior_right"])
def test_thin_sheets_stay_sheets(bodyparts3d_atlas: Atlas, sid: str):
    tm = _trimesh(bodyparts3d_atlas.meshes[sid])
    mean_thickness = 2.0 * tm.volume / tm.area
    assert 1.5 < mean_thickness < 7.0
