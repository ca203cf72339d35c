"""Fat as MRI shows it: inside the fascial boundary, the asked fraction of the drawn section, the
MRI-style slice, and the total/lean/fat/grade numbers of 'dorsum measure' against independent areas."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh

from viewer.atrophy import FAT_COLOUR, AtrophyParams, apply_atrophy
from viewer.checks import parse_colour
from viewer.fat import GRADE_SCALE, fat_grade, section_composition
from viewer.figures.section import draw_section, section_drawing
from viewer.measure import disc_plane, measure_muscle
from viewer.model import SceneModel

SIZE = (900, 600)


def _rgb(colour: str) -> np.ndarray:
    return np.array(parse_colour("c", colour)) * 255.0


def _near(image: np.ndarray, colour: np.ndarray, tolerance: float = 12.0) -> np.ndarray:
    return np.abs(image[..., :3].astype(float) - colour).max(axis=-1) <= tolerance


def _multifidus_slice(atlas, params: AtrophyParams | None, style: str = "diagram") -> np.ndarray:
    model = SceneModel(atlas)
    model.show_only(["multifidus", "skeleton"])
    if params is not None:
        apply_atrophy(model, params)
    return draw_section(section_drawing(model, "L4-L5", style=style), SIZE, labels=False, scale_bar=False)


def _right_half(image: np.ndarray) -> np.ndarray:
    """The patient's right: the left half of a radiological picture."""
    return image[:, : image.shape[1] // 2]


@pytest.mark.parametrize("fat", [10.0, 30.0, 60.0])
def test_fat_area_on_the_drawn_section_is_the_asked_fraction(real_atlas, fat):
    image = _right_half(_multifidus_slice(real_atlas, AtrophyParams(amount=0, segments="L4-S1", side="right",
                                                                    fat=fat)))
    fat_pixels = _near(image, _rgb(FAT_COLOUR)).sum()
    muscle_pixels = _near(image, _rgb(real_atlas.structure("multifidus_right").colour)).sum()
    measured = 100.0 * fat_pixels / (fat_pixels + muscle_pixels)
    assert abs(measured - fat) <= 3.0, measured


def test_fat_fraction_with_wasting_counts_the_vacated_space(real_atlas):
    """30% lost and 60% fat: the healthy outline stays, and 60% of what it encloses is fat."""
    params = AtrophyParams(amount=30, segments="L4-S1", side="right", fat=60)
    image = _right_half(_multifidus_slice(real_atlas, params))
    fat_pixels = _near(image, _rgb(FAT_COLOUR)).sum()
    muscle_pixels = _near(image, _rgb(real_atlas.structure("multifidus_right").colour)).sum()
    measured = 100.0 * fat_pixels / (fat_pixels + muscle_pixels)
    reported = measure_muscle(real_atlas, "multifidus", ["L4-L5"], params)["levels"]["L4-L5"]["right"]
    assert abs(reported["fat_percent"] - 60.0) < 0.5
    assert abs(measured - reported["fat_percent"]) <= 3.0, measured


def test_no_white_inside_the_healthy_outline_unless_retracted(real_atlas):
    healthy = _right_half(_multifidus_slice(real_atlas, None))
    inside = _near(healthy, _rgb(real_atlas.structure("multifidus_right").colour))
    # Away from the outline's anti-aliased edge and the outlines drawn inside (rotatores hidden).
    from scipy import ndimage

    inside = ndimage.binary_erosion(inside, iterations=3)
    assert inside.sum() > 2000

    def white(image: np.ndarray) -> int:
        return int((image[..., :3].min(axis=-1) > 240)[inside].sum())

    filled = AtrophyParams(amount=40, segments="L4-S1", side="right", fat=0)
    retracted = AtrophyParams(amount=40, segments="L4-S1", side="right", fat=0, retracted=True)
    assert white(_right_half(_multifidus_slice(real_atlas, filled))) == 0
    assert white(_right_half(_multifidus_slice(real_atlas, retracted))) > 300  # the empty space this replaces


def test_fat_pattern_is_deterministic(real_atlas):
    params = AtrophyParams(amount=10, segments="L4-S1", side="right", fat=30)
    assert np.array_equal(_multifidus_slice(real_atlas, params), _multifidus_slice(real_atlas, params))


def test_mri_style_is_grey_with_fat_brighter_than_muscle(real_atlas):
    healthy = _multifidus_slice(real_atlas, None, style="mri").astype(int)
    fatty = _multifidus_slice(real_atlas, AtrophyParams(amount=0, segments="L4-S1", side="right", fat=40),
                              style="mri").astype(int)
    for image in (healthy, fatty):
        assert np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2])
    changed = np.abs(fatty[..., 0] - healthy[..., 0]) > 40
    # The fat is on the patient's right only (the picture's left half) and brighter than the muscle it replaced.
    # (the atlas' right multifidus reaches a little over the midline, so the check stops short of it)
    assert changed[:, : SIZE[0] // 2].sum() > 500
    assert changed[:, int(0.6 * SIZE[0]) :].sum() == 0
    assert (healthy[..., 0][changed] < 100).all()  # only muscle turned to fat
    assert fatty[..., 0][changed].mean() > healthy[..., 0][changed].mean() + 100
    # Subcutaneous fat (bright) behind the muscles, air (black) outside the body.
    from viewer.figures.section import MRI_GREY

    column = healthy[:, SIZE[0] // 2, 0]
    assert (np.abs(column - MRI_GREY["subcutaneous"]) <= 1).sum() > 5
    assert (healthy[..., 0] < 20).sum() > 500


def _grid_area(vertices: np.ndarray, faces: np.ndarray, origin: np.ndarray, normal: np.ndarray,
               cell: float = 0.2) -> float:
    """Section area (mm²) by counting grid points inside the cut (even-odd ray crossings against the
    plane/triangle intersection segments of trimesh): independent of Dorsum's own section code."""
    lines = trimesh.intersections.mesh_plane(trimesh.Trimesh(vertices, faces, process=False), normal, origin)
    u = np.cross(normal, [0.0, 0.0, 1.0] if abs(normal[2]) < 0.9 else [1.0, 0.0, 0.0])
    u /= np.linalg.norm(u)
    v = np.cross(normal, u)
    flat = np.stack([(lines - origin) @ u, (lines - origin) @ v], axis=-1)  # (k, 2 ends, 2)
    low, high = flat.reshape(-1, 2).min(axis=0), flat.reshape(-1, 2).max(axis=0)
    xs = np.arange(low[0], high[0], cell) + cell / 2
    ys = np.arange(low[1], high[1], cell) + cell / 2
    (x0, y0), (x1, y1) = flat[:, 0].T, flat[:, 1].T
    inside = 0
    for y in ys:
        spans = (y0 > y) != (y1 > y)
        cross_x = x0[spans] + (y - y0[spans]) * (x1[spans] - x0[spans]) / (y1[spans] - y0[spans])
        inside += int((np.sum(cross_x[None, :] > xs[:, None], axis=1) % 2 == 1).sum())
    return inside * cell * cell


def test_json_total_lean_fat_against_independent_areas(real_atlas, capsys):
    from viewer.cli import main

    params = AtrophyParams(amount=30, segments="L4-S1", side="right", fat=45)
    model = SceneModel(real_atlas)
    apply_atrophy(model, params)
    origin, normal = disc_plane(real_atlas, "L4-L5")
    mesh = real_atlas.meshes["multifidus_right"]
    healthy_area = _grid_area(mesh.vertices, mesh.faces, origin, normal) / 100.0
    shown_area = _grid_area(model.vertices("multifidus_right"), mesh.faces, origin, normal) / 100.0
    assert main(["measure", "--levels", "L3-L4,L4-L5", "--atrophy", "30", "--segments", "L4-S1", "--side", "right",
                 "--fat", "45", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    right = result["levels"]["L4-L5"]["right"]
    assert right["csa_cm2"] == pytest.approx(shown_area, rel=0.02)  # the drawn (retracted) outline, as before
    assert right["total_cm2"] == pytest.approx(healthy_area, rel=0.02)  # the kept fascial boundary
    assert right["fat_percent"] == pytest.approx(45.0, abs=0.01)
    assert right["lean_cm2"] == pytest.approx(right["total_cm2"] * (1 - right["fat_percent"] / 100), abs=1e-9)
    assert right["grade"] == 1 and "Kjaer" in result["grade_scale"]
    for where in (result["levels"]["L4-L5"]["left"], result["levels"]["L3-L4"]["right"]):
        assert where["fat_percent"] == 0.0 and where["lean_cm2"] == where["total_cm2"] == where["csa_cm2"]
        assert where["grade"] == 0


def test_retracted_measures_inside_the_retracted_outline(real_atlas):
    params = AtrophyParams(amount=30, segments="L4-S1", side="right", fat=20, retracted=True)
    right = measure_muscle(real_atlas, "multifidus", ["L4-L5"], params)["levels"]["L4-L5"]["right"]
    assert right["total_cm2"] == right["csa_cm2"]
    assert right["lean_cm2"] == pytest.approx(0.8 * right["csa_cm2"])
    assert params.as_dict()["retracted"] is True


def test_measure_table_names_the_columns_and_the_scale(fixture_atlas_dir, capsys):
    from viewer.cli import main

    assert main(["measure", "--atlas", str(fixture_atlas_dir), "--levels", "L4-L5", "--fat", "55",
                 "--segments", "L4-S1", "--side", "left"]) == 0
    out = capsys.readouterr().out
    assert "total" in out and "lean" in out and "grade" in out and GRADE_SCALE in out
    left = next(line for line in out.splitlines() if line.startswith("L4-L5") and " left " in line)
    assert left.rstrip().endswith("2") and "55.0%" in left


def test_composition_rules():
    assert section_composition(700.0, 700.0, 0.0, False) == section_composition(700.0, 700.0, 0.0, True)
    filled = section_composition(700.0, 490.0, 0.1, False)  # 30% vacated, 10% asked: the vacated space is fat
    assert filled.total_mm2 == 700.0 and filled.fat_fraction == pytest.approx(0.3) and filled.intramuscular == 0
    more = section_composition(700.0, 490.0, 0.6, False)
    assert more.fat_fraction == 0.6 and more.lean_mm2 == pytest.approx(280.0)
    assert more.intramuscular == pytest.approx((0.6 - 0.3) / 0.7)
    assert [fat_grade(p) for p in (0, 19.9, 20, 50, 50.1, 100)] == [0, 0, 1, 1, 2, 2]


def test_lesson_style_key(real_atlas):
    from viewer.figures.lesson import LessonError, parse_lesson

    good = {"figures": [{"output": "a.png", "kind": "section", "style": "mri",
                         "atrophy": {"amount": 10, "retracted": True}}]}
    lesson = parse_lesson(good, real_atlas)
    assert lesson.figures[0].panels[0].style == "mri" and lesson.figures[0].panels[0].atrophy.retracted
    with pytest.raises(LessonError, match="style"):
        parse_lesson({"figures": [{"output": "a.png", "kind": "section", "style": "ct"}]}, real_atlas)
    with pytest.raises(LessonError, match="retracted"):
        parse_lesson({"figures": [{"output": "a.png", "atrophy": {"amount": 10, "retracted": "yes"}}]}, real_atlas)


def test_body_outline_encloses_the_muscles_with_subcutaneous_fat(real_atlas):
    from viewer.body import SUBCUTANEOUS_MM
    from viewer.figures.section import slice_axes, to_slice
    from viewer.measure import section_loops

    model = SceneModel(real_atlas)
    drawing = section_drawing(model, "L4-L5", style="mri")
    skin, fascia = drawing.body.skin, drawing.body.fascia
    radii = np.hypot(*skin.T) - np.hypot(*fascia.T)
    assert np.allclose(radii, SUBCUTANEOUS_MM)
    from matplotlib.path import Path

    origin, normal = disc_plane(real_atlas, "L4-L5")
    axes = slice_axes(normal)
    inside = Path(fascia)
    for sid in ("multifidus_right", "longissimus_left", "iliocostalis_right"):
        mesh = real_atlas.meshes[sid]
        for loop in section_loops(mesh.vertices, mesh.faces, origin, normal):
            assert inside.contains_points(to_slice(loop, origin, axes), radius=1.0).mean() > 0.98


def test_shot_section_mri_cli(tmp_path, capsys):
    from PIL import Image

    from viewer.cli import main

    out = tmp_path / "mri.png"
    assert main(["shot", "--out", str(out), "--section", "L4-L5", "--style", "mri", "--size", "640x480",
                 "--labels", "multifidus", "--atrophy", "20", "--segments", "L4-S1", "--side", "right",
                 "--fat", "40"]) == 0
    image = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert image.shape == (480, 640, 3)
    assert np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2])
    assert (image[..., 0] < 20).sum() > 100  # air outside the body, as on an MR image
    assert main(["shot", "--out", str(tmp_path / "x.png"), "--section", "L9-L5"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_gui_table_cell_shows_total_lean_fat_and_grade():
    from viewer.app.atrophy_panel import csa_text

    entry = {"csa_cm2": 4.91, "baseline_cm2": 7.02, "change_percent": -30.0, "total_cm2": 7.02, "lean_cm2": 4.21,
             "fat_percent": 40.0, "grade": 1}
    text = csa_text(entry)
    assert text.splitlines()[0] == "7.02 → 4.91 cm² (−30%)"
    assert text.splitlines()[1] == "total 7.02, lean 4.21 cm², fat 40% (grade 1)"
    healthy = dict(entry, csa_cm2=7.02, change_percent=0.0, lean_cm2=7.02, fat_percent=0.0, grade=0)
    assert csa_text(healthy) == "7.02 cm²"


def test_ghost_shows_the_healthy_shape_only_where_the_muscle_wasted(real_atlas):
    from viewer.render import render_image

    def picture(ghost: bool) -> np.ndarray:
        model = SceneModel(real_atlas)
        model.show_only(["multifidus"])
        apply_atrophy(model, AtrophyParams(amount=50, segments="L4-S1", side="right", ghost=ghost))
        return render_image(model, (320, 480), view="posterior").astype(int)

    with_ghost, without = picture(True), picture(False)
    changed = np.abs(with_ghost - without).sum(axis=-1) > 30
    # Posterior view: the patient's right is the picture's right half; the left side did not waste.
    assert changed[:, 170:].sum() > 200
    assert changed[:, :150].sum() == 0
    assert AtrophyParams(ghost=True).as_dict()["ghost"] is True and "ghost" not in AtrophyParams().as_dict()


def test_gui_ghost_toggle(qtbot, real_atlas):
    from viewer.app.atrophy_panel import AtrophyPanel

    model = SceneModel(real_atlas)
    panel = AtrophyPanel(model, lambda title, apply, merge=None: apply())
    qtbot.addWidget(panel)
    panel.amount.setValue(20)
    qtbot.waitUntil(lambda: model.atrophy is not None, timeout=60000)
    assert not model.atrophy.ghost
    panel.ghost.setChecked(True)
    qtbot.waitUntil(lambda: model.atrophy.ghost, timeout=60000)
    assert model.atrophy.amount == 20


def test_state_file_keeps_retracted_and_ghost(real_atlas, tmp_path):
    from viewer.session import apply_session, capture_session, load_session, save_session

    model = SceneModel(real_atlas)
    apply_atrophy(model, AtrophyParams(amount=0, segments="L4-S1", side="left", fat=20, retracted=True, ghost=True))
    path = save_session(tmp_path / "s.toml", capture_session(model))
    again = SceneModel(real_atlas)
    apply_session(load_session(path), again)
    assert again.atrophy.retracted and again.atrophy.ghost and again.atrophy.fat == 20


def test_section_labels_are_untangled():
    """Two leader lines that cross, and one passing over another's anchor, are reassigned to their slots."""
    from viewer.figures import compose
    from viewer.figures.compose import Box
    from viewer.figures.labels import LabelLayout, PlacedLabel, segments_cross
    from viewer.figures.section import untangle_section_labels

    typeface = compose.font(14)
    slots = [(100.0, 100.0), (100.0, 130.0), (100.0, 160.0)]
    anchors = [(300.0, 170.0), (200.0, 100.0), (400.0, 120.0)]  # crossing each other as given
    placed = tuple(PlacedLabel(f"L{i}", anchor, "left", Box(40, int(y) - 8, 58, 16), (x, y))
                   for i, (anchor, (x, y)) in enumerate(zip(anchors, slots)))
    result = untangle_section_labels(LabelLayout(placed, ()), typeface)
    lines = [(label.start, label.anchor) for label in result.placed]
    assert len(lines) == 3 and sorted(label.text for label in result.placed) == ["L0", "L1", "L2"]
    for i in range(3):
        for j in range(i + 1, 3):
            assert not segments_cross(*lines[i], *lines[j])


def test_skin_is_drawn_only_when_asked(real_atlas, tmp_path):
    from PIL import Image

    from viewer.body import skin_surface
    from viewer.cli import main
    from viewer.figures.lesson import parse_lesson

    vertices, faces = skin_surface(real_atlas)
    assert len(faces) > 1000 and np.isfinite(vertices).all()
    plain, skin = tmp_path / "plain.png", tmp_path / "skin.png"
    common = ["--only", "multifidus", "skeleton", "--view", "posterior", "--size", "320x480"]
    assert main(["shot", "--out", str(plain), *common]) == 0
    assert main(["shot", "--out", str(skin), "--skin", *common]) == 0
    a = np.asarray(Image.open(plain).convert("RGB")).astype(int)
    b = np.asarray(Image.open(skin).convert("RGB")).astype(int)
    changed = np.abs(a - b).sum(axis=-1) > 20
    assert changed.mean() > 0.05  # the translucent trunk over the lumbar region
    assert not changed[:40].any()  # nothing above T12: the skull and neck are as before
    lesson = parse_lesson({"figures": [{"output": "a.png", "skin": True}]}, real_atlas)
    assert lesson.figures[0].panels[0].scene.skin
