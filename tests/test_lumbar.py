"""The lumbar region rebuilt on BodyParts3D bones (issue 10): sizes, layout, midline, bone, atrophy, section.

The atlas is the shared BodyParts3D subset as ``dorsum atlas import`` makes it (the session fixture
``bodyparts3d_atlas`` in ``tests/conftest.py``), so these tests check the product, not a copy of it.
Published ranges are those of ``docs/atlas.md`` ("The lumbar region of an imported BodyParts3D atlas").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh

from viewer.atlas import Atlas, load_atlas
from viewer.atrophy import AtrophyParams
from viewer.measure import level_plane, measure_muscle, section_loops
from viewer.model import SceneModel

DISCS = ("L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1")
#: Healthy adult CSA per side (cm²): a band around the published means (see docs/atlas.md).
RANGES = {
    "multifidus": {"L1-L2": (1.5, 4.5), "L2-L3": (2.5, 6.0), "L3-L4": (4.5, 9.0), "L4-L5": (6.0, 11.5),
                   "L5-S1": (7.0, 12.0), "L3": (3.0, 7.0), "L4": (5.0, 10.0), "L5": (6.0, 11.0)},
    # L1-L2 Ivanac's mean ± 1 SD, L4-L5 from Fortin's mean - 1 SD; at L5-S1 the erector spinae is thinning into its aponeurosis.
    "erector_spinae": {"L1-L2": (16.0, 29.0), "L3-L4": (15.0, 26.0), "L4-L5": (12.2, 22.0), "L5-S1": (2.5, 12.0)},
    "quadratus_lumborum": {"L1-L2": (1.5, 6.0), "L2-L3": (2.5, 9.0), "L3-L4": (3.5, 11.0)},
    "psoas_major": {"L1-L2": (1.5, 8.5), "L2-L3": (5.0, 15.0), "L3-L4": (9.0, 20.0), "L4-L5": (11.0, 23.0),
                    "L5-S1": (9.0, 21.0), "L3": (7.0, 18.0), "L4": (9.0, 21.0)},
}


#: Muscles the lumbar rebuild replaces (each side), and what it adds.
REBUILT = ("multifidus", "longissimus_thoracis", "iliocostalis_lumborum", "quadratus_lumborum", "psoas_major")
ADDED = ("thoracolumbar_fascia", "interspinous_ligament")
#: Imported muscles that lie over the rebuilt ones and must not be pierced by them.
OVERLYING = tuple(f"{stem}_{side}" for side in ("left", "right")
                  for stem in ("latissimus_dorsi", "serratus_posterior_inferior", "gluteus_maximus"))


@pytest.fixture(scope="session")
def lumbar(bodyparts3d_atlas: Atlas) -> tuple[Atlas, dict]:
    ids = [f"{stem}_{side}" for stem in REBUILT for side in ("left", "right")] + list(ADDED)
    return bodyparts3d_atlas, {sid: bodyparts3d_atlas.meshes[sid] for sid in ids}


@pytest.fixture(scope="session")
def atlas(lumbar) -> Atlas:
    return lumbar[0]


def _section(atlas: Atlas, sid: str, level: str) -> list[np.ndarray]:
    mesh = atlas.meshes[sid]
    return [loop for loop in section_loops(mesh.vertices, mesh.faces, *level_plane(atlas, level)) if len(loop) > 2]


def _centroid(loops: list[np.ndarray]) -> np.ndarray:
    points = np.concatenate(loops)
    return points.mean(axis=0)


@pytest.mark.parametrize("muscle", sorted(RANGES))
def test_sizes_in_published_ranges_each_side(atlas: Atlas, muscle: str) -> None:
    levels = RANGES[muscle]
    result = measure_muscle(atlas, muscle, ",".join(levels))["levels"]
    for level, (low, high) in levels.items():
        for side in ("left", "right"):
            csa = result[level][side]["csa_cm2"]
            assert low <= csa <= high, f"{muscle} {level} {side}: {csa:.2f} cm² outside {low}-{high}"


def test_multifidus_grows_caudally_to_its_peak_at_l5_s1(atlas: Atlas) -> None:
    order = ("L1-L2", "L2-L3", "L3", "L3-L4", "L4", "L4-L5", "L5", "L5-S1")
    result = measure_muscle(atlas, "multifidus", ",".join(order))["levels"]
    for side in ("left", "right"):
        values = [result[level][side]["csa_cm2"] for level in order]
        assert all(b > a for a, b in zip(values, values[1:])), f"{side}: {values}"
        assert max(values) == values[-1]


def test_multifidus_carries_level_and_side_data(atlas: Atlas) -> None:
    for side, code in (("left", 0), ("right", 1)):
        mesh = atlas.meshes[f"multifidus_{side}"]
        assert mesh.point_data["side"].dtype == np.int32 and set(np.unique(mesh.point_data["side"])) == {code}
        segment = mesh.point_data["segment"]
        assert segment.dtype == np.float32 and segment.min() < 19.0 and segment.max() >= 24.0


@pytest.mark.parametrize("level", DISCS[:4])
def test_medial_to_lateral_order_and_contact(atlas: Atlas, level: str) -> None:
    for side in ("left", "right"):
        mf = _section(atlas, f"multifidus_{side}", level)
        lo = _section(atlas, f"longissimus_thoracis_{side}", level)
        il = _section(atlas, f"iliocostalis_lumborum_{side}", level)
        x = [abs(_centroid(loops)[0]) for loops in (mf, lo, il)]
        assert x[0] < x[1] < x[2], f"{level} {side}: |x| of multifidus, longissimus, iliocostalis {x}"
        gap = trimesh.points.PointCloud(np.concatenate(lo)).kdtree.query(np.concatenate(mf))[0].min()
        assert gap < 2.0, f"{level} {side}: multifidus and erector spinae {gap:.1f} mm apart"


def _transverse_plane_y(atlas: Atlas, vertebra: str) -> float:
    vertices = atlas.meshes[f"vertebra_{vertebra.lower()}"].vertices
    return float(vertices[np.abs(vertices[:, 0]) > 35.0][:, 1].mean())


@pytest.mark.parametrize("level,vertebra", [("L1-L2", "L2"), ("L2-L3", "L3"), ("L3-L4", "L3")])
def test_quadratus_lumborum_in_front_of_transverse_processes_lateral_to_psoas(atlas: Atlas, level: str,
                                                                              vertebra: str) -> None:
    tp_y = _transverse_plane_y(atlas, vertebra)
    for side in ("left", "right"):
        ql = _centroid(_section(atlas, f"quadratus_lumborum_{side}", level))
        psoas = _centroid(_section(atlas, f"psoas_major_{side}", level))
        assert ql[1] > tp_y, f"{level} {side}: QL centroid y {ql[1]:.1f} behind the transverse processes {tp_y:.1f}"
        assert abs(ql[0]) > abs(psoas[0])


@pytest.mark.parametrize("level", DISCS)
def test_psoas_beside_the_bodies_and_discs(atlas: Atlas, level: str) -> None:
    origin, _ = level_plane(atlas, level)
    for side, sign in (("left", -1), ("right", 1)):
        centre = _centroid(_section(atlas, f"psoas_major_{side}", level))
        assert sign * (centre[0] - origin[0]) > 15.0, "psoas lies beside the spine, on its own side"
        assert abs(centre[0] - origin[0]) < 70.0 and abs(centre[1] - origin[1]) < 35.0


def test_no_muscle_crosses_the_midline(atlas: Atlas, lumbar) -> None:
    """Left and right multifidus cannot overlap in any plane: each side keeps to its own half."""
    for sid in lumbar[1]:
        if sid.endswith("_left"):
            assert atlas.meshes[sid].vertices[:, 0].max() < 0.0, sid
        elif sid.endswith("_right"):
            assert atlas.meshes[sid].vertices[:, 0].min() > 0.0, sid


def _first_hits_along_y(atlas: Atlas, ids: list[str], z: np.ndarray) -> list[str]:
    """Structure first hit by each ray from behind (x = 0, height z, travelling anteriorly, +y)."""
    best = np.full(len(z), np.inf)
    owner = [""] * len(z)
    for sid in ids:
        mesh = atlas.meshes[sid]
        tri = mesh.vertices[mesh.faces]
        near = (tri[:, :, 0].min(axis=1) <= 0.0) & (tri[:, :, 0].max(axis=1) >= 0.0)
        tri = tri[near]
        if not len(tri):
            continue
        # In the plane x = 0 a ray is the point (z); find triangles containing it in (x, z), then their y there.
        a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
        for i, height in enumerate(z):
            p = np.array([0.0, height])
            v0, v1, v2 = (q[:, [0, 2]] for q in (a, b, c))
            d = (v1[:, 1] - v2[:, 1]) * (v0[:, 0] - v2[:, 0]) + (v2[:, 0] - v1[:, 0]) * (v0[:, 1] - v2[:, 1])
            ok = np.abs(d) > 1e-12
            safe = np.where(ok, d, 1.0)
            l1 = ((v1[:, 1] - v2[:, 1]) * (p[0] - v2[:, 0]) + (v2[:, 0] - v1[:, 0]) * (p[1] - v2[:, 1])) / safe
            l2 = ((v2[:, 1] - v0[:, 1]) * (p[0] - v2[:, 0]) + (v0[:, 0] - v2[:, 0]) * (p[1] - v2[:, 1])) / safe
            l3 = 1 - l1 - l2
            inside = ok & (l1 >= 0) & (l2 >= 0) & (l3 >= 0)
            if inside.any():
                y = (l1 * a[:, 1] + l2 * b[:, 1] + l3 * c[:, 1])[inside].min()
                if y < best[i]:
                    best[i], owner[i] = y, sid
    return owner


def test_rays_along_the_midline_hit_a_spinous_process_or_ligament_first(atlas: Atlas) -> None:
    shown = [s.id for s in atlas.structures if s.layer != "superficial"]
    top, bottom = atlas.spine["L1"][2], atlas.spine["S1"][2]
    z = np.linspace(bottom, top, 80)
    first = _first_hits_along_y(atlas, shown, z)
    good = sum(1 for sid in first if sid.startswith("vertebra") or sid == "sacrum" or "ligament" in sid)
    assert good >= 0.9 * len(z), sorted(first)


def _voxels(mesh, pitch: float) -> tuple[np.ndarray, np.ndarray]:
    """Voxels inside a closed (or nearly closed) surface, and the grid's corner (mm)."""
    from viewer.atlas_import.lumbar import _solid, _surface_points

    low = mesh.vertices.min(axis=0) - 2 * pitch
    cells = np.floor((_surface_points(mesh.vertices, mesh.faces, pitch / 2) - low) / pitch).astype(int)
    box = np.zeros(tuple(cells.max(axis=0) + 3), bool)
    box[tuple(cells.T)] = True
    return _solid(box), low


def test_under_two_percent_of_each_muscle_inside_bone(atlas: Atlas, lumbar) -> None:
    pitch = 0.5
    bones = [_voxels(atlas.meshes[s.id], pitch) for s in atlas.structures if s.kind == "bone"]
    for sid in lumbar[1]:
        if atlas.structure(sid).kind != "muscle":
            continue
        muscle, low = _voxels(atlas.meshes[sid], pitch)
        inside = np.zeros_like(muscle)
        for bone, corner in bones:
            offset = np.round((corner - low) / pitch).astype(int)
            lo = np.maximum(offset, 0)
            hi = np.minimum(offset + np.array(bone.shape), np.array(muscle.shape))
            if np.any(hi <= lo):
                continue
            inside[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] |= bone[lo[0] - offset[0]:hi[0] - offset[0],
                                                                  lo[1] - offset[1]:hi[1] - offset[1],
                                                                  lo[2] - offset[2]:hi[2] - offset[2]]
        fraction = (muscle & inside).sum() / muscle.sum()
        assert fraction < 0.02, f"{sid}: {100 * fraction:.1f}% of its volume inside bone"


def test_rebuilt_muscles_stay_deep_to_the_overlying_muscles(atlas: Atlas, lumbar) -> None:
    """Latissimus dorsi, serratus posterior inferior and gluteus maximus are not pierced (a sliver at most)
    where the muscles are rebuilt: below the T12 body (above it, both are BodyParts3D's own shapes)."""
    top = atlas.spine["T12"][2]
    for sid in lumbar[1]:
        if atlas.structure(sid).kind != "muscle":
            continue
        solid, low = _voxels(atlas.meshes[sid], 1.0)
        for other in OVERLYING:
            vertices = atlas.meshes[other].vertices
            cells = np.floor(vertices[vertices[:, 2] < top] - low).astype(int)
            ok = np.all((cells >= 0) & (cells < np.array(solid.shape)), axis=1)
            inside = solid[tuple(cells[ok].T)].sum()
            assert inside <= 0.02 * len(cells), f"{other}: {inside} of {len(cells)} vertices inside {sid}"


def test_meshes_closed_without_crumbs_and_within_budget(lumbar) -> None:
    total = 0
    for sid, mesh in lumbar[1].items():
        solid = trimesh.Trimesh(mesh.vertices, mesh.faces, process=True)
        assert solid.is_watertight and solid.volume > 0, sid
        assert min(len(p.faces) for p in solid.split(only_watertight=False)) >= 40, sid
        total += len(mesh.faces)
    assert total < 160_000


def test_atrophy_is_exact_on_the_rebuilt_multifidus(atlas: Atlas) -> None:
    params = AtrophyParams(amount=30.0, segments="L4-S1", side="right")
    result = measure_muscle(atlas, "multifidus", "L3-L4,L4-L5,L5-S1", params=params)["levels"]
    for disc in ("L4-L5", "L5-S1"):
        assert result[disc]["right"]["change_percent"] == pytest.approx(-30.0, abs=2.0)
        assert abs(result[disc]["left"]["change_percent"]) < 1.0
    assert abs(result["L3-L4"]["right"]["change_percent"]) < 1.0


def _parity_area(mesh: trimesh.Trimesh, origin: np.ndarray, normal: np.ndarray, step: float = 0.25) -> float:
    """Section area (mm²) by an independent method: trimesh's unordered cut segments, and grid points
    counted inside by the even-odd rule (a ray along the plane's right axis crossing them)."""
    from viewer.figures.section import slice_axes

    lines = trimesh.intersections.mesh_plane(mesh, normal, origin)
    right, anterior = slice_axes(normal)
    flat = np.stack([(lines - origin) @ right, (lines - origin) @ anterior], axis=-1)  # (n, 2, 2)
    lo, hi = flat.reshape(-1, 2).min(axis=0), flat.reshape(-1, 2).max(axis=0)
    xs, ys = np.arange(lo[0], hi[0], step), np.arange(lo[1] + step / 2, hi[1], step)
    (x1, y1), (x2, y2) = flat[:, 0].T, flat[:, 1].T
    inside = 0
    for y in ys:
        crosses = (y1 > y) != (y2 > y)
        xc = x1[crosses] + (y - y1[crosses]) * (x2[crosses] - x1[crosses]) / (y2[crosses] - y1[crosses])
        inside += int(((xc[None, :] > xs[:, None]).sum(axis=1) % 2).sum())
    return inside * step * step


def test_measure_agrees_with_an_independent_cut(atlas: Atlas) -> None:
    measured = measure_muscle(atlas, "multifidus", "L4-L5,L4")["levels"]
    mesh = atlas.meshes["multifidus_right"]
    solid = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    for level in ("L4-L5", "L4"):
        area = _parity_area(solid, *level_plane(atlas, level))
        assert area / 100.0 == pytest.approx(measured[level]["right"]["csa_cm2"], rel=0.02)


def test_measure_by_group_and_body_level(atlas: Atlas) -> None:
    group = measure_muscle(atlas, "erector_spinae", "L3-L4,L4")["levels"]
    parts = [measure_muscle(atlas, m, "L3-L4,L4")["levels"] for m in ("longissimus", "iliocostalis")]
    for level in ("L3-L4", "L4"):
        total = sum(p[level]["left"]["csa_cm2"] for p in parts)
        assert group[level]["left"]["csa_cm2"] == pytest.approx(total, rel=1e-9)


def test_section_cuts_disc_and_vertebra_in_the_disc_plane(atlas: Atlas) -> None:
    from viewer.figures.section import section_drawing

    for disc in ("L3-L4", "L4-L5", "L5-S1"):
        drawing = section_drawing(SceneModel(atlas), disc)
        kinds = {part.key: part.kind for part in drawing.parts}
        upper = f"vertebra_{disc.split('-')[0].lower()}"
        assert not drawing.notes, drawing.notes  # nothing borrowed from below the plane
        assert kinds.get(f"disc_{disc.replace('-', '_').lower()}") == "disc"
        assert kinds.get(upper) == "bone"  # its laminae and spinous process, in the plane itself
        muscles = {part.key for part in drawing.parts if part.kind == "muscle"}
        for name in ("multifidus", "longissimus", "psoas_major"):
            assert {f"{name}/left", f"{name}/right"} <= muscles, (disc, name)


def test_erector_spinae_lateral_to_the_multifidus_at_l5_s1(atlas: Atlas) -> None:
    """Down to the sacrum the longissimus lies beside the multifidus, touching it, not over it."""
    for side in ("left", "right"):
        mf = _section(atlas, f"multifidus_{side}", "L5-S1")
        lo = _section(atlas, f"longissimus_thoracis_{side}", "L5-S1")
        assert mf and lo, f"{side}: no multifidus or longissimus in the L5-S1 plane"
        assert abs(_centroid(lo)[0]) > abs(_centroid(mf)[0]) + 10.0, side
        gap = trimesh.points.PointCloud(np.concatenate(lo)).kdtree.query(np.concatenate(mf))[0].min()
        assert gap < 2.0, f"{side}: multifidus and longissimus {gap:.1f} mm apart at L5-S1"


def test_latissimus_aponeurosis_dips_to_the_spinous_processes(atlas: Atlas) -> None:
    """Over L4-S1 the latissimus aponeurosis lies behind the paraspinal bulges and dips into the
    midline furrow over the spinous processes (it is moved back to make room for the erector spinae)."""
    origin, normal = level_plane(atlas, "L4-L5")

    def cut(sid: str) -> np.ndarray:  # world points of the section, (n, 3) mm
        mesh = atlas.meshes[sid]
        path = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False).section(normal, origin)
        return np.asarray(path.vertices)

    lat = cut("latissimus_dorsi_right")
    for sid in ("longissimus_thoracis_right", "multifidus_right"):
        muscle = cut(sid)
        # Per 2 mm column: the muscle's back surface lies in front of the aponeurosis' front surface.
        for x in np.arange(muscle[:, 0].min() + 2.0, muscle[:, 0].max() - 2.0, 2.0):
            sheet = lat[np.abs(lat[:, 0] - x) < 1.5, 1]
            back = muscle[np.abs(muscle[:, 0] - x) < 1.5, 1].min()
            behind_sheet = sheet[sheet < back + 15.0]  # the sheet's part behind the muscle, not the flank
            assert len(behind_sheet) and behind_sheet.max() < back + 1.0, f"{sid} reaches behind latissimus at x={x:.0f}"
    # The midline furrow: the back of the aponeurosis lies farther forward on the midline than over the bulge.
    midline = lat[np.abs(lat[:, 0]) < 3.0, 1].min()
    over_bulge = lat[np.abs(lat[:, 0] - 25.0) < 3.0, 1].min()
    assert midline > over_bulge + 5.0, f"no midline furrow: {midline:.1f} vs {over_bulge:.1f} mm"


def test_credit_free_test_atlas_lives_outside_the_repository(atlas: Atlas) -> None:
    assert Path(__file__).resolve().parents[1] not in Path(atlas.root).resolve().parents


@pytest.mark.parametrize("level,vertebra,ratio", [("L3-L4", "L3", 1.3), ("L4-L5", "L4", 1.05)])
def test_erector_spinae_wider_than_deep_behind_the_transverse_processes(atlas: Atlas, level: str,
                                                                       vertebra: str, ratio: float) -> None:
    tp_y = _transverse_plane_y(atlas, vertebra)
    origin, normal = level_plane(atlas, level)
    for side in ("left", "right"):
        points = []
        for sid in (f"longissimus_thoracis_{side}", f"iliocostalis_lumborum_{side}"):
            mesh = atlas.meshes[sid]
            path = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False).section(normal, origin)
            points.append(np.asarray(path.vertices))
        es = np.concatenate(points)
        width, depth = np.ptp(es[:, 0]), np.ptp(es[:, 1])
        assert width > ratio * depth, f"{level} {side}: erector spinae {width:.0f} mm wide, {depth:.0f} mm deep"
        assert es[:, 1].mean() < tp_y, f"{level} {side}: erector spinae not behind the transverse processes"


def test_section_names_no_muscle_the_plane_only_grazes(atlas: Atlas) -> None:
    """At L5-S1 the plane grazes gluteus maximus (under 0.3 cm²): drawn, but no label points at a speck."""
    from viewer.figures.section import MIN_LABELLED_CM2, section_drawing

    drawing = section_drawing(SceneModel(atlas), "L5-S1")
    drawn = {part.key for part in drawing.parts if part.kind == "muscle"}
    labelled = {label.key for label in drawing.labels}
    assert "gluteus_maximus/left" in drawn and "gluteus_maximus/left" not in labelled
    assert all(label.csa_cm2 >= MIN_LABELLED_CM2 for label in drawing.labels)
    assert {"multifidus/left", "longissimus/right", "psoas_major/left"} <= labelled


def test_serratus_posterior_inferior_lies_under_latissimus_not_inside_it(atlas: Atlas) -> None:
    """BodyParts3D puts 11 % of serratus posterior inferior inside latissimus dorsi; the import carves it."""
    import manifold3d

    def solid(sid: str):
        mesh = atlas.meshes[sid]
        return manifold3d.Manifold(manifold3d.Mesh(vert_properties=np.asarray(mesh.vertices, np.float32),
                                                   tri_verts=np.asarray(mesh.faces, np.uint32)))

    for side in ("left", "right"):
        deep, over = solid(f"serratus_posterior_inferior_{side}"), solid(f"latissimus_dorsi_{side}")
        assert deep.status() == manifold3d.Error.NoError and over.status() == manifold3d.Error.NoError
        assert (deep ^ over).volume() < 0.01 * deep.volume(), side
