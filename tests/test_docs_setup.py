"""Set-up and consistency a new user meets: the README's install lines, a clean checkout, where progress
goes, vertebrae in anatomical order, and documented numbers that match ``dorsum measure``."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from viewer.cli import main
from viewer.levels import VERTEBRAE, anatomical_order

ROOT = Path(__file__).resolve().parents[1]


def ci_packages() -> set[str]:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8").replace("\\\n", " ")
    line = next(line for line in script.splitlines() if "apt-get install" in line)
    return {word for word in shlex.split(line.split("apt-get install", 1)[1].split(">")[0]) if not word.startswith("-")}


def readme_install_line() -> set[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8").replace("\\\n", " ")
    line = next(line for line in text.splitlines() if line.startswith("sudo apt-get install"))
    return {word for word in shlex.split(line.split("apt-get install", 1)[1]) if not word.startswith("-")}


def test_readme_gives_the_whole_apt_line_ci_uses():
    packages = readme_install_line()
    assert ci_packages() <= packages, ci_packages() - packages
    assert {"python3-venv", "nodejs", "npm", "libegl1", "xvfb"} <= packages


def test_readme_first_line_leaves_the_checkout_clean():
    first = (ROOT / "README.md").read_text(encoding="utf-8").split("```sh\n", 1)[1].splitlines()[0]
    out = first.split("--out ", 1)[1].split()[0]
    ignored = [line.strip() for line in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()]
    assert f"/{out}" in ignored or out in ignored


def test_without_xvfb_the_suite_stops_with_one_line_saying_what_to_install(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "DISPLAY"}
    env.update(PATH=str(tmp_path), PYTHONPATH=str(ROOT))  # no Xvfb on this PATH
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_info.py"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 4, (run.returncode, run.stdout[-500:], run.stderr[-500:])
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "need Xvfb" in lines[0] and "sudo apt-get install xvfb" in lines[0]


def test_animate_progress_goes_to_stderr(fixture_atlas_dir, tmp_path, capsys):
    out = tmp_path / "t.gif"
    assert main(["animate", "--atlas", str(fixture_atlas_dir), "--kind", "turntable", "--frames", "2",
                 "--size", "64x48", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"wrote {out} (2 frames, 64x48)\n"
    assert "turntable" in captured.err


def test_vertebrae_sort_cranial_to_caudal():
    ids = ["trapezius_left", "vertebra_l1", "vertebra_t10", "vertebra_t2", "skull", "vertebra_c7",
           "disc_l5_s1", "disc_l4_l5", "sacrum"]
    assert anatomical_order(ids) == ["trapezius_left", "vertebra_c7", "vertebra_t2", "vertebra_t10", "vertebra_l1",
                                     "skull", "disc_l4_l5", "disc_l5_s1", "sacrum"]


def vertebra_order(names: list[str]) -> list[int]:
    return [VERTEBRAE.index(n.split("_")[1].upper()) for n in names if re.fullmatch(r"vertebra_[ctl]\d+", n)]


def test_info_lists_vertebrae_in_anatomical_order(capsys):
    assert main(["info"]) == 0
    table = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.startswith("  vertebra_")]
    assert len(table) == 24 and vertebra_order(table) == sorted(vertebra_order(table))
    assert main(["info", "--json"]) == 0
    listed = [s["id"] for s in json.loads(capsys.readouterr().out)["structures"]]
    assert vertebra_order(listed) == list(range(24))


def test_html_panel_lists_vertebrae_in_anatomical_order(real_atlas):
    from viewer.figures.html import scene_data
    from viewer.model import SceneModel

    model = SceneModel(real_atlas)
    model.show_only(["skeleton"])
    listed = [s["id"] for s in scene_data(model)["structures"]]
    assert vertebra_order(listed) == list(range(24))


def test_the_documented_measure_example_is_what_measure_prints(capsys):
    text = (ROOT / "docs" / "atrophy.md").read_text(encoding="utf-8")
    example = json.loads(text.split("```json\n", 1)[1].split("```", 1)[0])
    a = example["atrophy"]
    assert main(["measure", "--json", "--levels", ",".join(example["levels"]), "--atrophy", str(a["amount"]),
                 "--segments", a["segments"], "--side", a["side"], "--fat", str(a["fat"])]) == 0
    measured = json.loads(capsys.readouterr().out)
    hint = "docs/atrophy.md shows stale numbers: paste what 'dorsum measure --json' prints now"
    for disc, sides in example["levels"].items():
        for side, entry in sides.items():
            for key, value in entry.items():
                assert round(measured["levels"][disc][side][key], 2 if key != "change_percent" else 1) == value, hint
    for side, entry in example["volume_cm3"].items():
        for key, value in entry.items():
            assert round(measured["volume_cm3"][side][key], 1) == value, hint


def test_the_documented_healthy_range_is_what_measure_prints(capsys):
    text = (ROOT / "docs" / "atrophy.md").read_text(encoding="utf-8").replace("\n", " ")
    low, high = (float(v) for v in re.search(r"multifidus measures ([\d.]+) \(L1-L2\) to ([\d.]+) cm²", text).groups())
    assert main(["measure", "--json", "--levels", "L1-L2,L5-S1"]) == 0
    levels = json.loads(capsys.readouterr().out)["levels"]
    assert low == round(min(e["csa_cm2"] for e in levels["L1-L2"].values()), 1)
    assert high == round(min(e["csa_cm2"] for e in levels["L5-S1"].values()), 1)
