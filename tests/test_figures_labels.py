"""Leader-line labels: anchors inside visible regions, no overlaps, no crossings, nothing dropped silently."""

from __future__ import annotations

import itertools

import numpy as np
from PIL import Image

from viewer.cli import main
from viewer.figures import compose
from viewer.figures.compose import Box
from viewer.figures.labels import (Anchor, choose_anchors, find_anchors, layout_labels, segments_cross,
                                   stack_positions)


def index_image_with_blobs() -> np.ndarray:
    image = np.full((200, 300), -1)
    image[20:60, 40:120] = 0       # wide block, upper left
    image[30:50, 140:260] = 1      # bar, upper right
    image[120:180, 100:200] = 2    # square, bottom middle
    image[100, 10] = 3             # one pixel: too small to label
    image[150:190, 140:160] = 2    # (part of 2)
    return image


def test_anchors_lie_deep_inside_their_region():
    image = index_image_with_blobs()
    anchors = find_anchors(image, [0, 1, 2, 3])
    assert set(anchors) == {0, 1, 2}
    for index, anchor in anchors.items():
        x, y = int(anchor.x), int(anchor.y)
        assert image[y, x] == index
        assert np.all(image[y - 3 : y + 4, x - 3 : x + 4] == index)  # not on an edge


def test_stacked_labels_keep_order_and_do_not_overlap():
    tops = stack_positions([10, 12, 11, 100, 180], height=20, gap=4, low=0, high=200)
    assert all(b - a >= 24 for a, b in zip(tops, tops[1:]))
    assert tops[0] >= 0 and tops[-1] + 20 <= 200


def test_layout_places_every_label_beside_the_picture_without_crossings():
    typeface = compose.font(14)
    picture = Box(100, 0, 400, 300)
    rng = np.random.default_rng(3)
    chosen = []
    for i in range(12):
        anchor = Anchor(i, float(rng.uniform(120, 480)), float(rng.uniform(10, 290)), 100)
        chosen.append((f"Muscle {i}", anchor, "left" if anchor.x < 300 else "right"))
    layout = layout_labels(chosen, picture, typeface, margin=100)
    assert not layout.unplaced
    assert sorted(label.text for label in layout.placed) == sorted(text for text, _, _ in chosen)
    for a, b in itertools.combinations(layout.placed, 2):
        overlap_x = a.box.left < b.box.right and b.box.left < a.box.right
        overlap_y = a.box.top < b.box.bottom and b.box.top < a.box.bottom
        assert not (overlap_x and overlap_y), (a.text, b.text)
    for label in layout.placed:
        assert label.box.right <= picture.left or label.box.left >= picture.right  # never over the picture
        assert 0 <= label.box.left and label.box.right <= picture.right + 100
    for side in ("left", "right"):
        lines = [(l.start, l.anchor) for l in layout.placed if l.side == side]
        for (p1, p2), (q1, q2) in itertools.combinations(lines, 2):
            assert not segments_cross(p1, p2, q1, q2)


def test_too_many_labels_are_reported_not_dropped():
    typeface = compose.font(14)
    picture = Box(100, 0, 200, 60)
    chosen = [(f"M{i}", Anchor(i, 150.0, 30.0, 50), "left") for i in range(10)]
    layout = layout_labels(chosen, picture, typeface, margin=80)
    assert len(layout.placed) + len(layout.unplaced) == 10
    assert layout.unplaced


def test_bilateral_muscles_spread_over_both_margins():
    candidates = {f"M{i}": [Anchor(2 * i, 100.0, 10.0 * i, 50), Anchor(2 * i + 1, 300.0, 10.0 * i, 60)]
                  for i in range(6)}
    chosen = choose_anchors(candidates, centre_x=200.0)
    sides = [side for _, _, side in chosen]
    assert sides.count("left") == sides.count("right") == 3


def test_shot_labels_legend_title_caption(fixture_atlas_dir, tmp_path):
    plain, labelled = tmp_path / "plain.png", tmp_path / "labelled.png"
    common = ["shot", "--atlas", str(fixture_atlas_dir), "--size", "480x320", "--only", "deep", "skeleton"]
    assert main([*common, "--out", str(plain), "--title", "Deep"]) == 0
    assert main([*common, "--out", str(labelled), "--title", "Deep", "--labels", "--legend", "--caption",
                 "Multifidus either side", "--scale-bar"]) == 0
    a = np.asarray(Image.open(plain)).astype(int)
    b = np.asarray(Image.open(labelled)).astype(int)
    assert a.shape == b.shape == (320, 480, 3)
    # Label text (dark grey) appears beside the body, where the plain picture is white.
    dark = lambda img: (img.max(axis=-1) < 90) & (np.ptp(img, axis=-1) < 20)  # noqa: E731
    body_rows = slice(40, 260)
    drawn = np.flatnonzero((a[body_rows] < 250).any(axis=-1).any(axis=0))  # the body in the plain shot
    beside = np.zeros(480, dtype=bool)
    beside[: drawn.min() - 25] = True
    beside[drawn.max() + 25 :] = True
    assert dark(b[body_rows][:, beside]).sum() > 40
    assert dark(a[body_rows][:, beside]).sum() == 0
    blue = lambda img: (img[..., 2] > 120) & (img[..., 0] < 90)  # noqa: E731
    assert blue(b).sum() > 200  # the muscles stay visible


def test_shot_rejects_unknown_label_names(fixture_atlas_dir, tmp_path, capsys):
    out = tmp_path / "x.png"
    assert main(["shot", "--atlas", str(fixture_atlas_dir), "--out", str(out), "--labels", "gluteus"]) == 2
    assert "unknown layer or structure 'gluteus'" in capsys.readouterr().err
    assert not out.exists()


def test_live_labels_of_the_real_back_skip_the_covered_deep_muscles(real_atlas):
    """The lecturer's case: all layers shown, from behind; the deep muscles lie under the trapezius."""
    from viewer.app.labels import live_label_layout
    from viewer.figures.figure import StructureIndexRenderer
    from viewer.model import SceneModel
    from viewer.render import SceneRenderer, offscreen_plotter

    model = SceneModel(real_atlas)
    size = (900, 780)
    plotter = offscreen_plotter(size)
    renderer = SceneRenderer(plotter, model)
    index = StructureIndexRenderer(real_atlas)
    try:
        renderer.set_view("posterior")
        layout, hidden = live_label_layout(model, renderer, index, size)
        seen = index.index_image(model, renderer.camera, size)
    finally:
        index.close()
        renderer.close()
        plotter.close()
    texts = [label.text for label in layout.placed]
    assert "Trapezius" in texts and "Latissimus dorsi" in texts
    assert "Multifidus" not in texts and "Rotatores" not in texts
    assert {"Multifidus", "Rotatores"} <= set(hidden)
    for label in layout.placed:  # each leader ends on a pixel where its muscle is the visible surface
        x, y = (int(v) for v in label.anchor)
        assert real_atlas.structures[seen[y, x]].name == label.text
