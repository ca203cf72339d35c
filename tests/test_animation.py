"""Animations: frame count and size of GIF and MP4; atrophy frames move away from healthy step by step."""

from __future__ import annotations

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np

from viewer.cli import main
from viewer.figures.animation import atrophy_amounts, peel_opacities


def animate(atlas_dir, out, *extra: str) -> int:
    return main(["animate", "--atlas", str(atlas_dir), "--out", str(out), "--quiet", *extra])


def read_gif(path) -> np.ndarray:
    return np.asarray(iio.imread(path, index=None, extension=".gif"))[..., :3]


def read_mp4(path) -> np.ndarray:
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    return np.stack([np.frombuffer(f, np.uint8).reshape(height, width, 3) for f in reader])


def test_turntable_gif_has_the_frames_asked_for(fixture_atlas_dir, tmp_path):
    out = tmp_path / "turn.gif"
    assert animate(fixture_atlas_dir, out, "--kind", "turntable", "--frames", "6", "--size", "160x120") == 0
    frames = read_gif(out)
    assert frames.shape == (6, 120, 160, 3)
    # The camera moves: every frame differs from the first; a full circle comes back near it.
    changes = [np.abs(frames[i].astype(int) - frames[0]).mean() for i in range(1, 6)]
    assert min(changes) > 1.0


def test_peel_mp4_fades_the_outer_layers(fixture_atlas_dir, tmp_path):
    out = tmp_path / "peel.mp4"
    assert animate(fixture_atlas_dir, out, "--kind", "peel", "--frames", "8", "--size", "160x120") == 0
    frames = read_mp4(out)
    assert frames.shape == (8, 120, 160, 3)
    first, last = frames[0].astype(int), frames[-1].astype(int)
    red = lambda f: ((f[..., 0] > 100) & (f[..., 0] > 2 * f[..., 1])).mean()  # noqa: E731
    blue = lambda f: ((f[..., 2] > 80) & (f[..., 2] > 2 * f[..., 0])).mean()  # noqa: E731
    assert red(first) > 0.05 and red(last) == 0.0
    assert blue(first) == 0.0 and blue(last) > 0.005


def test_bad_animation_options_fail_before_rendering(fixture_atlas_dir, tmp_path, capsys):
    assert animate(fixture_atlas_dir, tmp_path / "a.mp4", "--kind", "turntable", "--size", "161x120") == 2
    assert "MP4 needs an even width and height" in capsys.readouterr().err
    assert animate(fixture_atlas_dir, tmp_path / "a.avi", "--kind", "peel") == 2
    assert "unsupported file type '.avi'" in capsys.readouterr().err
    assert animate(fixture_atlas_dir, tmp_path / "a.gif", "--kind", "peel", "--only", "deep") == 2
    assert "nothing to peel" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_schedules():
    assert atrophy_amounts(40, 5).tolist() == [0, 10, 20, 30, 40]
    opacities = peel_opacities(["superficial", "intermediate"], 9)
    assert opacities[0] == {"superficial": 1.0, "intermediate": 1.0}
    assert opacities[-1] == {"superficial": 0.0, "intermediate": 0.0}
    superficial = [o["superficial"] for o in opacities]
    assert all(b <= a for a, b in zip(superficial, superficial[1:]))
    # The inner layer starts fading only once the outer one is gone.
    assert all(o["intermediate"] == 1.0 for o in opacities if o["superficial"] > 0)


def test_frame_option_makes_a_close_up(fixture_atlas_dir, tmp_path):
    wide, close = tmp_path / "wide.gif", tmp_path / "close.gif"
    common = ["--kind", "turntable", "--frames", "2", "--size", "160x120", "--only", "deep", "skeleton"]
    assert animate(fixture_atlas_dir, wide, *common) == 0
    assert animate(fixture_atlas_dir, close, *common, "--frame", "mf_left") == 0
    blue = lambda f: ((f[..., 2] > 80) & (f[..., 2] > 2 * f[..., 0])).mean()  # noqa: E731
    assert blue(read_gif(close)[0].astype(int)) > 2 * blue(read_gif(wide)[0].astype(int)) > 0


def test_peel_stages_are_named():
    from viewer.figures.animation import peel_stage

    assert peel_stage({"superficial": 1.0, "intermediate": 1.0}, "deep") == "All layers"
    assert peel_stage({"superficial": 0.4, "intermediate": 1.0}, "deep") == "Removing the superficial layer"
    assert peel_stage({"superficial": 0.0, "intermediate": 1.0}, "deep") == "Intermediate layer"
    assert peel_stage({"superficial": 0.0, "intermediate": 0.0}, "deep") == "Deep layer"
