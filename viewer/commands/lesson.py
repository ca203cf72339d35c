"""``dorsum lesson``: render every figure of a lesson file into a folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from viewer import __version__
from viewer.atlas import credit_lines
from viewer.errors import DorsumError
from viewer.figures.lesson import FigureSpec, Lesson, check_lesson_atrophy, check_lesson_outputs, load_lesson
from viewer.output import save_png
from viewer.scene_options import add_atlas_argument, load_atlas_from_args

if TYPE_CHECKING:
    from viewer.figures.parallel import LessonJob

#: Most processes ``--jobs`` starts.
MAX_JOBS = 16


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "lesson", help="render all figures of a lesson file (see docs/lessons.md)",
        description="Render every figure a lesson file lists, the same pixels every time. The whole file is "
                    "checked first and every problem reported at once; nothing is rendered until it is valid. "
                    "Examples: lessons/three-layers.toml, lessons/multifidus-atrophy.toml; format: docs/lessons.md.")
    parser.add_argument("file", type=Path, metavar="FILE", help="lesson file (.toml)")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder for the figures (created if missing)")
    add_atlas_argument(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace figures that already exist in DIR")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--jobs", default="1", metavar="N",
                        help="render figures in N processes at once (default: 1; about the number of CPU cores)")
    parser.set_defaults(run=run)


def figure_parameters(lesson: Lesson, figure: FigureSpec, atlas_label: str) -> dict[str, Any]:
    """What is stored in each PNG so that a figure can be traced back to its lesson entry."""
    return {"command": "lesson", "dorsum": __version__, "atlas": atlas_label, "lesson": lesson.source.name,
            "background": lesson.background, "lighting": lesson.lighting, **figure.as_dict()}


def save_figure(lesson: Lesson, figure: FigureSpec, pixels: np.ndarray, job: LessonJob) -> Path:
    """Write one figure of ``lesson`` with its parameters in the PNG (in whichever process rendered it)."""
    return save_png(job.folder / figure.output, pixels,
                    parameters=figure_parameters(lesson, figure, job.atlas_label), overwrite=job.overwrite,
                    dpi=lesson.dpi)


def parse_jobs(value: str) -> int:
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_JOBS:
        raise DorsumError(f"jobs: {value!r} is not a whole number from 1 to {MAX_JOBS}")
    return int(text)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from viewer.figures.figure import render_figures
    from viewer.figures.parallel import LessonJob, render_lesson_parallel

    jobs = parse_jobs(args.jobs)
    atlas = load_atlas_from_args(args)
    lesson = load_lesson(args.file, atlas)
    check_lesson_atrophy(lesson, atlas)
    folder = check_lesson_outputs(lesson, args.out, overwrite=args.overwrite)
    atlas_label = f"{atlas.name} {atlas.version}"
    written: list[Path] = []
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        disable=args.quiet, transient=False, console=Console(stderr=True))

    with progress:
        task = progress.add_task(f"{lesson.source.name}", total=len(lesson.figures))

        def save(figure: FigureSpec, pixels: np.ndarray, notes: list[str]) -> None:
            for note in notes:
                progress.console.print(f"dorsum lesson: note: {figure.output}: {note}", style="yellow",
                                       highlight=False, soft_wrap=True)
            path = save_png(folder / figure.output, pixels, parameters=figure_parameters(lesson, figure, atlas_label),
                            overwrite=args.overwrite, dpi=lesson.dpi, credits=credit_lines(atlas))
            written.append(path)
            progress.update(task, advance=1, description=f"{lesson.source.name}: {figure.output}")

        if jobs > 1 and len(lesson.figures) > 1:
            def done(figure: FigureSpec, path: Path, notes: list[str]) -> None:
                for note in notes:
                    progress.console.print(f"dorsum lesson: note: {figure.output}: {note}", style="yellow",
                                           highlight=False, soft_wrap=True)
                progress.update(task, advance=1, description=f"{lesson.source.name}: {figure.output}")

            job = LessonJob(args.atlas, args.file, folder, args.overwrite, atlas_label, save_figure)
            written = render_lesson_parallel(atlas, lesson, job, jobs, done)
        else:
            render_figures(atlas, lesson.figures, lighting=lesson.lighting,
                           transparent=lesson.background == "transparent", on_figure=save)
    for path in written:
        print(f"wrote {path}")
    return 0
