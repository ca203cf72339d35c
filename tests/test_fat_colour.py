"""Fatty infiltration shows where the muscle wastes: at the chosen levels and side, not elsewhere."""

from __future__ import annotations

import numpy as np
import pytest

from viewer.atrophy import FAT_COLOUR, AtrophyParams, apply_atrophy
from viewer.checks import parse_colour
from viewer.model import SceneModel
from viewer.render import render_image


@pytest.fixture
def model(real_atlas):
    return SceneModel(real_atlas)


def test_fat_colours_only_the_wasting_levels_and_side(model):
    apply_atrophy(model, AtrophyParams(amount=30, segments="L4-S1", side="right", fat=50))
    segment = model.atlas.meshes["multifidus_right"].point_data["segment"]
    colours = model.vertex_colours("multifidus_right")
    healthy = np.array(parse_colour("colour", model.atlas.structure("multifidus_right").colour))
    halfway = 0.5 * healthy + 0.5 * np.array(parse_colour("fat", FAT_COLOUR))
    assert np.allclose(colours[segment < 21.0], healthy)          # L1-L3 keep their colour
    assert np.allclose(colours[(segment > 22.2) & (segment < 23.8)], halfway)
    assert model.vertex_colours("multifidus_left") is None
    apply_atrophy(model, None)
    assert model.vertex_colours("multifidus_right") is None


def test_fat_shows_in_the_picture_on_one_side(model):
    model.show_only(["multifidus"])
    apply_atrophy(model, AtrophyParams(amount=0, segments="L4-S1", side="right", fat=100))
    image = render_image(model, (240, 320), view="posterior").astype(int)
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    yellow = (g > 0.6 * r) & (r > 120) & (b < 0.75 * g)
    # Posterior view: the patient's right is on the right half of the picture.
    assert yellow[:, 125:].sum() > 200
    assert yellow[:, :115].sum() == 0


def test_a_healthy_panel_after_an_atrophied_one_shows_no_fat(model):
    from viewer.figures.figure import set_panel_state
    from viewer.scene_options import SceneOptions

    set_panel_state(model, SceneOptions(), AtrophyParams(amount=30, segments="L4-S1", side="right", fat=40))
    assert model.vertex_colours("multifidus_right") is not None
    set_panel_state(model, SceneOptions(), None)
    assert all(model.vertex_colours(sid) is None for sid in model.atlas.structure_ids)
