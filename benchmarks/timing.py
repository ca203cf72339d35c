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
    """Print each measurement as subject/baseline, its ratio and its goal, and write them as JSON."""
    print(f"{name} (median wall times; ratio = subject / baseline on this machine, this run)")
    for key, entry in results.items():
        print(f"  {key:<44} {entry['subject_s'] * 1e3:9.1f} ms vs {entry['baseline_s'] * 1e3:9.1f} ms  "
              f"ratio {entry['ratio']:5.2f}  {goal_text(entry)}"
              + (f"  (CPU time ratio {entry['cpu_ratio']:.2f})" if "cpu_ratio" in entry else ""))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"benchmark": name, "python": sys.version.split()[0], "machine": machine(),
                                   "results": results}, indent=2))
        print(f"wrote {out}")


def row(subject_s: float, baseline_s: float, **goal: float) -> dict[str, float]:
    """A measurement against its baseline; ``goal`` is one of ``goal_ratio`` (subject/baseline at most),
    ``goal_fps`` (1/subject at least) or ``goal_seconds`` (subject at most), plus any extra numbers."""
    entry = {"subject_s": subject_s, "baseline_s": baseline_s, "ratio": subject_s / baseline_s, **goal}
    if "goal_ratio" in goal:
        entry["met"] = entry["ratio"] <= goal["goal_ratio"]
    elif "goal_fps" in goal:
        entry["fps"] = 1.0 / subject_s
        entry["met"] = entry["fps"] >= goal["goal_fps"]
    elif "goal_seconds" in goal:
        entry["met"] = subject_s <= goal["goal_seconds"]
    return entry


def goal_text(entry: dict[str, float]) -> str:
    if "goal_ratio" in entry:
        text = f"goal <= {entry['goal_ratio']:g}x"
    elif "goal_fps" in entry:
        text = f"{entry['fps']:5.1f} fps, goal >= {entry['goal_fps']:g} fps"
    elif "goal_seconds" in entry:
        text = f"goal <= {entry['goal_seconds']:g} s"
    elif "fps" in entry:
        return f"{entry['fps']:5.1f} fps (reference, no goal)"
    else:
        return ""
    return f"{text}: {'met' if entry['met'] else 'NOT met'}"


def machine() -> dict[str, object]:
    """CPU model, core count and load, so that figures can be read with their machine."""
    model = ""
    try:
        model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo", encoding="utf-8")
                      if line.startswith("model name")), "")
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {"cpu": model, "cores": os.cpu_count(), "load_1min": round(load[0], 2), "platform": sys.platform}


def start_xvfb(size: str = "1920x1200x24") -> subprocess.Popen:
    """A private Xvfb server; sets DISPLAY for this process. The caller terminates it."""
    read, write = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", size, "-nolisten", "tcp"],
                              pass_fds=(write,), stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()
    if not number.isdigit():
        raise RuntimeError("Xvfb did not start (install xvfb)")
    os.environ["DISPLAY"] = f":{number}"
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    return server


def benchmark_args(name: str, description: str) -> argparse.Namespace:
    """Parse ``--atlas`` and ``--out`` (default ``benchmarks/results/NAME.json``); render off-screen via EGL."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--atlas", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path(f"benchmarks/results/{name}.json"))
    args = parser.parse_args()
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    return args
