"""Timing helpers for the benchmarks: medians of repeated runs, and ratios against a baseline."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path


def median_seconds(action: Callable[[], object], repeats: int = 7, warmup: int = 1) -> float:
    """Median wall time of ``action`` over ``repeats`` runs after ``warmup`` untimed runs."""
    for _ in range(warmup):
        action()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def median_process_seconds(argv: Sequence[str], repeats: int = 3, cwd: Path | None = None) -> float:
    """Median wall time of running a fresh process (a cold start)."""
    def run() -> None:
        subprocess.run(list(argv), check=True, capture_output=True, cwd=cwd)
    return median_seconds(run, repeats=repeats, warmup=1)


def report(name: str, results: dict[str, dict[str, float]], out: Path | None) -> None:
    """Print each measurement as subject/baseline and its ratio, and write them as JSON."""
    print(f"{name} (median wall times; ratio = subject / baseline on this machine, this run)")
    for key, row in results.items():
        print(f"  {key:<34} {row['subject_s'] * 1e3:9.2f} ms vs {row['baseline_s'] * 1e3:9.2f} ms  "
              f"ratio {row['ratio']:6.2f}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"benchmark": name, "python": sys.version.split()[0], "results": results},
                                  indent=2))
        print(f"wrote {out}")


def row(subject_s: float, baseline_s: float) -> dict[str, float]:
    return {"subject_s": subject_s, "baseline_s": baseline_s, "ratio": subject_s / baseline_s}


def benchmark_args(name: str, description: str) -> argparse.Namespace:
    """Parse ``--atlas`` and ``--out`` (default ``benchmarks/results/NAME.json``); render off-screen via EGL."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--atlas", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path(f"benchmarks/results/{name}.json"))
    args = parser.parse_args()
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    return args
