"""``dorsum view`` as a real process on its own X server: the window appears, draws, and closes cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import ImageGrab

ROOT = Path(__file__).resolve().parent.parent
SCREEN = (1600, 1000)


@pytest.fixture
def x_display():
    """A fresh Xvfb server (24-bit colour) for the process under test; its display name."""
    read, write = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24",
                               "-nolisten", "tcp"], pass_fds=(write,), stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()
    assert number.isdigit(), "Xvfb did not start"
    yield f":{number}"
    server.terminate()
    server.wait(timeout=10)


def grab(display: str) -> np.ndarray:
    return np.asarray(ImageGrab.grab(xdisplay=display).convert("RGB")).astype(int)


def fixture_red(pixels: np.ndarray) -> float:
    """Fraction of the screen showing the superficial layer of the fixture atlas (#c81e1e, shaded)."""
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    return float(((r > 60) & (r > 3 * g) & (r > 3 * b)).mean())


def bone_beige(pixels: np.ndarray) -> float:
    """Fraction of the screen in the fixture skeleton's beige (#e8dcc0, shaded): yellowish, not red, not grey."""
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    return float(((r - b > 18) & (g - b > 10) & (r - g < 40) & (r > 90)).mean())


def panel_grey(pixels: np.ndarray) -> float:
    """Fraction of the screen in the light grey of Qt's window background (the side panel, menus)."""
    return float((np.abs(pixels - 239).max(axis=2) <= 6).mean())


def test_dorsum_view_with_state_opens_draws_and_closes(x_display, fixture_atlas_dir, tmp_path):
    env = {**os.environ, "DISPLAY": x_display, "QT_QPA_PLATFORM": "xcb"}
    env.pop("WAYLAND_DISPLAY", None)
    # A saved view: the skeleton hidden, seen from the left.
    state = tmp_path / "lecture.toml"
    state.write_text("format = 1\n[camera]\nview = 'left'\nposition = [-900.0, 0.0, 0.0]\n"
                     "focal_point = [0.0, 0.0, 0.0]\nup = [0.0, 0.0, 1.0]\nview_angle = 20.0\n"
                     "[layers.skeleton]\nvisible = false\nopacity = 1.0\n")
    process = subprocess.Popen([sys.executable, "-m", "viewer.cli", "view", "--atlas", str(fixture_atlas_dir),
                                "--state", str(state)],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        pixels = grab(x_display)
        while time.monotonic() < deadline and not (fixture_red(pixels) > 0.05 and panel_grey(pixels) > 0.05):
            assert process.poll() is None, f"dorsum view exited early: {process.stderr.read()}"
            time.sleep(0.5)
            pixels = grab(x_display)
        from PIL import Image

        Image.fromarray(pixels.astype(np.uint8)).save(tmp_path / "screen.png")
        assert fixture_red(pixels) > 0.05, "the 3D view is blank"
        assert panel_grey(pixels) > 0.05, "the side panel is missing"
        assert bone_beige(pixels) < 0.001, "the state file's hidden skeleton is drawn"
        # The body is drawn left of the panel: the red is in the left part of the window.
        columns = np.flatnonzero(((pixels[..., 0] > 60) & (pixels[..., 0] > 3 * pixels[..., 1])).any(axis=0))
        assert columns.max() < 0.75 * SCREEN[0]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            out, err = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode == 0, err
    assert "Traceback" not in err


QUIT_AND_DISCARD = """
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox
import viewer.app.main as main
from viewer.cli import build_parser

args = build_parser().parse_args(["view", "--atlas", sys.argv[1]])
show = main.MainWindow.show

def show_then_quit(window):
    show(window)
    def edit_and_quit():
        window.layers_panel.toggle_layer("deep")  # an unsaved change: closing asks
        def discard():
            box = QApplication.activeModalWidget()
            if isinstance(box, QMessageBox):
                box.button(QMessageBox.StandardButton.Discard).click()
            else:
                QTimer.singleShot(100, discard)  # the question is not up yet
        QTimer.singleShot(100, discard)
        next(a for a in window.actions() if a.text() == "&Quit").trigger()  # File > Quit
    QTimer.singleShot(500, edit_and_quit)

main.MainWindow.show = show_then_quit
sys.exit(main.run_app(args))
"""


def test_file_quit_discard_closes_without_a_traceback(x_display, fixture_atlas_dir):
    env = {**os.environ, "DISPLAY": x_display, "QT_QPA_PLATFORM": "xcb"}
    env.pop("WAYLAND_DISPLAY", None)
    result = subprocess.run([sys.executable, "-c", QUIT_AND_DISCARD, str(fixture_atlas_dir)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "Error" not in result.stderr, result.stderr
