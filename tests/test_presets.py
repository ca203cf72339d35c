"""Scenarios: the shipped files, their numbers as measured, bad files, and every command that takes one."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import viewer as dorsum
from viewer.cli import main
from viewer.errors import DorsumError
from viewer.presets import builtin_presets, load_preset
from viewer.session import capture_session, load_session, save_session

SHIPPED = ("acute_lbp", "ageing", "chronic_lbp", "l5_radiculopathy", "sarcopenia_spine")


def test_preset_list_json_names_each_scenario_with_wasting_and_sources(capsys):
    assert main(["preset", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in listed] == list(SHIPPED)
    for preset in listed:
        assert preset["title"] and preset["explanation"] and preset["sources"]
        assert preset["wasting"] and all({"muscle", "amount", "segments", "side", "fat"} <= set(w) for w in
                                         preset["wasting"])
    ageing = next(p for p in listed if p["name"] == "ageing")
    assert ageing["age"]["reference"] == 30 and ageing["age"]["shown"] == 70
    assert main(["preset", "list"]) == 0
    assert "chronic_lbp" in capsys.readouterr().out


@pytest.mark.parametrize("name", SHIPPED)
def test_each_scenario_measures_as_its_file_says(real_atlas, name):
    preset = load_preset(name)
    scene = dorsum.Scene(atlas=real_atlas).preset(name)
    for params in preset.params():
        if params.muscle not in real_atlas.muscles:
            assert any(params.muscle in note for note in scene.notes)
            continue
        table = scene.measure(params.muscle, levels=",".join(params.discs))
        sides = ("left", "right") if params.side == "both" else (params.side,)
        for disc in params.discs:
            for side, entry in table["levels"][disc].items():
                if side not in sides:
                    assert entry["change_percent"] == pytest.approx(0.0, abs=1.0)
                    continue
                assert entry["change_percent"] == pytest.approx(-params.amount, abs=2.0)
                assert entry["fat_percent"] == pytest.approx(max(params.amount, params.fat), abs=2.0)
                assert entry["lean_cm2"] == pytest.approx(entry["total_cm2"] * (1 - entry["fat_percent"] / 100),
                                                          rel=1e-3)


def test_ageing_grows_with_age_and_refuses_ages_outside_its_range(real_atlas, capsys):
    young = dorsum.Scene(atlas=real_atlas).preset("ageing", age=40).measure(levels="L4-L5")
    old = dorsum.Scene(atlas=real_atlas).preset("ageing", age=80).measure(levels="L4-L5")
    fat = lambda table: table["levels"]["L4-L5"]["left"]["fat_percent"]  # noqa: E731
    assert fat(young) == pytest.approx(0.24 * 10, abs=0.2) and fat(old) == pytest.approx(0.24 * 50, abs=0.2)
    assert main(["measure", "--preset", "ageing", "--age", "20"]) == 2
    assert "out of range for preset ageing (allowed: 30 to 90 years)" in capsys.readouterr().err
    assert main(["measure", "--age", "60"]) == 2
    assert "--age goes with --preset" in capsys.readouterr().err
    assert main(["measure", "--preset", "chronic_lbp", "--age", "60"]) == 2
    assert "--age only applies" in capsys.readouterr().err


@pytest.mark.parametrize(("text", "message"), [
    ("[preset]\nname='x'\n", "missing required key 'wasting'"),
    ("[preset]\nname='x'\ntitle='X'\nsummary='s'\nexplanation='e'\nsources=[]\n[[wasting]]\nmuscle='multifidus'\n"
     "segments='L4-S1'\nside='left'\nsource='s'\n", "cite at least one source"),
    ("[preset]\nname='x'\ntitle='X'\nsummary='s'\nexplanation='e'\nsources=['a']\n[[wasting]]\nmuscle='multifidus'\n"
     "segments='L4-S1'\nside='left'\namount=95\nsource='s'\n", "out of range"),
    ("[preset]\nname='x'\ntitle='X'\nsummary='s'\nexplanation='e'\nsources=['a']\ncolour='red'\n[[wasting]]\n"
     "muscle='multifidus'\nsegments='L4-S1'\nside='left'\nsource='s'\n", "preset.colour: unknown key"),
    ("[preset]\nname='x'\ntitle='X'\nsummary='s'\nexplanation='e'\nsources=['a']\n[[wasting]]\nmuscle='multifidus'\n"
     "segments='L4-S1'\nside='left'\nfat_per_year=0.2\nsource='s'\n", "yearly rates need an [age] table"),
    ("[preset]\nname='x'\ntitle='X'\nsummary='s'\nexplanation='e'\nsources=['a']\n[[wasting]]\nmuscle='multifidus'\n"
     "segments='L4'\nside='left'\nsource='s'\n", "single vertebra"),
    ("not toml = = =", "not a readable TOML file"),
])
def test_a_bad_scenario_file_is_one_line_and_exit_2(tmp_path, capsys, text, message):
    path = tmp_path / "case.toml"
    path.write_text(text)
    assert main(["measure", "--preset", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "case.toml" in err


def test_a_copied_and_edited_scenario_file_works(tmp_path):
    edited = load_preset("chronic_lbp").path.read_text().replace("amount = 13", "amount = 30")
    (tmp_path / "mine.toml").write_text(edited)
    table = dorsum.Scene().preset(str(tmp_path / "mine.toml")).measure(levels="L4-L5")
    assert table["levels"]["L4-L5"]["right"]["change_percent"] == pytest.approx(-30.0, abs=2.0)


def test_unknown_preset_and_mixing_with_atrophy_are_refused(capsys):
    assert main(["shot", "--out", "x.png", "--preset", "flu"]) == 2
    assert "unknown preset 'flu' (shipped: acute_lbp" in capsys.readouterr().err
    assert main(["shot", "--out", "x.png", "--preset", "acute_lbp", "--fat", "20"]) == 2
    assert "--preset sets the wasting itself; leave out --fat" in capsys.readouterr().err


def test_shot_with_a_scenario_changes_only_the_wasted_side_and_notes_what_is_missing(tmp_path, capsys):
    healthy, wasted = tmp_path / "healthy.png", tmp_path / "radiculopathy.png"
    assert main(["shot", "--out", str(healthy), "--size", "600x900", "--hide", "superficial", "intermediate"]) == 0
    assert main(["shot", "--preset", "l5_radiculopathy", "--out", str(wasted), "--size", "600x900",
                 "--view", "posterior"]) == 0  # a view of one's own: the whole back, as the healthy shot
    assert "note:" not in capsys.readouterr().err  # every muscle of this scenario is in the atlas
    before, after = (np.asarray(Image.open(p).convert("RGB")).astype(int) for p in (healthy, wasted))
    changed = np.abs(after - before).sum(axis=2) > 40
    ys, xs = np.nonzero(changed)
    assert len(xs) > 50
    assert np.mean(xs > 300) > 0.9  # the patient's right is on the right of a posterior view
    assert np.median(ys) > 0.6 * 900  # at the lumbosacral junction, low in the picture
    assert main(["shot", "--preset", "ageing", "--out", str(tmp_path / "old.png"), "--size", "320x240"]) == 0
    assert "note: psoas_major is not in this atlas" in capsys.readouterr().err


def test_scenario_shot_is_framed_on_the_wasting_levels(tmp_path):
    whole, framed = tmp_path / "whole.png", tmp_path / "framed.png"
    assert main(["shot", "--preset", "l5_radiculopathy", "--out", str(whole), "--size", "400x300",
                 "--view", "posterior"]) == 0
    assert main(["shot", "--preset", "l5_radiculopathy", "--out", str(framed), "--size", "400x300"]) == 0
    drawn = [(np.asarray(Image.open(p).convert("RGB")).astype(int).min(axis=2) < 200).mean() for p in (whole, framed)]
    # The close-up on L4-S1 fills the picture; the whole back is a narrow figure in a wide frame.
    assert drawn[1] > 0.4 and drawn[1] > 2.5 * drawn[0], drawn


def test_a_scenario_survives_a_state_file(real_atlas, tmp_path):
    scene = dorsum.Scene(atlas=real_atlas).preset("ageing", age=60)
    assert isinstance(scene.model.atrophy, tuple) and len(scene.model.atrophy) == 3  # no psoas here
    save_session(tmp_path / "state.toml", capture_session(scene.model))
    assert "[[atrophy]]" in (tmp_path / "state.toml").read_text()
    again = dorsum.Scene(atlas=real_atlas)
    from viewer.session import apply_session

    apply_session(load_session(tmp_path / "state.toml"), again.model)
    assert again.model.atrophy == scene.model.atrophy
    assert again.measure("longissimus", "L3-L4") == scene.measure("longissimus", "L3-L4")


def test_lesson_panels_take_a_scenario_and_print_it_in_captions(real_atlas, tmp_path):
    from viewer.figures.lesson import parse_lesson

    lesson = parse_lesson({"lesson": {"title": "Scenarios"}, "figures": [
        {"output": "ageing.png", "caption": "{explanation}", "panels": [
            {"caption": "Healthy"}, {"preset": "ageing", "age": 80, "caption": "{preset}"}]}]}, real_atlas)
    panels = lesson.figures[0].panels
    assert panels[1].caption == "Ageing of the paraspinal muscles, age 80"
    assert lesson.figures[0].caption.startswith("With age the lumbar paraspinal muscles")
    assert panels[1].scene.preset == "ageing" and panels[1].scene.age == 80
    with pytest.raises(DorsumError, match="age: 20 is out of range"):
        parse_lesson({"figures": [{"output": "a.png", "preset": "ageing", "age": 20}]}, real_atlas)


@pytest.mark.parametrize("muscle", ["longissimus", "iliocostalis"])
def test_erector_spinae_wastes_as_exactly_as_the_multifidus(real_atlas, muscle):
    scene = dorsum.Scene(atlas=real_atlas).atrophy(30, segments="L3-L5", side="right", fat=10, muscle=muscle)
    _assert_right_wastes_30_percent(scene, muscle, wasted=("L3-L4", "L4-L5"), spared=("L2-L3", "L5-S1"))


@pytest.mark.parametrize("muscle", ["psoas_major", "quadratus_lumborum", "longissimus"])
def test_paraspinal_muscles_of_the_imported_atlas_waste_exactly(bodyparts3d_atlas, muscle):
    scene = dorsum.Scene(atlas=bodyparts3d_atlas).atrophy(30, segments="L2-L4", side="right", muscle=muscle)
    _assert_right_wastes_30_percent(scene, muscle, wasted=("L2-L3", "L3-L4"), spared=("L1-L2", "L4-L5"))


def _assert_right_wastes_30_percent(scene, muscle: str, wasted: tuple[str, ...], spared: tuple[str, ...]) -> None:
    """30 ± 2 % lost on the right at the ``wasted`` discs; the left there and the ``spared`` discs unchanged."""
    table = scene.measure(muscle, ",".join(sorted(wasted + spared)))["levels"]
    for disc in wasted:
        assert table[disc]["right"]["change_percent"] == pytest.approx(-30.0, abs=2.0)
        assert table[disc]["left"]["change_percent"] == pytest.approx(0.0, abs=1.0)
    for disc in spared:
        assert table[disc]["right"]["change_percent"] == pytest.approx(0.0, abs=1.0)


def test_a_scenario_develops_over_time_with_a_scale(tmp_path, capsys):
    out = tmp_path / "ageing.gif"
    assert main(["animate", "--kind", "scenario", "--preset", "ageing", "--age", "80", "--frames", "4",
                 "--size", "320x400", "--out", str(out), "--quiet"]) == 0
    frames = []
    with Image.open(out) as gif:
        assert gif.n_frames == 4
        for index in (0, gif.n_frames - 1):
            gif.seek(index)
            frames.append(np.asarray(gif.convert("RGB")).astype(int))
    first, last = frames
    # The scale's marker: where the first frame's band is darker than the last's, and the reverse.
    darker = np.abs(first[:20] - 255).sum(axis=(0, 2)) - np.abs(last[:20] - 255).sum(axis=(0, 2))
    assert int(np.argmin(darker)) > int(np.argmax(darker)) + 100  # it moves from age 30 toward age 80
    fatty = lambda f: ((f[..., 0] > 120) & (f[..., 1] > 0.5 * f[..., 0]) & (f[..., 1] < 0.85 * f[..., 0])  # noqa: E731
                       & (f[..., 2] < 0.85 * f[..., 1]))[40:].sum()
    assert fatty(last) > fatty(first) + 50  # fat spreads with age
    assert main(["animate", "--kind", "scenario", "--out", str(tmp_path / "x.gif")]) == 2
    assert "give the scenario with --preset NAME" in capsys.readouterr().err
