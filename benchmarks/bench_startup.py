"""Cold starts, as ratios against bare scripts doing the same work in the same run.

(a) ``dorsum shot`` of the whole atlas at 1600x1000 vs a vedo script (brainrender's engine) and a
    bare pyvista script that load the same PLY files and save a screenshot of the same size
    (goals: <= 0.9x vedo, <= 1.1x pyvista);
(b) ``dorsum view``: process start to the first frame drawn in the shown window, vs a bare
    pyvistaqt window showing one mesh of the same triangle count (goal: <= 1.5x).
vedo is only needed here: ``pip install '.[bench]'``.

Run: ``python benchmarks/bench_startup.py [--atlas DIR] [--out results/startup.json]``
(starts its own Xvfb for (b) when DISPLAY is not set).
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(Path(__file__).parent), str(ROOT)]
from timing import benchmark_args, report, row, start_xvfb  # noqa: E402

SIZE = (1600, 1000)
REPEATS = 3
#: Cold shots: the three commands run in turn, this many rounds after one untimed round, so that a
#: change of load on a shared machine affects all three alike.
SHOT_ROUNDS = 5

VEDO_SHOT = """
import sys, glob
import vedo
files = sorted(glob.glob(sys.argv[1] + "/**/*.ply", recursive=True))
plotter = vedo.Plotter(offscreen=True, size={size})
plotter.show(*[vedo.Mesh(f) for f in files], interactive=False)
plotter.screenshot(sys.argv[2])
"""

PYVISTA_SHOT = """
import sys, glob
import pyvista as pv
files = sorted(glob.glob(sys.argv[1] + "/**/*.ply", recursive=True))
plotter = pv.Plotter(off_screen=True, window_size={size})
for f in files:
    plotter.add_mesh(pv.read(f))
plotter.screenshot(sys.argv[2])
"""

# Both first-frame drivers print the monotonic clock when the shown window has drawn its first frame.
FIRST_FRAME_HOOK = """
import os, sys, time
import pyvistaqt
from PySide6.QtWidgets import QApplication

_init = pyvistaqt.QtInteractor.__init__

def _hooked(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    def drawn(*_):
        if self.interactor.isVisible():
            print(time.monotonic(), flush=True)
            os._exit(0)
    self.render_window.AddObserver("EndEvent", drawn)

pyvistaqt.QtInteractor.__init__ = _hooked
"""

DORSUM_VIEW = FIRST_FRAME_HOOK + """
from viewer.cli import main
main(["view", *sys.argv[1:]])
"""

BARE_VIEW = FIRST_FRAME_HOOK + """
import pyvista as pv
from PySide6.QtWidgets import QMainWindow
app = QApplication([])
window = QMainWindow()
plotter = pyvistaqt.QtInteractor(window, multi_samples=0)
window.setCentralWidget(plotter.interactor)
n = int(sys.argv[1])
side = int((n / 2) ** 0.5) + 2
plotter.add_mesh(pv.Sphere(theta_resolution=side, phi_resolution=side), color="tan")
window.resize(1280, 820)
window.show()
app.exec()
"""


def interleaved_process_seconds(commands: dict[str, list[str]],
                                rounds: int = SHOT_ROUNDS) -> dict[str, tuple[float, float]]:
    """Median wall time and median CPU time (user + system, all threads) of each command, run in
    turn (round robin) after one untimed round. CPU time varies far less with the load of a shared
    machine than wall time does."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for round_number in range(rounds + 1):
        for name, argv in commands.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True, cwd=ROOT)
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            if round_number:
                times[name].append((wall, cpu))
    return {name: (statistics.median(w for w, _ in values), statistics.median(c for _, c in values))
            for name, values in times.items()}


def cold_shot(atlas: Path) -> dict[str, dict[str, float]]:
    size = list(SIZE)
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        seconds = interleaved_process_seconds({
            "dorsum": [sys.executable, "-m", "viewer.cli", "shot", "--atlas", str(atlas), "--overwrite",
                       "--size", f"{SIZE[0]}x{SIZE[1]}", "--out", str(out / "dorsum.png")],
            "vedo": [sys.executable, "-c", VEDO_SHOT.format(size=tuple(size)), str(atlas), str(out / "vedo.png")],
            "bare": [sys.executable, "-c", PYVISTA_SHOT.format(size=size), str(atlas), str(out / "pyvista.png")],
        })
    (dorsum, dorsum_cpu), (vedo, vedo_cpu), (bare, bare_cpu) = seconds["dorsum"], seconds["vedo"], seconds["bare"]
    return {"cold start: dorsum shot / vedo script": row(dorsum, vedo, goal_ratio=0.9, cpu_ratio=dorsum_cpu / vedo_cpu),
            "cold start: dorsum shot / bare pyvista script": row(dorsum, bare, goal_ratio=1.1,
                                                                 cpu_ratio=dorsum_cpu / bare_cpu)}


def first_frame_seconds(scripts: dict[str, tuple[str, list[str]]]) -> dict[str, float]:
    """Median seconds from process start to the first frame of each script, run in turn."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("VTK_DEFAULT_OPENGL_WINDOW", None)
    times: dict[str, list[float]] = {name: [] for name in scripts}
    for round_number in range(REPEATS + 1):
        for name, (script, args) in scripts.items():
            start = time.monotonic()
            result = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                                    env=env, cwd=ROOT, timeout=300)
            if round_number:
                times[name].append(float(result.stdout.strip().splitlines()[-1]) - start)
    return {name: statistics.median(values) for name, values in times.items()}


def first_frame(atlas: Path) -> dict[str, dict[str, float]]:
    from viewer.atlas import load_atlas

    triangles = sum(m.n_triangles for m in load_atlas(atlas).meshes.values())
    server = start_xvfb() if not os.environ.get("DISPLAY") else None
    try:
        seconds = first_frame_seconds({"dorsum": (DORSUM_VIEW, ["--atlas", str(atlas)]),
                                       "bare": (BARE_VIEW, [str(triangles)])})
        dorsum, bare = seconds["dorsum"], seconds["bare"]
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
    return {f"first frame: dorsum view / bare pyvistaqt ({triangles} tri)": row(dorsum, bare, goal_ratio=1.5)}


def main() -> None:
    args = benchmark_args("startup", __doc__.splitlines()[0])
    from viewer.atlas import default_atlas_dir

    atlas = Path(args.atlas or default_atlas_dir())
    results = cold_shot(atlas)
    results.update(first_frame(atlas))
    report("startup", results, args.out)


if __name__ == "__main__":
    main()
