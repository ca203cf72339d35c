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
    fat = np.array(parse_colour("fat", FAT_COLOUR))
    assert np.allclose(colours[segment < 21.0], healthy)          # L1-L3 keep their colour
    # Inside the range: marbling, each vertex between muscle and fat, about half of them fat.
    inside = colours[(segment > 22.2) & (segment < 23.8)]
    share = (inside - healthy) @ (fat - healthy) / np.dot(fat - healthy, fat - healthy)
    assert np.allclose(inside, healthy + share[:, None] * (fat - healthy), atol=1e-6)
    assert 0.4 < share.mean() < 0.6
    assert (share < 0.05).mean() > 0.3 and (share > 0.95).mean() > 0.3  # a pattern, not a flat tint
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


def test_marbling_is_deterministic_and_only_at_the_wasting_levels(real_atlas):
    """Two models with the same settings get identical per-vertex colours; fat shows only from L4 down."""
    params = AtrophyParams(amount=20, segments="L4-S1", side="both", fat=30)
    first, second = SceneModel(real_atlas), SceneModel(real_atlas)
    apply_atrophy(first, params)
    apply_atrophy(second, params)
    for sid in ("multifidus_left", "multifidus_right"):
        a, b = first.vertex_colours(sid), second.vertex_colours(sid)
        assert np.array_equal(a, b)
        healthy = np.array(parse_colour("colour", real_atlas.structure(sid).colour))
        segment = real_atlas.meshes[sid].point_data["segment"]
        changed = np.abs(a - healthy).sum(axis=1) > 1e-6
        assert not changed[segment < 21.55].any()  # nothing above the fall-off (L3-L4 disc is 21.5)
        in_range = changed[(segment >= 22.0) & (segment <= 24.0)]
        assert 0.15 < in_range.mean() < 0.6


def test_a_healthy_panel_after_an_atrophied_one_shows_no_fat(model):
    from viewer.figures.figure import set_panel_state
    from viewer.scene_options import SceneOptions

    set_panel_state(model, SceneOptions(), AtrophyParams(amount=30, segments="L4-S1", side="right", fat=40))
    assert model.vertex_colours("multifidus_right") is not None
    set_panel_state(model, SceneOptions(), None)
    assert all(model.vertex_colours(sid) is None for sid in model.atlas.structure_ids)
