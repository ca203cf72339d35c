"""Level of detail while the camera moves: fewer triangles over the same vertices, full detail when still."""

from __future__ import annotations

import numpy as np
import pytest

from viewer import lod
from viewer.atrophy import AtrophyParams, apply_atrophy
from viewer.model import SceneModel
from viewer.render import SceneRenderer, offscreen_plotter, vertex_normals


def test_coarse_faces_keep_about_a_quarter_over_the_same_vertices(real_atlas):
    mesh = real_atlas.meshes["multifidus_right"]
    faces = lod.coarse_faces(mesh.vertices, mesh.faces, vertex_normals(mesh.vertices, mesh.faces))
    assert 0.15 * len(mesh.faces) < len(faces) < 0.35 * len(mesh.faces)
    assert faces.min() >= 0 and faces.max() < len(mesh.vertices)
    assert np.all((faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2]))
    assert len(np.unique(np.sort(faces, axis=1), axis=0)) == len(faces)
    # Coarse triangles face the way the surface faces: outward like the full mesh's around them.
    normals = vertex_normals(mesh.vertices, mesh.faces)
    a, b, c = (mesh.vertices[faces[:, i]] for i in range(3))
    facing = np.einsum("ij,ij->i", np.cross(b - a, c - a), normals[faces].mean(axis=1))
    assert (facing > 0).all()


def test_small_meshes_stay_whole(fixture_atlas):
    mesh = next(iter(fixture_atlas.meshes.values()))
    assert len(mesh.faces) < lod.MIN_TRIANGLES
    faces = lod.coarse_faces(mesh.vertices, mesh.faces, vertex_normals(mesh.vertices, mesh.faces))
    assert np.array_equal(faces, mesh.faces)


def cells(renderer: SceneRenderer, sid: str) -> int:
    return renderer.actor(sid).GetMapper().GetInput().GetNumberOfCells()


@pytest.fixture
def lumbar(real_atlas):
    model = SceneModel(real_atlas)
    model.show_only(["multifidus", "skeleton"])
    plotter = offscreen_plotter((64, 64))
    renderer = SceneRenderer(plotter, model)
    renderer.set_view("posterior")
    yield model, renderer
    renderer.close()
    plotter.close()


def test_moving_draws_coarse_and_stopping_restores_the_exact_picture(lumbar):
    model, renderer = lumbar
    still = renderer.screenshot((240, 320))
    full = cells(renderer, "multifidus_right")
    renderer.set_moving(True)
    assert cells(renderer, "multifidus_right") < 0.4 * full
    moving = renderer.screenshot((240, 320))
    assert 0 < np.abs(moving.astype(int) - still).mean() < 10  # the same body, a coarser surface
    renderer.set_moving(False)
    assert cells(renderer, "multifidus_right") == full
    assert np.array_equal(renderer.screenshot((240, 320)), still)


def test_the_coarse_surface_shows_the_current_shape_and_fat(lumbar):
    model, renderer = lumbar
    renderer.set_moving(True)
    renderer.set_moving(False)
    apply_atrophy(model, AtrophyParams(amount=1, segments="L4-S1", side="right", fat=100))
    renderer.set_moving(True)
    image = renderer.screenshot((240, 320)).astype(int)
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    fat = (g > 0.6 * r) & (r > 120) & (b < 0.6 * g)
    assert fat[:, 125:].sum() > 100 and fat[:, :115].sum() == 0
    coarse = renderer.actor("multifidus_right").GetMapper().GetInput()
    assert np.allclose(np.asarray(coarse.GetPoints().GetData()), model.vertices("multifidus_right"))


def test_back_faces_of_closed_opaque_surfaces_are_skipped_only_while_moving(real_atlas):
    model = SceneModel(real_atlas)
    model.set_opacity("multifidus_left", 0.5)
    plotter = offscreen_plotter((64, 64))
    renderer = SceneRenderer(plotter, model)
    try:
        open_bone = next(s.id for s in real_atlas.structures if not real_atlas.is_closed(s.id))
        culling = {sid: lambda sid=sid: bool(renderer.actor(sid).GetProperty().GetBackfaceCulling())
                   for sid in ("multifidus_right", "multifidus_left", open_bone)}
        assert not any(check() for check in culling.values())
        renderer.set_moving(True)
        # Closed and opaque: culled; see-through (its inside shows) or open (a hole would show it): drawn whole.
        assert {sid: check() for sid, check in culling.items()} == {
            "multifidus_right": True, "multifidus_left": False, open_bone: False}
        renderer.set_moving(False)
        assert not any(check() for check in culling.values())
    finally:
        renderer.close()
        plotter.close()


def test_moving_draws_the_nearest_opaque_structures_first_and_the_still_picture_keeps_its_order(real_atlas):
    model = SceneModel(real_atlas)
    model.set_opacity("trapezius_left", 0.5)
    plotter = offscreen_plotter((64, 64))
    renderer = SceneRenderer(plotter, model)
    try:
        renderer.set_view("posterior")
        props = plotter.renderer.GetViewProps()

        def order() -> list:
            return [props.GetItemAsObject(i) for i in range(props.GetNumberOfItems())]

        still_order = order()
        # The reference is a second picture: after other GUI tests in the same process, the very first
        # depth-peeled picture of a new off-screen plotter can differ (also without any move).
        renderer.screenshot((240, 320))
        still = renderer.screenshot((240, 320))
        renderer.set_moving(True)
        moving = [renderer.structure_of_actor(p) for p in order()]
        # Seen from behind, the superficial back muscles come before the deep ones and the spine.
        assert moving.index("latissimus_dorsi_left") < moving.index("multifidus_left") < moving.index("sacrum")
        # A see-through muscle blends in the order it was added: after every opaque surface.
        assert moving.index("trapezius_left") > moving.index("sacrum")
        assert not plotter.renderer.GetUseOIT()
        renderer.set_moving(False)
        assert order() == still_order and plotter.renderer.GetUseOIT()
        assert np.array_equal(renderer.screenshot((240, 320)), still)
    finally:
        renderer.close()
        plotter.close()
