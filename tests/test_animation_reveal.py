"""Atrophy pictures show the wasting muscle; animation frames stream to the encoder one at a time."""

from __future__ import annotations

import numpy as np
from PIL import Image
from test_animation import read_gif

from viewer.cli import main
from viewer.figures.animation import AnimationSpec, gif_writer, render_animation
from viewer.model import SceneModel

README_ATROPHY = ("--atrophy", "40", "--segments", "L4-S1", "--side", "right", "--fat", "30")


def deep_red_share(image: np.ndarray) -> float:
    """Share of pixels in the deep layer's colour (#8e2a4b: red with more blue than green), shaded."""
    r, g, b = (image[..., i].astype(int) for i in range(3))
    return float(((r > 60) & (r > 2.2 * g) & (b > 1.3 * g)).mean())


def test_atrophy_animation_as_the_readme_writes_it_shows_the_multifidus(tmp_path):
    out = tmp_path / "a.gif"
    assert main(["animate", "--kind", "atrophy", "--out", str(out), "--frames", "3", "--size", "200x150",
                 "--quiet", *README_ATROPHY]) == 0
    frames = read_gif(out)
    assert frames.shape == (3, 150, 200, 3)
    assert all(deep_red_share(frame[:130]) > 0.1 for frame in frames)


def test_atrophy_animation_keeps_the_layers_the_user_asked_for(tmp_path):
    out = tmp_path / "a.gif"
    assert main(["animate", "--kind", "atrophy", "--out", str(out), "--frames", "2", "--size", "200x150",
                 "--quiet", "--view", "posterior", *README_ATROPHY]) == 0
    assert all(deep_red_share(frame[:130]) < 0.01 for frame in read_gif(out))


def test_atrophy_shot_shows_the_wasting_levels(tmp_path, real_atlas):
    out = tmp_path / "a.png"
    assert main(["shot", "--out", str(out), "--size", "300x240", *README_ATROPHY]) == 0
    image = np.asarray(Image.open(out))
    assert deep_red_share(image) > 0.1
    plain = tmp_path / "plain.png"
    assert main(["shot", "--out", str(plain), "--size", "300x240", "--hide", "trapezius", *README_ATROPHY]) == 0
    assert deep_red_share(np.asarray(Image.open(plain))) < 0.01  # the user's own --hide wins


def test_gif_writer_encodes_each_frame_before_the_next_is_made(tmp_path):
    target = tmp_path / "out.part"
    sizes = []

    def frames():
        for index in range(5):
            if index:
                sizes.append(target.stat().st_size)  # what was encoded before this frame exists
            yield np.full((40, 60, 3), 40 * index, dtype=np.uint8)

    gif_writer(frames(), fps=10)(target)
    assert all(b > a for a, b in zip(sizes, sizes[1:])) and sizes[0] > 0
    decoded = read_gif(target)
    assert decoded.shape == (5, 40, 60, 3)
    assert [int(f.mean()) for f in decoded] == [0, 40, 80, 120, 160]


def test_render_animation_holds_one_frame_at_a_time(fixture_atlas, tmp_path):
    """While frame k is rendered, frames before it are already in the file (nothing piles up)."""
    out = tmp_path / "turn.gif"
    written = []

    def on_frame(index: int) -> None:
        parts = [p for p in tmp_path.iterdir() if p.name != "turn.gif"]  # the temporary file being written
        written.append(parts[0].stat().st_size if parts else -1)

    render_animation(SceneModel(fixture_atlas), AnimationSpec("turntable", 4, 10, (80, 60)), out, view="posterior",
                     on_frame=on_frame)
    assert len(written) == 4
    assert written[0] > 0 and all(b > a for a, b in zip(written, written[1:]))
    assert read_gif(out).shape == (4, 60, 80, 3)
