"""Axial cross-section panel: cut faces in their colours, radiological orientation, CSA labels = measure."""

from __future__ import annotations

import numpy as np

from viewer.figures.section import draw_section, section_drawing
from viewer.measure import measure_muscle
from viewer.model import SceneModel


def blue_pixels(image: np.ndarray) -> np.ndarray:
    r, g, b = (image[..., i].astype(int) for i in range(3))
    return (b > 150) & (r < 80) & (g < 80)


def wasted_left_multifidus(atlas) -> SceneModel:
    """The fixture with the left multifidus thinned to 60% across (about a third of its area lost)."""
    model = SceneModel(atlas)
    vertices = atlas.meshes["mf_left"].vertices
    centre = vertices.mean(axis=0)
    model.set_vertices("mf_left", centre + (vertices - centre) * np.array([0.6, 0.6, 1.0]))
    return model


def test_csa_labels_equal_the_measurement(fixture_atlas):
    model = wasted_left_multifidus(fixture_atlas)
    drawing = section_drawing(model, "L4-L5")
    measured = measure_muscle(model, "multifidus", ["L4-L5"])["levels"]["L4-L5"]
    labels = {label.side: label for label in drawing.labels if label.muscle == "multifidus"}
    assert set(labels) == {"left", "right"}
    for side in ("left", "right"):
        assert labels[side].csa_cm2 == measured[side]["csa_cm2"]
        assert f"{measured[side]['csa_cm2']:.2f} cm²" in labels[side].text
    assert labels["left"].csa_cm2 < 0.5 * labels["right"].csa_cm2


def test_section_is_radiological_and_shows_the_wasting(fixture_atlas):
    model = wasted_left_multifidus(fixture_atlas)
    image = draw_section(section_drawing(model, "L4-L5"), (400, 300))
    assert image.shape == (300, 400, 3)
    blue = blue_pixels(image)
    # Patient's right on the picture's left: the healthy right multifidus is the bigger blue face there.
    picture_left, picture_right = blue[:, :200].sum(), blue[:, 200:].sum()
    assert picture_left > 1.8 * picture_right > 0
    bone = (np.abs(image[..., :3].astype(int) - (244, 238, 222)).sum(axis=-1) < 6)
    rows = np.flatnonzero(bone.any(axis=1))
    blue_rows = np.flatnonzero(blue.any(axis=1))
    assert rows.mean() < blue_rows.mean()  # the fixture bone is anterior: above the muscles


def test_hidden_muscles_are_not_cut(fixture_atlas):
    model = SceneModel(fixture_atlas)
    model.show_only(["deep", "skeleton"])
    drawing = section_drawing(model, "L4-L5")
    assert {part.key for part in drawing.parts} == {"bone", "multifidus/left", "multifidus/right"}
    image = draw_section(drawing, (320, 240), labels=False)
    assert blue_pixels(image).sum() > 100


def test_real_atlas_section_at_l4_l5(real_atlas):
    model = SceneModel(real_atlas)
    drawing = section_drawing(model, "L4-L5")
    measured = measure_muscle(model, "multifidus", ["L4-L5"])["levels"]["L4-L5"]
    multifidus = {label.side: label.csa_cm2 for label in drawing.labels if label.muscle == "multifidus"}
    assert multifidus == {side: measured[side]["csa_cm2"] for side in ("left", "right")}
    assert any(part.kind == "bone" for part in drawing.parts)


def test_lesson_section_labels_equal_dorsum_measure(real_atlas, capsys):
    """The section panel of a lesson with one-sided atrophy shows the numbers 'dorsum measure --json' prints."""
    import json

    from viewer.atrophy import AtrophyParams
    from viewer.cli import main
    from viewer.figures.figure import set_panel_state
    from viewer.scene_options import SceneOptions

    params = AtrophyParams(amount=35, segments="L4-L5", side="left", fat=30)
    model = SceneModel(real_atlas)
    set_panel_state(model, SceneOptions(hide=("superficial",)), params)
    drawing = section_drawing(model, "L4-L5")
    shown = {label.side: label for label in drawing.labels if label.muscle == "multifidus"}
    assert main(["measure", "--levels", "L4-L5", "--atrophy", "35", "--segments", "L4-L5", "--side", "left",
                 "--fat", "30", "--json"]) == 0
    measured = json.loads(capsys.readouterr().out)["levels"]["L4-L5"]
    for side in ("left", "right"):
        assert shown[side].csa_cm2 == measured[side]["csa_cm2"]
        assert f"{measured[side]['csa_cm2']:.2f} cm²" in shown[side].text
    assert abs(measured["left"]["change_percent"] + 35) < 1.0
