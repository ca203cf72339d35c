"""Work done in the background while the lecturer looks at the first frame.

The level of detail used while turning the camera and the atrophy calibration of the range the
atrophy panel shows (about half a second per side on the built-in atlas) are computed in a worker
thread, so the first drag of the camera or the amount slider answers at once. Only numpy work runs
in the thread: its results land in caches (``SceneRenderer.prepare_lod``, the atrophy module's
memoised calibrations) that the main thread would otherwise fill on first use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from viewer.model import SceneModel
from viewer.render import SceneRenderer

SIDES = ("left", "right", "both")


def warm_atrophy(model: SceneModel, muscle: str, segments: str, sides: Iterable[str] = SIDES) -> None:
    """Calibrate ``muscle`` for ``segments`` on each side by applying a little atrophy to a scratch model."""
    from viewer.atrophy import AtrophyParams, apply_atrophy

    scratch = SceneModel(model.atlas)
    for side in sides:
        apply_atrophy(scratch, AtrophyParams(amount=5.0, segments=segments, side=side, muscle=muscle))


class Warmer:
    """Runs warm-up jobs one after another in a daemon thread; failures are ignored (the main thread
    then does the work on first use and reports any error itself)."""

    def __init__(self) -> None:
        self._jobs: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, job: Callable[[], None]) -> None:
        with self._lock:
            self._jobs.append(job)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="dorsum-warmup", daemon=True)
                self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the queued jobs; True when all are done."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return thread is None or not thread.is_alive()

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._jobs:
                    return
                job = self._jobs.pop(0)
            try:
                job()
            except Exception:  # noqa: BLE001 - the same work is redone, and reported, on first use
                pass


def warm_viewer(warmer: Warmer, renderer: SceneRenderer, model: SceneModel, muscle: str, segments: str) -> None:
    """Queue the level of detail and the calibration of ``segments`` (the panel's range)."""
    warmer.add(renderer.prepare_lod)
    if muscle in model.atlas.muscles:
        warmer.add(lambda: warm_atrophy(model, muscle, segments))
