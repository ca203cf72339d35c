"""Speed of the atrophy model, as ratios against a plain re-render with no change, in the same run.

(a) moving the amount slider: ``apply_atrophy`` for the multifidus (model only: the blend of the
    precomputed displacement fields and the model update) vs a plain re-render;
(b) the same with a renderer attached, so it includes updating points and normals in place and
    the re-render, vs a plain re-render;
(c) the first calibration (closest points on bone, sampling, refining) for a new range and side,
    vs a plain re-render, to show what the first drag costs once.

Run: ``python benchmarks/bench_atrophy.py [--atlas DIR] [--out results/atrophy.json]``.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(Path(__file__).parent), str(ROOT)]
from timing import benchmark_args, median_seconds, report, row  # noqa: E402


def measure(atlas_dir: Path | None) -> dict[str, dict[str, float]]:
    from viewer import atrophy
    from viewer.atlas import load_atlas
    from viewer.model import SceneModel
    from viewer.render import SceneRenderer, offscreen_plotter

    atlas = load_atlas(atlas_dir)
    amounts = itertools.cycle([10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 35.0, 5.0])

    def drag(model: SceneModel) -> None:
        atrophy.apply_atrophy(model, atrophy.AtrophyParams(next(amounts), "L4-S1", "right", 30.0))

    bare_model = SceneModel(atlas)
    drag(bare_model)  # calibrates once
    model_only = median_seconds(lambda: drag(bare_model), repeats=41, warmup=3)

    model = SceneModel(atlas)
    plotter = offscreen_plotter((800, 600))
    renderer = SceneRenderer(plotter, model)
    renderer.set_view("posterior")
    plotter.show(auto_close=False, interactive=False)  # after this, render() really draws
    plain = median_seconds(plotter.render, repeats=21, warmup=3)
    with_render = median_seconds(lambda: (drag(model), plotter.render()), repeats=21, warmup=3)

    def first_calibration() -> None:
        atrophy.calibration.cache_clear()
        atrophy.bony_bed.cache_clear()
        atrophy.calibration(atlas, "multifidus_right", "L4-S1", (1,))

    calibrate = median_seconds(first_calibration, repeats=3, warmup=0)
    renderer.close()
    plotter.close()
    return {
        "slider step, model only / render": row(model_only, plain),
        "slider step + render / render": row(with_render, plain),
        "first calibration / render": row(calibrate, plain),
    }


def main() -> None:
    args = benchmark_args("atrophy", __doc__.splitlines()[0])
    report("atrophy", measure(args.atlas), args.out)


if __name__ == "__main__":
    main()
