"""Speed of the foundation, as ratios against bare PyVista/VTK doing the same work in the same run.

(a) ``dorsum shot`` cold start vs a bare ``import pyvista`` + one-mesh off-screen screenshot;
(b) frame time of the full scene vs the same triangles as one bare actor;
(c) toggling a layer and re-rendering vs a plain re-render.

Run: ``python benchmarks/bench_foundation.py [--atlas DIR] [--out results/foundation.json]``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(Path(__file__).parent), str(ROOT)]
from timing import benchmark_args, median_process_seconds, median_seconds, report, row  # noqa: E402

BARE_SHOT = (
    "import pyvista as pv; p = pv.Plotter(off_screen=True, window_size=[800, 600]); "
    "p.add_mesh(pv.Sphere()); p.screenshot('{out}')"
)


def cold_start(atlas: Path | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        shot = [sys.executable, "-m", "viewer.cli", "shot", "--size", "800x600", "--overwrite",
                "--out", os.path.join(folder, "a.png")] + (["--atlas", str(atlas)] if atlas else [])
        bare = [sys.executable, "-c", BARE_SHOT.format(out=os.path.join(folder, "b.png"))]
        return row(median_process_seconds(shot, cwd=ROOT), median_process_seconds(bare))


def frame_times(atlas_dir: Path | None) -> tuple[dict[str, float], dict[str, float]]:
    import pyvista as pv

    from viewer.atlas import load_atlas
    from viewer.model import SceneModel
    from viewer.render import SceneRenderer, cpu_friendly_theme, offscreen_plotter

    atlas = load_atlas(atlas_dir)
    model = SceneModel(atlas)
    plotter = offscreen_plotter((800, 600))
    renderer = SceneRenderer(plotter, model)
    plotter.show(auto_close=False, interactive=False)  # after this, render() really draws

    def orbit(p: pv.Plotter) -> None:
        p.camera.azimuth = 2.0
        p.render()

    scene = median_seconds(lambda: orbit(plotter), repeats=15, warmup=3)
    merged = pv.merge([renderer.polydata(sid) for sid in atlas.structure_ids])
    bare = pv.Plotter(off_screen=True, window_size=[800, 600], theme=cpu_friendly_theme())
    bare.add_mesh(merged, color="tan")
    bare.camera_position = plotter.camera_position
    bare.show(auto_close=False, interactive=False)
    baseline = median_seconds(lambda: orbit(bare), repeats=15, warmup=3)

    layer = atlas.layer_names[0]
    state = {"visible": True}

    def toggle() -> None:
        state["visible"] = not state["visible"]
        model.set_layer_visible(layer, state["visible"])
        plotter.render()  # an off-screen renderer draws only when asked

    toggled = median_seconds(toggle, repeats=15, warmup=2)
    plain = median_seconds(plotter.render, repeats=15, warmup=2)
    renderer.close()
    plotter.close()
    bare.close()
    return row(scene, baseline), row(toggled, plain)


def main() -> None:
    args = benchmark_args("foundation", __doc__.splitlines()[0])
    frame, toggle = frame_times(args.atlas)
    results = {
        "cold start: dorsum shot / bare": cold_start(args.atlas),
        "frame: scene / one bare actor": frame,
        "layer toggle+render / render": toggle,
    }
    report("foundation", results, args.out)


if __name__ == "__main__":
    main()
