"""Bad or hostile input a user can give: HTML injection, DPI, state files, atrophy without data, labels.

Each case gets exit code 2 and one line on stderr (or, for the HTML page, text that stays text).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from viewer.cli import main

HOSTILE = "</script><script>alert(1)</script>"


def one_error_line(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"dorsum {command}: error: ")
    return err[0]


def copy_atlas(source: Path, target: Path, replace: tuple[str, str] | None = None) -> Path:
    shutil.copytree(source, target)
    if replace is not None:
        manifest = target / "atlas.toml"
        text = manifest.read_text(encoding="utf-8")
        assert replace[0] in text
        manifest.write_text(text.replace(*replace, 1), encoding="utf-8")
    return target


# -- item 13: the HTML export -------------------------------------------------------------------------
def test_html_export_keeps_hostile_names_and_titles_as_text(fixture_atlas_dir, tmp_path):
    atlas = copy_atlas(fixture_atlas_dir, tmp_path / "atlas",
                       ('name = "Mf Right"', 'name = "' + HOSTILE.replace('"', '\\"') + ' \\u2028&"'))
    out = tmp_path / "page.html"
    title = '</title><script>alert(2)</script> & "quotes"'
    assert main(["export", "--atlas", str(atlas), "--out", str(out), "--only", "deep", "--title", title]) == 0
    page = out.read_text(encoding="utf-8")
    assert page.count("<script") == 1 and page.count("</script>") == 1  # only the page's own script
    assert "alert(1)" in page and "<script>alert" not in page and "</title><script>" not in page
    assert "&lt;/title&gt;&lt;script&gt;alert(2)&lt;/script&gt; &amp; &quot;quotes&quot;" in page
    start = page.index("const SCENE = ") + len("const SCENE = ")
    data = json.loads(page[start: page.index(";\nfunction decode")])
    names = [s["name"] for s in data["structures"]]
    assert HOSTILE + " \u2028&" + " (right)" in names  # the name itself arrives intact, as data
    script = page[page.index("<script>") + len("<script>"): page.index("</script>")]
    assert "\u2028" not in script and "<" not in script.split("const SCENE = ", 1)[1].split(";\n", 1)[0]
    node = shutil.which("node")
    assert node, "Node.js is needed to check the page's script"
    (tmp_path / "page.js").write_text(script, encoding="utf-8")
    checked = subprocess.run([node, "--check", str(tmp_path / "page.js")], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr


# -- item 15: --dpi ----------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["-1", "nan", "1e300", "0", "inf", "9"])
def test_bad_dpi_is_refused_before_rendering(value, fixture_atlas_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("viewer.render.render_image", lambda *a, **k: pytest.fail("rendered"))
    out = tmp_path / "x.png"
    assert main(["shot", "--atlas", str(fixture_atlas_dir), "--out", str(out), f"--dpi={value}"]) == 2
    line = one_error_line(capsys, "shot")
    assert "dpi:" in line and "(allowed: 10 to 2400)" in line
    assert not out.exists()


def test_a_good_dpi_is_recorded(fixture_atlas_dir, tmp_path):
    from PIL import Image

    out = tmp_path / "x.png"
    assert main(["shot", "--atlas", str(fixture_atlas_dir), "--out", str(out), "--size", "64x48", "--dpi", "300"]) == 0
    with Image.open(out) as image:
        assert round(image.info["dpi"][0]) == 300


# -- item 23: state files that are not files -----------------------------------------------------------
@pytest.mark.parametrize("kind", ["device", "fifo", "huge"])
def test_a_state_that_is_not_a_small_regular_file_is_refused(kind, fixture_atlas_dir, tmp_path, capsys):
    if kind == "device":
        state = Path("/dev/zero")
    elif kind == "fifo":
        state = tmp_path / "state.toml"
        os.mkfifo(state)
    else:
        state = tmp_path / "state.toml"
        state.write_text("# " + "x" * (2 * 1024 * 1024) + "\nformat = 1\n", encoding="utf-8")
    code = main(["shot", "--atlas", str(fixture_atlas_dir), "--out", str(tmp_path / "x.png"), "--state", str(state)])
    assert code == 2
    line = one_error_line(capsys, "shot")
    assert str(state) in line
    assert ("not a regular file" in line) if kind != "huge" else ("too large" in line)


# -- item 23: a label asked for a hidden structure ---------------------------------------------------
def test_a_label_for_a_hidden_structure_gets_a_note(fixture_atlas_dir, tmp_path, capsys):
    out = tmp_path / "x.png"
    assert main(["shot", "--atlas", str(fixture_atlas_dir), "--out", str(out), "--size", "320x240",
                 "--hide", "superficial", "--labels", "sheet", "column"]) == 0
    err = capsys.readouterr().err
    assert "dorsum shot: note: no label for sheet: it is hidden in this figure" in err
    assert "column" not in err  # the visible one is labelled


def test_the_docs_give_the_atrophy_limit_the_code_enforces():
    import re

    from viewer.atrophy import MAX_AMOUNT

    root = Path(__file__).resolve().parents[1]
    for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        for match in re.finditer(r"CSA lost in percent \(0-(\d+)\)|atrophy[^.\n]{0,40}up to (\d+) ?%", doc.read_text()):
            limit = next(group for group in match.groups() if group)
            assert float(limit) == MAX_AMOUNT, f"{doc.name}: {match.group(0)}"
