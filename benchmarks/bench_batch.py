"""Batch figures: a lesson figure and an animation frame against a separate ``dorsum shot``.

(a) one figure of a 6-figure lesson (``dorsum lesson`` time / 6) vs one ``dorsum shot`` of the
    same size (goal: <= 0.6x): a lesson reuses one renderer and renders each picture once;
(b) ``dorsum lesson --jobs 2`` vs ``--jobs 1`` on the same lesson (processes in parallel);
(c) one frame of a 12-frame turntable GIF vs one ``dorsum shot`` of the same size.

Run: ``python benchmarks/bench_batch.py [--atlas DIR] [--out results/batch.json]``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(Path(__file__).parent), str(ROOT)]
from timing import benchmark_args, median_process_seconds, report, row  # noqa: E402

SIZE = "1200x900"
VIEWS = ("posterior", "posterolateral_right", "left", "posterior", "posterolateral_left", "right")
HIDES = ([], ["superficial"], [], ["superficial", "intermediate"], ["superficial"], [])
FRAMES = 12


def lesson_text() -> str:
    figures = []
    for index, (view, hide) in enumerate(zip(VIEWS, HIDES)):
        figures.append(f'[[figures]]\noutput = "f{index}.png"\nview = "{view}"\nhide = {hide!r}\n'.replace("'", '"'))
    return f'[lesson]\nsize = "{SIZE}"\n\n' + "\n".join(figures)


def main() -> None:
    args = benchmark_args("batch", __doc__.splitlines()[0])
    atlas = ["--atlas", str(args.atlas)] if args.atlas else []
    cli = [sys.executable, "-m", "viewer.cli"]
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        lesson = out / "lesson.toml"
        lesson.write_text(lesson_text())
        shot = median_process_seconds(cli + ["shot", "--size", SIZE, "--overwrite", "--out", str(out / "s.png"),
                                             "--view", "posterolateral_right", "--hide", "superficial", *atlas],
                                      cwd=ROOT)
        one = median_process_seconds(cli + ["lesson", str(lesson), "--out", str(out / "one"), "--overwrite",
                                            "--quiet", *atlas], cwd=ROOT)
        two = median_process_seconds(cli + ["lesson", str(lesson), "--out", str(out / "two"), "--overwrite",
                                            "--quiet", "--jobs", "2", *atlas], cwd=ROOT)
        gif = median_process_seconds(cli + ["animate", "--kind", "turntable", "--frames", str(FRAMES), "--size", SIZE,
                                            "--overwrite", "--quiet", "--out", str(out / "t.gif"), *atlas], cwd=ROOT)
    figures = len(VIEWS)
    report("batch", {
        "lesson figure / separate shot": row(one / figures, shot, goal_ratio=0.6),
        "lesson --jobs 2 / --jobs 1": row(two, one),
        "turntable frame / separate shot": row(gif / FRAMES, shot),
    }, args.out)


if __name__ == "__main__":
    main()
