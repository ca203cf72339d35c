"""`dorsum shot`: what a user sees in the picture and on the terminal."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from viewer.cli import main
from viewer.errors import DorsumError
from viewer.output import read_png_parameters, save_png

SMALL = "320x240"


def shot(atlas_dir, out, *extra: str) -> int:
    return main(["shot", "--atlas", str(atlas_dir), "--out", str(out), "--size", SMALL, *extra])


def load(path) -> np.ndarray:
    return np.asarray(Image.open(path)).astype(int)


def share(image: np.ndarray, colour: str) -> float:
    """Fraction of pixels whose hue is the fixture layer's pure colour (shading changes brightness only)."""
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    masks = {
        "red": (r > 60) & (r > 2 * g) & (r > 2 * b),
        "green": (g > 60) & (g > 2 * r) & (g > 2 * b),
        "blue": (b > 60) & (b > 2 * r) & (b > 2 * g),
        "ivory": (r > 90) & (r - b > 15) & (r - b < 80) & (g > 0.8 * r) & (r < 250),
    }
    return float(masks[colour].mean())


def test_all_layers_then_superficial_hidden(fixture_atlas_dir, tmp_path):
    assert shot(fixture_atlas_dir, tmp_path / "all.png") == 0
    assert shot(fixture_atlas_dir, tmp_path / "peeled.png", "--hide", "superficial") == 0
    full, peeled = load(tmp_path / "all.png"), load(tmp_path / "peeled.png")
    assert full.shape == peeled.shape == (240, 320, 3)
    assert share(full, "red") > 0.1
    assert share(peeled, "red") == 0.0
    assert share(peeled, "green") > 0.05
    assert np.abs(full - peeled).mean() > 5


def test_only_deep_shows_no_other_layer(fixture_atlas_dir, tmp_path):
    assert shot(fixture_atlas_dir, tmp_path / "deep.png", "--only", "deep", "--view", "posterolateral_left") == 0
    image = load(tmp_path / "deep.png")
    assert share(image, "blue") > 0.03
    assert share(image, "red") == share(image, "green") == share(image, "ivory") == 0.0


def test_half_transparent_layer_shows_the_one_below(fixture_atlas_dir, tmp_path):
    shot(fixture_atlas_dir, tmp_path / "opaque.png")
    shot(fixture_atlas_dir, tmp_path / "glass.png", "--opacity", "superficial=0.2")
    opaque, glass = load(tmp_path / "opaque.png"), load(tmp_path / "glass.png")
    centre = (slice(100, 140), slice(140, 180))
    assert opaque[centre][..., 1].mean() < glass[centre][..., 1].mean() - 20  # green shows through red


def test_exact_size_transparent_background_and_metadata(fixture_atlas_dir, tmp_path):
    out = tmp_path / "t.png"
    assert main(["shot", "--atlas", str(fixture_atlas_dir), "--out", str(out), "--size", "333x201",
                 "--transparent", "--hide", "skeleton", "--dpi", "300"]) == 0
    image = Image.open(out)
    assert image.size == (333, 201) and image.mode == "RGBA"
    alpha = np.asarray(image)[..., 3]
    assert alpha[0, 0] == 0 and alpha[-1, -1] == 0
    assert alpha[100, 166] == 255
    params = read_png_parameters(out)
    assert params["hide"] == ["skeleton"] and params["size"] == [333, 201] and params["transparent"] is True
    assert round(image.info["dpi"][0]) == 300


def test_very_large_picture_has_exact_size(fixture_atlas_dir, tmp_path):
    out = tmp_path / "8k.png"
    assert main(["shot", "--atlas", str(fixture_atlas_dir), "--out", str(out), "--size", "7680x4320"]) == 0
    image = load(out)
    assert image.shape == (4320, 7680, 3)
    assert share(image, "red") > 0.1


def test_refuses_to_clobber_and_keeps_the_old_file(fixture_atlas_dir, tmp_path, capsys):
    out = tmp_path / "mine.png"
    out.write_bytes(b"precious")
    assert shot(fixture_atlas_dir, out) == 2
    assert out.read_bytes() == b"precious"
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--overwrite" in err
    assert shot(fixture_atlas_dir, out, "--overwrite") == 0
    assert load(out).shape == (240, 320, 3)


def test_failed_write_leaves_old_file_intact_and_no_temp(tmp_path, monkeypatch):
    out = tmp_path / "fig.png"
    save_png(out, np.zeros((4, 4, 3), np.uint8))
    before = out.read_bytes()
    from PIL import Image as PilImage

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(PilImage.Image, "save", broken_save)
    with pytest.raises(DorsumError, match="disk full.*the existing file is unchanged"):  # one line, not a traceback
        save_png(out, np.ones((4, 4, 3), np.uint8) * 255, overwrite=True)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["fig.png"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--hide", "middle"], "unknown layer or structure 'middle' (layers: superficial, intermediate, deep"),
        (["--size", "20000x10"], "size: '20000x10' is out of range"),
        (["--size", "big"], "size: 'big' is not WIDTHxHEIGHT"),
        (["--opacity", "deep=2"], "opacity of deep: '2' is out of range (allowed: 0 to 1)"),
        (["--opacity", "deep"], "opacity: 'deep' is not NAME=VALUE"),
        (["--view", "top"], "argument --view: invalid choice: 'top'"),
        (["--only", "superficial", "--hide", "superficial"], "nothing left to show"),
    ],
)
def test_bad_options_give_one_line_errors(fixture_atlas_dir, tmp_path, capsys, args, expected):
    with pytest.raises(SystemExit) if args[0] == "--view" else _no_raise() as _:
        code = main(["shot", "--atlas", str(fixture_atlas_dir), "--out", str(tmp_path / "x.png"), *args])
        assert code == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "x.png").exists()


def test_bad_output_places(fixture_atlas_dir, tmp_path, capsys):
    assert shot(fixture_atlas_dir, tmp_path / "no" / "such" / "dir.png") == 2
    assert "does not exist; create it first" in capsys.readouterr().err
    assert shot(fixture_atlas_dir, tmp_path / "picture.jpg") == 2
    assert "unsupported file type '.jpg' (use .png)" in capsys.readouterr().err


def test_view_without_display_says_so(monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["view"]) == 2
    err = capsys.readouterr().err
    assert "no display" in err and "dorsum shot" in err and err.count("\n") == 1


class _no_raise:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_plain_dorsum_with_options_means_view(monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["--hide", "superficial"]) == 2
    assert "dorsum view: error: no display" in capsys.readouterr().err


def test_saved_picture_has_ordinary_permissions(tmp_path):
    import os
    import stat

    out = save_png(tmp_path / "p.png", np.zeros((4, 4, 3), np.uint8))
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~mask


def test_a_picture_never_loads_pyvista_or_matplotlib(tmp_path):
    """PyVista's plotting package imports matplotlib.pyplot: about a second of a cold `dorsum shot`.
    The picture is drawn with plain VTK and is the same picture the viewer draws (see test_render_state)."""
    import subprocess
    import sys

    out = tmp_path / "back.png"
    code = ("import sys; from viewer.cli import main; code = main(['shot', '--size', '320x200', '--out', "
            f"{str(out)!r}]); print(code, sorted(m for m in ('pyvista', 'matplotlib', 'PySide6') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.stdout.split("\n")[-2] == "0 []", result.stdout + result.stderr
    assert Image.open(out).size == (320, 200)
