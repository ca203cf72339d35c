"""Rendering the figures of a lesson in several processes (``dorsum lesson --jobs N``).

Each worker process holds one :class:`viewer.figures.figure.FigureRenderer` for all the figures it
is given, renders them and writes their PNG files itself; the parent hands out figures one at a
time and collects the notes. On systems with ``fork`` the workers inherit the loaded atlas and the
atrophy calibrations the parent has already made; elsewhere each worker loads them again.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from viewer.atlas import Atlas, load_atlas
from viewer.figures.lesson import FigureSpec, Lesson, load_lesson



@dataclass(frozen=True)
class LessonJob:
    """What a worker needs to render and save figures of one lesson."""

    atlas_dir: Path | None
    lesson_file: Path
    folder: Path
    overwrite: bool
    atlas_label: str
    save: Callable[[Lesson, FigureSpec, Any, LessonJob], Path]


_inherited: tuple[Atlas, Lesson] | None = None  # set in the parent before forking
_worker: dict[str, Any] = {}


def _start_worker(job: LessonJob) -> None:
    from viewer.figures.figure import FigureRenderer

    if _inherited is not None:
        atlas, lesson = _inherited
    else:
        atlas = load_atlas(job.atlas_dir)
        lesson = load_lesson(job.lesson_file, atlas)
    _worker.update(job=job, lesson=lesson, renderer=FigureRenderer(
        atlas, lighting=lesson.lighting, transparent=lesson.background == "transparent"))


def _render_one(index: int) -> tuple[int, Path, list[str]]:
    job, lesson, renderer = _worker["job"], _worker["lesson"], _worker["renderer"]
    figure = lesson.figures[index]
    pixels = renderer.render_figure(figure)
    path = job.save(lesson, figure, pixels, job)
    return index, path, list(renderer.notes)


def render_lesson_parallel(atlas: Atlas, lesson: Lesson, job: LessonJob, jobs: int,
                           on_figure: Callable[[FigureSpec, Path, list[str]], None]) -> list[Path]:
    """Render and save every figure of ``lesson`` in ``jobs`` processes; paths in lesson order.

    ``job.save(lesson, figure, pixels, job)`` writes one figure (a module-level
    function, so that it reaches the workers); ``on_figure`` is called in the parent as each
    figure is done (any order).
    """
    global _inherited
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    _inherited = (atlas, lesson) if context.get_start_method() == "fork" else None
    paths: dict[int, Path] = {}
    try:
        with ProcessPoolExecutor(max_workers=min(jobs, len(lesson.figures)), mp_context=context,
                                 initializer=_start_worker, initargs=(job,)) as pool:
            futures = [pool.submit(_render_one, index) for index in range(len(lesson.figures))]
            for future in as_completed(futures):
                index, path, notes = future.result()
                paths[index] = path
                on_figure(lesson.figures[index], path, notes)
    finally:
        _inherited = None
    return [paths[index] for index in sorted(paths)]

