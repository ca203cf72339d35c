"""The Python API (``import viewer as dorsum``), used the way docs/api.md and the notebook use it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_shot import load, share

import viewer as dorsum
from viewer.cli import main
from viewer.errors import DorsumError
from viewer.output import read_png_parameters

ROOT = Path(__file__).resolve().parents[1]
SIZE = (320, 240)


def test_peel_and_screenshot_match_the_command_line(fixture_atlas_dir, tmp_path):
    scene = dorsum.Scene(atlas=fixture_atlas_dir).hide("superficial")
    picture = scene.screenshot(tmp_path / "api.png", size=SIZE)
    assert main(["shot", "--atlas", str(fixture_atlas_dir), "--out", str(tmp_path / "cli.png"), "--size", "320x240",
                 "--hide", "superficial"]) == 0
    api, cli = load(tmp_path / "api.png"), load(tmp_path / "cli.png")
    assert api.shape == (240, 320, 3) and picture.size == SIZE
    assert share(api, "red") == 0.0 and share(api, "green") > 0.05
    np.testing.assert_array_equal(api, cli)  # one code path: the same pixels
    stored = read_png_parameters(tmp_path / "api.png")
    assert stored["hide"] == ["superficial"] and stored["size"] == [320, 240]


def test_opacity_lets_the_deeper_layer_through(fixture_atlas_dir):
    opaque = dorsum.Scene(atlas=fixture_atlas_dir).render(SIZE).pixels.astype(int)
    glass = dorsum.Scene(atlas=fixture_atlas_dir).opacity("superficial", 0.2).render(SIZE).pixels.astype(int)
    centre = (slice(100, 140), slice(140, 180))
    assert opaque[centre][..., 1].mean() < glass[centre][..., 1].mean() - 20


def test_atrophy_and_measure_on_the_real_atlas(real_atlas):
    scene = dorsum.Scene(atlas=real_atlas).atrophy(30, segments="L4-S1", side="right", fat=20)
    table = scene.measure(levels=["L4-L5", "L5-S1"])
    for disc in ("L4-L5", "L5-S1"):
        assert table["levels"][disc]["right"]["change_percent"] == pytest.approx(-30.0, abs=2.0)
        assert table["levels"][disc]["left"]["change_percent"] == pytest.approx(0.0, abs=0.5)
    assert scene.healthy().measure(levels="L4-L5")["levels"]["L4-L5"]["right"]["change_percent"] == \
        pytest.approx(0.0, abs=1e-6)


def test_section_picture_has_the_size_asked_and_shows_muscle(real_atlas, tmp_path):
    picture = dorsum.Scene(atlas=real_atlas).section("L4-L5", size=(600, 450))
    assert picture.size == (600, 450)
    saved = picture.save(tmp_path / "slice.png")
    image = np.asarray(Image.open(saved)).astype(int)
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    assert ((r > 100) & (r > g + 40) & (r > b + 20)).mean() > 0.02  # muscle red is drawn
    assert read_png_parameters(saved)["section"] == "L4-L5"


def test_errors_are_the_command_lines_one_line_errors(fixture_atlas_dir, tmp_path, capsys):
    scene = dorsum.Scene(atlas=fixture_atlas_dir)
    with pytest.raises(DorsumError) as raised:
        scene.hide("no_such_muscle")
    assert main(["shot", "--atlas", str(fixture_atlas_dir), "--out", str(tmp_path / "x.png"),
                 "--hide", "no_such_muscle"]) == 2
    assert str(raised.value) in capsys.readouterr().err
    with pytest.raises(DorsumError, match="out of range"):
        scene.render((10, 10))
    with pytest.raises(DorsumError, match="unknown value 'sideways'"):
        scene.set_view("sideways")
    (tmp_path / "kept.png").write_bytes(b"mine")
    with pytest.raises(DorsumError, match="file exists"):
        scene.screenshot(tmp_path / "kept.png", size=SIZE)
    assert (tmp_path / "kept.png").read_bytes() == b"mine"


def test_notebook_repr_is_a_png(fixture_atlas_dir):
    png = dorsum.Scene(atlas=fixture_atlas_dir)._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert "structures shown" in repr(dorsum.Scene(atlas=fixture_atlas_dir))


def test_example_notebook_runs_top_to_bottom(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(ROOT / "docs" / "example.ipynb", as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # the scene, the wasted multifidus and the section
    assert (tmp_path / "figure.png").is_file() and (tmp_path / "slice.png").is_file()
    assert [o for o in outputs if "image/gif" in o.get("data", {})]  # the turntable, shown
    with Image.open(tmp_path / "turntable.gif") as movie:
        assert movie.size == (480, 360) and movie.n_frames == 12
    # The test environment has the notebook extra: the last cell is the interactive trame view.
    last = notebook.cells[-1]
    assert last.source.strip() == "scene.show()"
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in last.outputs)
