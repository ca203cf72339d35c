"""Atrophy animation: frames move away from the healthy muscle step by step."""

from __future__ import annotations

import numpy as np
from test_animation import animate, read_gif


def test_atrophy_frames_move_away_from_healthy_monotonically(fixture_atlas_dir, tmp_path):
    out = tmp_path / "atrophy.gif"
    assert animate(fixture_atlas_dir, out, "--kind", "atrophy", "--frames", "5", "--size", "160x120",
                   "--only", "deep", "skeleton", "--atrophy", "40", "--segments", "L4-S1") == 0
    frames = read_gif(out).astype(int)
    assert frames.shape == (5, 120, 160, 3)
    body = frames[:, :100]  # above the caption band that names the amount
    changes = [np.abs(body[i] - body[0]).sum() for i in range(5)]
    assert changes[0] == 0
    assert all(b > a for a, b in zip(changes, changes[1:])), changes


def test_atrophy_animation_needs_a_final_amount(fixture_atlas_dir, tmp_path, capsys):
    assert animate(fixture_atlas_dir, tmp_path / "a.gif", "--kind", "atrophy", "--frames", "3") == 2
    assert "--atrophy PERCENT" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
