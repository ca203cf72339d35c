"""Speed of the live viewer, measured by dragging the real window's 3D view under Xvfb.

(a) frames per second while the camera turns (mouse drag through Qt into VTK's interactor) with the
    3D view at 1280x800: the built-in atlas, and a synthetic atlas of about 900k triangles (the
    built-in meshes with the largest subdivided: the size of an imported BodyParts3D atlas);
    baseline: a bare pyvistaqt window holding the same triangles as one mesh, dragged alike;
(b) translucent frame (superficial layer at 0.5) / opaque frame, both while turning;
(c) the first step of the atrophy amount slider once the viewer has opened (its calibration
    warmed in the background), against a plain render of the window;
(d) for reference, a drag frame of the same window with every layer hidden: what Qt, the X server
    and the interactor cost a frame before anything is drawn (the ceiling of the frame rate).
Goals (issue 13): >= 20 fps built-in, >= 15 fps imported-size, translucent <= 1.5x opaque,
first atrophy drag <= 0.3 s.

Run: ``python benchmarks/bench_interaction.py [--atlas DIR] [--out results/interaction.json]``
(starts its own Xvfb when DISPLAY is not set).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(Path(__file__).parent), str(ROOT)]
from timing import benchmark_args, report, row, start_xvfb  # noqa: E402

VIEW_SIZE = (1280, 800)
MOVES = 40


def synthetic_atlas(folder: Path, target_triangles: int = 900_000) -> Path:
    """A copy of the built-in atlas whose largest meshes are subdivided (4x triangles) until ~``target``."""
    import numpy as np
    import trimesh

    from viewer.atlas import default_atlas_dir, load_atlas

    source = default_atlas_dir()
    shutil.copytree(source, folder, dirs_exist_ok=True)
    atlas = load_atlas(source)
    total = sum(m.n_triangles for m in atlas.meshes.values())
    for structure in sorted(atlas.structures, key=lambda s: -atlas.meshes[s.id].n_triangles):
        if total >= target_triangles:
            break
        mesh = atlas.meshes[structure.id]
        attributes = {name: np.asarray(values, dtype=float)[:, None] for name, values in mesh.point_data.items()}
        vertices, faces, extra = trimesh.remesh.subdivide(mesh.vertices, mesh.faces, vertex_attributes=attributes)
        finer = trimesh.Trimesh(vertices, faces, process=False)
        for name, values in ((n, v.ravel()) for n, v in extra.items()):
            kind = mesh.point_data[name].dtype
            finer.vertex_attributes[name] = np.rint(values).astype(kind) if kind.kind in "iu" else values.astype(kind)
        finer.export(folder / structure.mesh.relative_to(source))
        total += 3 * mesh.n_triangles
    return folder


class _Renders:
    """Counts renders of a render window."""

    def __init__(self, render_window):
        self.count = 0
        render_window.AddObserver("EndEvent", self._seen)

    def _seen(self, *_):
        self.count += 1


def drag(app, widget, moves: int = MOVES) -> tuple[float, float]:
    """Median seconds per frame of a left-button drag across ``widget`` (Qt mouse events into VTK's
    interactor, events processed after each move as in a real drag), and renders per move."""
    import statistics

    from PySide6.QtCore import QEvent, QPointF, Qt
    from PySide6.QtGui import QMouseEvent

    def send(kind, x, y, buttons):
        point = QPointF(x, y)
        event = QMouseEvent(kind, point, widget.mapToGlobal(point), Qt.MouseButton.LeftButton, buttons,
                            Qt.KeyboardModifier.NoModifier)
        app.sendEvent(widget, event)
        app.processEvents()

    width, height = widget.width(), widget.height()
    x0, y = width * 0.3, height * 0.5
    counter = _Renders(widget._RenderWindow)
    send(QEvent.Type.MouseButtonPress, x0, y, Qt.MouseButton.LeftButton)
    times = []
    start_count = counter.count
    for step in range(1, moves + 1):
        start = time.perf_counter()
        send(QEvent.Type.MouseMove, x0 + step * 0.4 * width / moves, y, Qt.MouseButton.LeftButton)
        times.append(time.perf_counter() - start)
    renders = (counter.count - start_count) / moves
    send(QEvent.Type.MouseButtonRelease, x0 + 0.4 * width, y, Qt.MouseButton.NoButton)
    for _ in range(5):
        app.processEvents()
    return statistics.median(times[3:]), renders


def size_view(app, window, widget) -> None:
    """Resize ``window`` so that ``widget`` (its 3D view) is exactly :data:`VIEW_SIZE`."""
    for _ in range(4):
        app.processEvents()
        dw, dh = VIEW_SIZE[0] - widget.width(), VIEW_SIZE[1] - widget.height()
        if dw == 0 and dh == 0:
            return
        window.resize(window.width() + dw, window.height() + dh)
    app.processEvents()


def viewer_fps(app, atlas_dir: Path | None, translucent: bool = False,
               empty: bool = False) -> tuple[float, float, int]:
    """Seconds per frame of dragging Dorsum's window, renders per move, and the triangle count
    (``empty``: with every layer hidden)."""
    from viewer.app.window import MainWindow
    from viewer.atlas import load_atlas
    from viewer.model import SceneModel

    atlas = load_atlas(atlas_dir)
    model = SceneModel(atlas)
    window = MainWindow(model)
    window.show()
    size_view(app, window, window.plotter.interactor)
    window.warmer.wait(120)
    if translucent:
        model.set_opacity(atlas.layer_names[0], 0.5)
    if empty:
        with model.batch():
            for layer in atlas.layer_names:
                model.set_layer_visible(layer, False)
    window.render_scheduler.render_now()
    seconds, renders = drag(app, window.plotter.interactor)
    triangles = sum(m.n_triangles for m in atlas.meshes.values())
    window.undo_stack.setClean()
    window.close()
    window.shutdown()
    return seconds, renders, triangles


def bare_fps(app, atlas_dir: Path | None) -> float:
    """Seconds per frame of dragging a bare pyvistaqt window holding the atlas as one merged mesh."""
    import numpy as np
    import pyvista as pv
    from pyvistaqt import QtInteractor
    from PySide6.QtWidgets import QMainWindow

    from viewer.atlas import load_atlas

    atlas = load_atlas(atlas_dir)
    meshes = list(atlas.meshes.values())
    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
    vertices = np.concatenate([m.vertices for m in meshes])
    faces = np.concatenate([m.faces + o for m, o in zip(meshes, offsets)])
    merged = pv.PolyData(vertices, np.column_stack([np.full(len(faces), 3), faces]).ravel())
    window = QMainWindow()
    plotter = QtInteractor(window, multi_samples=0)
    window.setCentralWidget(plotter.interactor)
    plotter.add_mesh(merged, color="tan", smooth_shading=True)
    plotter.view_xz(negative=True)
    window.show()
    size_view(app, window, plotter.interactor)
    plotter.render()
    seconds, _ = drag(app, plotter.interactor)
    plotter.close()
    window.close()
    return seconds


def first_atrophy_step(app, atlas_dir: Path | None) -> tuple[float, float]:
    """Seconds from moving the amount slider to the drawn frame, after the viewer opened; and one render."""
    from viewer import atrophy
    from viewer.app.window import MainWindow
    from viewer.atlas import load_atlas
    from viewer.model import SceneModel

    atrophy.calibration.cache_clear()
    atrophy.bony_bed.cache_clear()
    model = SceneModel(load_atlas(atlas_dir))
    window = MainWindow(model)
    window.show()
    size_view(app, window, window.plotter.interactor)
    window.warmer.wait(300)  # the lecturer looks at the first frame meanwhile
    start = time.perf_counter()
    window.render_scheduler.render_now()
    plain = time.perf_counter() - start
    start = time.perf_counter()
    window.atrophy_panel.amount.setValue(30)
    window.atrophy_panel._apply_timer.timeout.emit()
    window.render_scheduler.render_now()
    step = time.perf_counter() - start
    window.undo_stack.setClean()
    window.close()
    window.shutdown()
    return step, plain


def main() -> None:
    args = benchmark_args("interaction", __doc__.splitlines()[0])
    server = start_xvfb() if not os.environ.get("DISPLAY") else None
    os.environ.pop("VTK_DEFAULT_OPENGL_WINDOW", None)  # a real X window, not EGL
    try:
        from PySide6.QtWidgets import QApplication

        app = QApplication.instance() or QApplication([])
        results: dict[str, dict[str, float]] = {}
        built_in, renders, triangles = viewer_fps(app, args.atlas)
        results[f"drag frame, built-in ({triangles} tri) / bare"] = row(built_in, bare_fps(app, args.atlas),
                                                                          goal_fps=20, renders_per_move=renders)
        translucent, _, _ = viewer_fps(app, args.atlas, translucent=True)
        results["drag frame, translucent / opaque"] = row(translucent, built_in, goal_ratio=1.5)
        empty, _, _ = viewer_fps(app, args.atlas, empty=True)
        results["drag frame, nothing shown / built-in (reference)"] = row(empty, built_in, fps=1.0 / empty)
        with tempfile.TemporaryDirectory() as folder:
            big = synthetic_atlas(Path(folder) / "atlas")
            seconds, renders, triangles = viewer_fps(app, big)
            results[f"drag frame, synthetic ({triangles} tri) / bare"] = row(seconds, bare_fps(app, big), goal_fps=15,
                                                                             renders_per_move=renders)
        step, plain = first_atrophy_step(app, args.atlas)
        results["first atrophy step / render"] = row(step, plain, goal_seconds=0.3)
        report("interaction", results, args.out)
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
