"""A renderer made after the model changed draws the model as it is; pictures cost one render each."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from viewer.atrophy import AtrophyParams, apply_atrophy
from viewer.cli import main
from viewer.model import SceneModel
from viewer.render import RenderSettings, SceneRenderer, offscreen_plotter, points_of, render_image

FAT_ARGS = ("--only", "multifidus", "skeleton", "--atrophy", "1", "--segments", "L4-S1", "--side", "right",
            "--fat", "100")


def fat_mask(image: np.ndarray) -> np.ndarray:
    """Pixels in fat yellow (#f2d36b, shaded); bone ivory and muscle red are not."""
    r, g, b = (image[..., i].astype(int) for i in range(3))
    return (g > 0.6 * r) & (r > 120) & (b < 0.6 * g)


def muscle_mask(image: np.ndarray) -> np.ndarray:
    r, g = image[..., 0].astype(int), image[..., 1].astype(int)
    return (r > 90) & (r > 1.8 * g)


def assert_fat_only_low_lumbar(image: np.ndarray, atlas) -> None:
    """Fat pixels exist, on the right half, and none lies above the L3 vertebral body.

    Rows map linearly to height between the top and bottom of the drawn multifidus (posterior
    view, superior up): the multifidus runs from T1 to S1.
    """
    fat, muscle = fat_mask(image), muscle_mask(image) | fat_mask(image)
    assert fat.sum() > 300
    rows = np.flatnonzero(muscle.any(axis=1))
    z = np.concatenate([atlas.meshes[s].vertices[:, 2] for s in ("multifidus_left", "multifidus_right")])
    l3_row = rows.min() + (z.max() - atlas.spine["L3"][2]) / (z.max() - z.min()) * (rows.max() - rows.min())
    fat_rows = np.flatnonzero(fat.any(axis=1))
    assert fat_rows.min() > l3_row, (fat_rows.min(), l3_row)
    middle = image.shape[1] // 2
    assert fat[:, : middle - 5].sum() == 0  # posterior view: the patient's right is on the right


def test_shot_colours_fat_only_at_the_wasting_levels(tmp_path, real_atlas):
    out = tmp_path / "fat.png"
    assert main(["shot", "--out", str(out), "--size", "400x600", *FAT_ARGS]) == 0
    assert_fat_only_low_lumbar(np.asarray(Image.open(out)), real_atlas)


def test_shot_from_a_state_file_colours_fat_only_at_the_wasting_levels(tmp_path, real_atlas):
    from viewer.session import capture_session, save_session

    model = SceneModel(real_atlas)
    model.show_only(["multifidus", "skeleton"])
    apply_atrophy(model, AtrophyParams(amount=1, segments="L4-S1", side="right", fat=100))
    save_session(tmp_path / "view.toml", capture_session(model))
    out = tmp_path / "state.png"
    assert main(["shot", "--state", str(tmp_path / "view.toml"), "--out", str(out), "--size", "400x600"]) == 0
    assert_fat_only_low_lumbar(np.asarray(Image.open(out)), real_atlas)


def test_gui_export_path_colours_fat_only_at_the_wasting_levels(real_atlas):
    from viewer.app.export import ExportOptions, export_pixels
    from viewer.figures.figure import displayed_points, framing_camera

    model = SceneModel(real_atlas)
    model.show_only(["multifidus", "skeleton"])
    apply_atrophy(model, AtrophyParams(amount=1, segments="L4-S1", side="right", fat=100))
    camera = framing_camera(displayed_points(model, model.visible_ids()), "posterior", (400, 600), 20.0)
    pixels = export_pixels(model, camera, ExportOptions(size=(400, 600)))
    assert_fat_only_low_lumbar(pixels, real_atlas)


def test_a_new_renderer_shows_the_deformed_geometry_and_highlight(fixture_atlas):
    model = SceneModel(fixture_atlas)
    sid = fixture_atlas.structure_ids[0]
    model.set_vertices(sid, fixture_atlas.meshes[sid].vertices * 1.01)
    model.set_highlight(sid)
    plotter = offscreen_plotter((64, 64))
    renderer = SceneRenderer(plotter, model)
    try:
        assert np.allclose(points_of(renderer.polydata(sid)), model.vertices(sid))
        colour = np.array(renderer.actor(sid).GetProperty().GetColor())
        from viewer.checks import parse_colour

        assert not np.allclose(colour, parse_colour("colour", fixture_atlas.structure(sid).colour), atol=0.02)
        # ...and its blue outline, as when the highlight is set in the viewer. (Checked on the stage, not in
        # pixels: the suite's EGL pictures draw no wide lines once a Qt window has drawn through GLX in
        # the same process; test_app checks the outline's pixels in an export as the viewer makes it.)
        actors = plotter.renderer.GetActors()
        outlines = [actors.GetItemAsObject(i) for i in range(actors.GetNumberOfItems())
                    if np.allclose(actors.GetItemAsObject(i).GetProperty().GetColor(),
                                   parse_colour("highlight", RenderSettings().highlight_colour))]
        assert len(outlines) == 1 and outlines[0].GetVisibility()
    finally:
        renderer.close()
        plotter.close()


class _RenderCounter:
    def __init__(self, plotter):
        self.count = 0
        plotter.render_window.AddObserver("StartEvent", self._seen)

    def _seen(self, *_):
        self.count += 1


def test_an_off_screen_picture_costs_one_render(fixture_atlas):
    model = SceneModel(fixture_atlas)
    plotter = offscreen_plotter((64, 64))
    renderer = SceneRenderer(plotter, model)
    counter = _RenderCounter(plotter)
    try:
        for step in range(3):
            with model.batch():
                model.set_opacity("superficial", 0.5 + 0.2 * step)
                model.set_layer_visible("deep", step % 2 == 0)
            renderer.set_view("posterior")
            renderer.screenshot((120, 90))
        assert counter.count == 3
    finally:
        renderer.close()
        plotter.close()


@pytest.mark.parametrize("opacity", [1.0, 0.4])
def test_a_reused_renderer_gives_the_pixels_of_a_fresh_one(fixture_atlas, opacity):
    """Lessons and animations reuse one renderer: its pictures equal separate renders exactly."""
    model = SceneModel(fixture_atlas)
    plotter = offscreen_plotter((64, 64))
    renderer = SceneRenderer(plotter, model, RenderSettings())
    try:
        renderer.set_view("left")
        renderer.screenshot((200, 150))  # a different picture first
        model.set_opacity("superficial", opacity)
        renderer.set_view("posterolateral_right")
        reused = renderer.screenshot((160, 120))
    finally:
        renderer.close()
        plotter.close()
    fresh = render_image(model, (160, 120), view="posterolateral_right")
    assert np.array_equal(reused, fresh)


@pytest.mark.parametrize("settings", [RenderSettings(), RenderSettings(silhouettes=True),
                                      RenderSettings(lighting="flat", supersample=1)])
def test_pictures_are_drawn_exactly_as_the_viewers_pyvista_plotter_draws_them(fixture_atlas, settings):
    """Pictures use a bare VTK stage, the viewer and notebooks a PyVista plotter: the same pixels."""
    import pyvista as pv

    def drawn(plotter) -> np.ndarray:
        model = SceneModel(fixture_atlas)
        model.set_opacity("superficial", 0.5)
        model.set_highlight("mf_left")
        apply_atrophy(model, AtrophyParams(30, "L4-S1", "right", fat=40, ghost=True))
        renderer = SceneRenderer(plotter, model, settings)
        try:
            renderer.set_view("posterolateral_left")
            renderer.screenshot((240, 180))  # EGL after Qt's GLX windows: a first frame has differed
            return renderer.screenshot((240, 180))
        finally:
            renderer.close()
            plotter.close()

    theme = pv.themes.DocumentTheme()
    theme.multi_samples = 0
    stage = drawn(offscreen_plotter((240, 180)))
    pyvista = drawn(pv.Plotter(off_screen=True, window_size=[240, 180], theme=theme))
    assert np.array_equal(stage, pyvista)
    assert len(np.unique(stage.reshape(-1, 3), axis=0)) >= 8  # a real picture: the layers, fat, outline
