"""The selection highlight: blue and outlined, never a colour that reads as fat (yellow) or bone."""

from __future__ import annotations

import numpy as np
import pytest

from viewer.atrophy import AtrophyParams, apply_atrophy
from viewer.model import SceneModel
from viewer.render import SceneRenderer, offscreen_plotter

SIZE = (240, 320)


def fat_like(image: np.ndarray) -> np.ndarray:
    """Pixels in the hues of fat and of the old orange-yellow highlight: yellow to orange, saturated."""
    r, g, b = (image[..., i].astype(int) for i in range(3))
    return (g > 0.45 * r) & (r > 120) & (b < 0.75 * g)


def outline_blue(image: np.ndarray) -> np.ndarray:
    r, g, b = (image[..., i].astype(int) for i in range(3))
    return (b > r + 60) & (b > g + 20)


@pytest.fixture
def pictures():
    """Render (model, structure to highlight) before and after highlighting it."""
    made = []

    def render(model: SceneModel, sid: str, prepare=lambda: None) -> tuple[np.ndarray, np.ndarray]:
        plotter = offscreen_plotter(SIZE)
        renderer = SceneRenderer(plotter, model)
        made.append((renderer, plotter))
        prepare()  # after the renderer exists, so it follows the change as the live viewer does
        renderer.set_view("posterior")
        before = renderer.screenshot(SIZE)
        model.set_highlight(sid)
        return before, renderer.screenshot(SIZE)

    yield render
    for renderer, plotter in made:
        renderer.close()
        plotter.close()


def test_highlight_is_blue_and_outlined_not_yellow(fixture_atlas, pictures):
    model = SceneModel(fixture_atlas)
    model.show_only(["sheet"])  # red, like muscle
    before, after = pictures(model, "sheet")
    drawn = before.sum(axis=2) < 3 * 250
    assert fat_like(before)[drawn].mean() == 0.0
    assert fat_like(after)[drawn].mean() == 0.0  # nothing of the selected muscle looks fatty
    # Bluer than before wherever it is drawn, and a blue outline around it.
    assert after[..., 2][drawn].mean() > before[..., 2][drawn].mean() + 30
    assert outline_blue(after).sum() > 100 and outline_blue(before).sum() == 0
    model.set_highlight(None)


def test_highlight_keeps_the_fat_of_a_wasted_muscle_true(fixture_atlas, pictures):
    model = SceneModel(fixture_atlas)
    model.show_only(["mf_left", "mf_right"])
    before, after = pictures(model, "mf_left", lambda: apply_atrophy(
        model, AtrophyParams(amount=0, segments="L4-S1", side="left", fat=100)))
    # Posterior view: the patient's left is the left half of the picture.
    fat_before = fat_like(before)[:, : SIZE[0] // 2].sum()
    assert fat_before > 200
    assert abs(int(fat_like(after)[:, : SIZE[0] // 2].sum()) - int(fat_before)) < 0.1 * fat_before
    assert fat_like(after)[:, SIZE[0] // 2:].sum() == 0  # the healthy right side stays lean
    assert outline_blue(after).sum() > 50
