"""``scene.show()`` in a real Jupyter kernel (nbclient): PyVista's trame view of the scene, or a picture.

The kernel renders off-screen (server-side rendering needs no display); what the browser gets is
checked from outside the kernel over loopback while the kernel is idle, and once in headless
Chromium (Debian's package, installed by .ci/run) looking at the page as a notebook user would.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import nbformat
import numpy as np
import pytest
import websocket
from nbclient import NotebookClient
from PIL import Image
from test_shot import load, share

import viewer as dorsum
from viewer.errors import DorsumError

WIDGET = "application/vnd.jupyter.widget-view+json"


def kernel_cells(*sources: str):
    """A notebook of ``sources`` and a client whose kernel runs them one at a time (``client.run(i)``)."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    client = NotebookClient(notebook, timeout=300, kernel_name="python3")

    def run(index: int):
        cell = notebook.cells[index]
        client.execute_cell(cell, index)
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, "\n".join(errors[0].traceback)
        return cell.outputs

    return client, run


def printed(outputs) -> dict:
    return json.loads("".join(o.text for o in outputs if o.output_type == "stream" and o.name == "stdout"))


def bluish(image: np.ndarray) -> float:
    """Fraction of pixels in the deep layer's blue, also seen through the green glass of the intermediate."""
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    return float(((b > r + 40) & (b > g + 10)).mean())


def greenish(image: np.ndarray) -> float:
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    return float(((g > r + 30) & (g > b + 30)).mean())


def test_show_in_a_notebook_is_a_trame_view_holding_the_scene(fixture_atlas_dir, tmp_path):
    shot = tmp_path / "server.png"
    client, run = kernel_cells(
        "import json, ipywidgets\nimport viewer as dorsum\n"
        f"scene = dorsum.Scene(atlas={str(fixture_atlas_dir)!r}).hide('superficial').opacity('intermediate', 0.3)",
        "view = scene.show(size=(320, 240))\nview",
        "plotter = view.viewer.plotter\n"
        f"plotter.screenshot({str(shot)!r})\n"
        "print(json.dumps({'widget': isinstance(view, ipywidgets.DOMWidget), 'src': view.src,\n"
        "                  'size': list(plotter.window_size),\n"
        "                  'actors': {sid: [bool(a.visibility), a.prop.color.hex_rgb, a.prop.opacity]\n"
        "                             for sid, a in plotter.actors.items()}}))",
        "pushed, update = [], view.viewer.update\n"
        "view.viewer.update = lambda **kw: (pushed.append(1), update(**kw))\n"
        "scene.hide('deep')\n"
        "plotter.render()\n"
        f"plotter.screenshot({str(tmp_path / 'after.png')!r})\n"
        "print(json.dumps({'pushed': len(pushed), 'actors': {sid: bool(a.visibility) for sid, a in plotter.actors.items()}}))",
    )
    with client.setup_kernel():
        run(0)
        shown = run(1)
        assert any(WIDGET in o.get("data", {}) for o in shown)  # the cell displays a widget, not text
        facts = printed(run(2))
        assert facts["widget"] and facts["size"] == [320, 240]
        # One actor per structure, as the scene shows it: superficial hidden, intermediate at 0.3.
        assert facts["actors"] == {"sheet": [False, "#c81e1e", 1.0], "column": [True, "#1ec81e", 0.3],
                                   "mf_right": [True, "#1e1ec8", 1.0], "mf_left": [True, "#1e1ec8", 1.0],
                                   "bone": [True, "#e8dcc0", 1.0]}
        # What the kernel renders for the browser: no superficial red, the deep blue through the glass.
        server = load(shot)
        assert server.shape == (240, 320, 3)
        assert share(server, "red") == 0.0 and bluish(server) > 0.03 and greenish(server) > 0.01
        # The kernel serves the trame page and everything it loads itself, over loopback only.
        page_url = facts["src"]
        assert page_url.startswith("http://localhost:")
        with urllib.request.urlopen(page_url, timeout=60) as response:
            page = response.read().decode()
        assert response.status == 200 and 'data-app-name="trame"' in page
        assets = [a for a in re.findall(r'(?:src|href)="([^"]+)"', page) if a != "."]
        assert any(a.endswith(".js") for a in assets)
        for asset in assets:
            assert not asset.startswith(("http:", "https:", "//")), asset  # nothing from the internet
            with urllib.request.urlopen(page_url.split("index.html")[0] + asset, timeout=60) as response:
                assert response.status == 200 and response.read()
        # A later change of the scene reaches the same view, which pushes it to the browser.
        after = printed(run(3))
    assert after["actors"] == {"sheet": False, "column": True, "mf_right": False, "mf_left": False, "bone": True}
    assert after["pushed"] >= 1  # the view was told to send the new picture
    assert bluish(load(tmp_path / "after.png")) == 0.0 and greenish(load(tmp_path / "after.png")) > 0.01


def test_show_without_trame_shows_the_picture(fixture_atlas_dir):
    client, run = kernel_cells(
        "import sys\nfor name in ('trame', 'trame_vtk', 'trame_pyvista'):\n    sys.modules[name] = None  # not installed",
        "import viewer as dorsum\n"
        f"dorsum.Scene(atlas={str(fixture_atlas_dir)!r}).hide('superficial').show(size=(320, 240))",
    )
    with client.setup_kernel():
        run(0)
        outputs = run(1)
    data = next(o.data for o in outputs if o.output_type == "execute_result")
    assert WIDGET not in data
    picture = np.asarray(Image.open(io.BytesIO(base64.b64decode(data["image/png"])))).astype(int)
    assert picture.shape[:2] == (240, 320)
    assert share(picture, "red") == 0.0 and share(picture, "green") > 0.05


def test_static_mode_is_the_picture_a_screenshot_saves(fixture_atlas_dir, tmp_path):
    scene = dorsum.Scene(atlas=fixture_atlas_dir).hide("superficial")
    image = scene.notebook_view(mode="static", size=(320, 240))
    scene.screenshot(tmp_path / "same.png", size=(320, 240))
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(image.data))).astype(int),
                                  load(tmp_path / "same.png"))


def exported_actors(node: dict):
    """(visible, diffuse colour as #rrggbb, opacity) of every actor in a trame-vtk scene export."""
    def walk(item):
        yield item
        for child in item.get("dependencies", []):
            yield from walk(child)

    found = []
    for item in walk(node):
        if "Actor" in item["type"]:
            prop = next(p["properties"] for p in walk(item) if "Property" in p["type"])
            colour = "#" + "".join(f"{round(c * 255):02x}" for c in prop["diffuseColor"])
            found.append((bool(item["properties"]["visibility"]), colour, prop["opacity"]))
    return sorted(found)


def test_html_mode_puts_the_visible_structures_into_the_cell(fixture_atlas_dir):
    import zipfile

    scene = dorsum.Scene(atlas=fixture_atlas_dir).only("deep", "skeleton").opacity("skeleton", 0.5)
    widget = scene.notebook_view(mode="html", size=(320, 240))
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(widget.scene))) as archive:
        index = json.loads(archive.read("index.json"))
    # Both multifidus muscles and the glassy bone; the hidden sheets are not sent to the browser.
    assert exported_actors(index["scene"]) == [(True, "#1e1ec8", 1.0), (True, "#1e1ec8", 1.0),
                                               (True, "#e8dcc0", 0.5)]


def test_unknown_mode_is_one_line(fixture_atlas_dir):
    with pytest.raises(DorsumError, match="mode: unknown value 'webgl'"):
        dorsum.Scene(atlas=fixture_atlas_dir).notebook_view(mode="webgl")



def test_server_and_client_modes_are_served_by_the_kernel(fixture_atlas_dir):
    client, run = kernel_cells(
        "import json, ipywidgets\nimport viewer as dorsum\n"
        f"scene = dorsum.Scene(atlas={str(fixture_atlas_dir)!r})\n"
        "views = {mode: scene.show(mode=mode, size=(320, 240)) for mode in ('server', 'client')}\n"
        "print(json.dumps({mode: [isinstance(v, ipywidgets.DOMWidget), v.src,\n"
        "                         sorted(sid for sid, a in v.viewer.plotter.actors.items() if a.visibility)]\n"
        "                  for mode, v in views.items()}))",
    )
    with client.setup_kernel():
        facts = printed(run(0))
        for mode, (is_widget, src, shown) in facts.items():
            assert is_widget and shown == ["bone", "column", "mf_left", "mf_right", "sheet"], mode
            with urllib.request.urlopen(src, timeout=60) as response:
                assert response.status == 200 and 'data-app-name="trame"' in response.read().decode(), mode


class Browser:
    """Headless Chromium on a page, driven over the DevTools protocol (screenshots only)."""

    def __init__(self, url: str, profile, size: tuple[int, int]):
        executable = shutil.which("chromium")
        assert executable, "the notebook view test needs Chromium: sudo apt-get install chromium (README)"
        # As root in a sandbox-less container, with nothing reaching out to the network.
        self.process = subprocess.Popen(
            [executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}", "--remote-debugging-port=0",
             url], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            # Headless only: not the tests' X server or anything else another test left in the environment.
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(profile)})
        port_file = Path(profile) / "DevToolsActivePort"
        self.socket = None
        for _ in range(1200):  # until Chromium says where it listens (a hang guard, not a timing)
            if port_file.is_file() and port_file.read_text().count("\n") >= 1:
                break
            time.sleep(0.1)
        port = int(port_file.read_text().splitlines()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=30) as response:
            pages = [t for t in json.loads(response.read()) if t["type"] == "page"]
        # Chromium may list a new-tab page first: prefer the page showing ``url``, else send one there.
        page = next((t for t in pages if t["url"].startswith(url)), pages[0])
        self.socket = websocket.create_connection(page["webSocketDebuggerUrl"], suppress_origin=True, timeout=30)
        self.calls = 0
        if not page["url"].startswith(url):
            self.call("Page.navigate", {"url": url})

    def call(self, method: str, params: dict) -> dict | None:
        """Send a DevTools command; its result, or None when the browser did not answer in time."""
        self.calls += 1
        self.socket.send(json.dumps({"id": self.calls, "method": method, "params": params}))
        try:
            while True:
                message = json.loads(self.socket.recv())
                if message.get("id") == self.calls:
                    return message.get("result", {})
        except websocket.WebSocketTimeoutException:
            return None

    def screenshot(self) -> np.ndarray | None:
        """The page as shown now, or None when the browser did not answer in time (asked again later)."""
        result = self.call("Page.captureScreenshot", {"format": "png"})
        if result is None:
            return None
        data = base64.b64decode(result["data"])
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)

    def wait_for(self, seen, patience_s: float = 300.0) -> np.ndarray:
        """The first screenshot for which ``seen(pixels)`` holds, or the last one once patience runs out.

        Patience is a hang guard for a loaded machine, never a measure: the test asserts pixels.
        """
        give_up = time.monotonic() + patience_s
        pixels = self.screenshot()
        while (pixels is None or not seen(pixels)) and time.monotonic() < give_up:
            time.sleep(0.5)
            pixels = self.screenshot()
        assert pixels is not None, "Chromium gave no screenshot"
        return pixels

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()
        self.process.terminate()
        self.process.wait(timeout=30)


def test_a_browser_shows_the_kernels_view_and_its_later_changes(fixture_atlas_dir, tmp_path):
    client, run = kernel_cells(
        "import viewer as dorsum\n"
        f"scene = dorsum.Scene(atlas={str(fixture_atlas_dir)!r}).hide('superficial').opacity('intermediate', 0.3)\n"
        "view = scene.show(size=(640, 480))\nprint(view.src)",
        "scene.hide('deep')",
    )
    with client.setup_kernel():
        url = "".join(o.text for o in run(0) if o.output_type == "stream").strip()
        browser = Browser(url, tmp_path / "profile", (640, 480))
        try:
            # The page connects to the kernel, which renders off-screen and streams the picture.
            before = browser.wait_for(lambda p: bluish(p) > 0.03)
            run(1)
            # The streamed pictures are JPEG: allow a few stray pixels at edges.
            after = browser.wait_for(lambda p: bluish(p) < 0.002)
        finally:
            browser.close()
    for name, pixels in (("before", before), ("after", after)):
        Image.fromarray(pixels.astype(np.uint8)).save(tmp_path / f"{name}.png")
    assert share(before, "red") == 0.0 and bluish(before) > 0.03 and greenish(before) > 0.01
    assert bluish(after) < 0.002 and greenish(after) > 0.01  # the deep layer went, the glass stayed
