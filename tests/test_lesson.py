"""Lesson files: validation lists every problem before rendering; figures match their spec."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from PIL import Image

from viewer.cli import main
from viewer.figures.lesson import LessonError, load_lesson
from viewer.output import read_png_parameters

GOOD = """
[lesson]
title = "Layers"
size = "320x240"

[[figures]]
output = "all.png"
title = "All layers"
caption = "Seen from behind"
legend = true

[[figures]]
output = "peel.png"
size = "480x200"
[[figures.panels]]
caption = "Superficial"
[[figures.panels]]
caption = "Deep"
only = ["deep", "skeleton"]
"""


def write(tmp_path, text: str, name: str = "lesson.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def run_lesson(atlas_dir, lesson, out, *extra: str) -> int:
    return main(["lesson", str(lesson), "--atlas", str(atlas_dir), "--out", str(out), "--quiet", *extra])


def hue_share(image: np.ndarray, colour: str) -> float:
    r, g, b = (image[..., i].astype(int) for i in range(3))
    masks = {
        "red": (r > 60) & (r > 2 * g) & (r > 2 * b),
        "green": (g > 60) & (g > 2 * r) & (g > 2 * b),
        "blue": (b > 60) & (b > 2 * r) & (b > 2 * g),
    }
    return float(masks[colour].mean())


def dark_text_rows(image: np.ndarray, rows: slice) -> int:
    """Pixels of caption-grey or black text in a band of rows (the 3D panel has no such greys)."""
    band = image[rows, :, :3].astype(int)
    grey = (np.ptp(band, axis=-1) < 12) & (band.mean(axis=-1) < 140)
    return int(grey.sum())


def test_figures_match_their_spec(fixture_atlas_dir, tmp_path):
    lesson = write(tmp_path, GOOD)
    out = tmp_path / "out"
    assert run_lesson(fixture_atlas_dir, lesson, out) == 0
    assert sorted(p.name for p in out.iterdir()) == ["all.png", "peel.png"]
    everything = np.asarray(Image.open(out / "all.png"))
    peel = np.asarray(Image.open(out / "peel.png"))
    assert everything.shape == (240, 320, 3)
    assert peel.shape == (200, 480, 3)
    assert hue_share(everything, "red") > 0.05
    left, right = peel[:, :240], peel[:, 240:]
    assert hue_share(left, "red") > 0.05 and hue_share(left, "blue") == 0.0
    assert hue_share(right, "red") == 0.0 and hue_share(right, "blue") > 0.01
    # Title on top and caption at the bottom are drawn as dark text; the middle rows hold none.
    assert dark_text_rows(everything, slice(0, 22)) > 40
    assert dark_text_rows(everything, slice(222, 240)) > 40
    parameters = read_png_parameters(out / "all.png")
    assert parameters["command"] == "lesson" and parameters["caption"] == "Seen from behind"


def expected_caption_band(size, caption: str, legend) -> tuple[slice, np.ndarray]:
    """The caption band as the layout places it, drawn alone on white with the shipped font."""
    from PIL import ImageDraw

    from viewer.figures import compose

    layout = compose.figure_layout(size, 1, title="All layers", caption=caption, legend=legend)
    canvas = compose.blank_canvas(size, transparent=False)
    compose.draw_centred_text(ImageDraw.Draw(canvas), layout.caption, layout.caption_lines,
                              compose.font(layout.typography.body), compose.MUTED_TEXT_COLOUR)
    rows = slice(layout.caption.top, layout.caption.bottom)
    return rows, np.asarray(canvas)[rows]


def test_caption_text_is_rendered(fixture_atlas_dir, tmp_path, fixture_atlas):
    from viewer.figures.compose import LegendEntry

    run_lesson(fixture_atlas_dir, write(tmp_path, GOOD), tmp_path / "out")
    image = np.asarray(Image.open(tmp_path / "out" / "all.png"))
    legend = [LegendEntry(layer.name.capitalize(), layer.colour) for layer in fixture_atlas.layers]
    rows, expected = expected_caption_band((320, 240), "Seen from behind", legend)
    assert dark_text_rows(expected, slice(None)) > 40
    assert np.array_equal(image[rows], expected)
    _, other = expected_caption_band((320, 240), "Seen from the front", legend)
    assert not np.array_equal(image[rows], other)


def test_rerun_gives_identical_pictures(fixture_atlas_dir, tmp_path):
    lesson = write(tmp_path, GOOD)
    run_lesson(fixture_atlas_dir, lesson, tmp_path / "one")
    run_lesson(fixture_atlas_dir, lesson, tmp_path / "two")
    for name in ("all.png", "peel.png"):
        first = np.asarray(Image.open(tmp_path / "one" / name))
        second = np.asarray(Image.open(tmp_path / "two" / name))
        assert np.array_equal(first, second), name


BAD = """
[lesson]
size = "100x"
colour = "red"

[[figures]]
output = "a.png"
only = ["middle"]
view = "sideways"

[[figures]]
output = "../escape.png"
size = "99999x10"
opacity = { superficial = 2 }

[[figures]]
output = "c.png"
atrophy = { amount = 150, segments = "L6-S1" }
[[figures.panels]]
sparkle = true
"""


def test_bad_lesson_lists_every_problem(fixture_atlas, tmp_path):
    with pytest.raises(LessonError) as info:
        load_lesson(write(tmp_path, BAD), fixture_atlas)
    message = str(info.value)
    for expected in ("lesson.size", "lesson.colour: unknown key", "figures[0].only: unknown layer or structure 'middle'",
                     "figures[0].view", "figures[1].output", "figures[1].size",
                     "figures[1].opacity.superficial", "figures[2].atrophy.amount", "figures[2].atrophy.segments",
                     "figures[2].panels[0].sparkle: unknown key"):
        assert expected in message, expected
    assert len(info.value.problems) == 10


def test_bad_lesson_fails_on_one_line_before_rendering(fixture_atlas_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert run_lesson(fixture_atlas_dir, write(tmp_path, BAD), out) == 2
    err = capsys.readouterr().err
    assert err.startswith("dorsum lesson: error: ") and "lesson.toml: 10 problems: " in err
    assert err.count("\n") == 1
    assert not out.exists()


def test_unwritable_output_folder_fails_before_rendering(fixture_atlas_dir, tmp_path, capsys):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file where a folder would have to be")
    assert run_lesson(fixture_atlas_dir, write(tmp_path, GOOD), blocker / "figures") == 2
    assert "cannot create the folder" in capsys.readouterr().err
    assert run_lesson(fixture_atlas_dir, write(tmp_path, GOOD), blocker) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert blocker.read_text().startswith("a file")


def test_existing_figures_are_not_clobbered(fixture_atlas_dir, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "peel.png").write_bytes(b"mine")
    assert run_lesson(fixture_atlas_dir, write(tmp_path, GOOD), out) == 2
    assert "peel.png: file exists" in capsys.readouterr().err
    assert (out / "peel.png").read_bytes() == b"mine"
    assert not (out / "all.png").exists()


def test_duplicate_outputs_and_empty_lessons_are_errors(fixture_atlas, tmp_path):
    text = '[[figures]]\noutput = "a.png"\n[[figures]]\noutput = "a.png"\n'
    with pytest.raises(LessonError, match="'a.png' is used by more than one figure"):
        load_lesson(write(tmp_path, text), fixture_atlas)
    with pytest.raises(LessonError, match="give one or more figures"):
        load_lesson(write(tmp_path, '[lesson]\ntitle = "x"\n'), fixture_atlas)


def test_example_lessons_are_valid_for_the_shipped_atlas(real_atlas):
    from pathlib import Path

    folder = Path(__file__).resolve().parent.parent / "lessons"
    three = load_lesson(folder / "three-layers.toml", real_atlas)
    outputs = [f.output for f in three.figures]
    assert {"01-superficial-layer.png", "02-intermediate-layer.png", "03-deep-layer.png"} <= set(outputs)
    assert len(next(f for f in three.figures if f.output == "04-peel.png").panels) == 3
    atrophy = load_lesson(folder / "multifidus-atrophy.toml", real_atlas)
    kinds = {panel.kind for figure in atrophy.figures for panel in figure.panels}
    assert kinds == {"3d", "section"}
    assert any(panel.atrophy and panel.atrophy.side == "left" for f in atrophy.figures for panel in f.panels)


def test_frame_key_makes_a_close_up(fixture_atlas_dir, tmp_path):
    text = (GOOD + '\n[[figures]]\noutput = "wide.png"\nonly = ["deep", "skeleton"]\n'
            '\n[[figures]]\noutput = "close.png"\nonly = ["deep", "skeleton"]\nframe = ["mf_left"]\n')
    run_lesson(fixture_atlas_dir, write(tmp_path, text), tmp_path / "out")
    wide = np.asarray(Image.open(tmp_path / "out" / "wide.png"))
    assert hue_share(wide, "blue") > 0.01
    close = np.asarray(Image.open(tmp_path / "out" / "close.png"))
    assert hue_share(close, "blue") > 3 * hue_share(wide, "blue")
    assert load_lesson(write(tmp_path, text), load_atlas_for(fixture_atlas_dir)).figures[-1].panels[0].frame == ("mf_left",)


def load_atlas_for(folder):
    from viewer.atlas import load_atlas

    return load_atlas(folder)


def test_transparent_background_and_dpi(fixture_atlas_dir, tmp_path):
    text = GOOD.replace('size = "320x240"', 'size = "320x240"\nbackground = "transparent"\ndpi = 300')
    run_lesson(fixture_atlas_dir, write(tmp_path, text), tmp_path / "out")
    with Image.open(tmp_path / "out" / "all.png") as image:
        assert image.mode == "RGBA"
        assert round(image.info["dpi"][0]) == 300
        pixels = np.asarray(image)
    assert pixels[0, 0, 3] == 0 and pixels[120, 160, 3] == 255


def test_atrophy_settings_follow_the_atrophy_model_rules(fixture_atlas, tmp_path):
    text = '[[figures]]\noutput = "a.png"\natrophy = { amount = 30, segments = "L5", side = "up" }\n'
    with pytest.raises(LessonError) as info:
        load_lesson(write(tmp_path, text), fixture_atlas)
    assert "figures[0].atrophy.side: unknown value 'up'" in str(info.value)
    text = '[[figures]]\noutput = "a.png"\natrophy = { amount = 30, segments = "L5" }\n'
    with pytest.raises(LessonError, match=r"figures\[0\].atrophy: segments: 'L5' is a single vertebra"):
        load_lesson(write(tmp_path, text), fixture_atlas)


def test_figure_with_a_3d_panel_beside_a_section(fixture_atlas_dir, tmp_path):
    text = """
[[figures]]
output = "pair.png"
size = "480x240"
only = ["deep", "skeleton"]
[[figures.panels]]
caption = "3D"
[[figures.panels]]
kind = "section"
caption = "L4-L5"
level = "L4-L5"
"""
    assert run_lesson(fixture_atlas_dir, write(tmp_path, text), tmp_path / "out") == 0
    image = np.asarray(Image.open(tmp_path / "out" / "pair.png"))
    assert image.shape == (240, 480, 3)
    assert hue_share(image[:, :240], "blue") > 0.01 and hue_share(image[:, 240:], "blue") > 0.005
    # The section draws the cut faces flat (no shading): the fixture's pure blue appears exactly.
    assert np.any(np.all(image[:, 240:] == (0x1E, 0x1E, 0xC8), axis=-1))


def test_atrophy_the_model_refuses_fails_before_any_figure_is_written(fixture_atlas_dir, tmp_path, capsys,
                                                                    monkeypatch):
    import viewer.atrophy
    from viewer.errors import DorsumError

    def refuse(model, params):
        if params.amount > 60:
            raise DorsumError(f"atrophy: mf_left can lose at most 60% of its area (asked: {params.amount:g}%)")

    monkeypatch.setattr(viewer.atrophy, "apply_atrophy", refuse)
    text = GOOD + '\n[[figures]]\noutput = "wasted.png"\natrophy = { amount = 75, segments = "L4-S1" }\n'
    out = tmp_path / "out"
    assert run_lesson(fixture_atlas_dir, write(tmp_path, text), out) == 2
    err = capsys.readouterr().err
    assert "figures[2].atrophy (wasted.png): atrophy: mf_left can lose at most 60%" in err
    assert not out.exists()
