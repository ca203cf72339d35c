"""``dorsum lesson``: render every figure of a lesson file into a folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from viewer.scene_options import add_atlas_argument

if TYPE_CHECKING:
    from viewer.figures.lesson import FigureSpec, Lesson


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


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from viewer.api import check_jobs, render_lesson

    jobs = check_jobs(args.jobs)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        disable=args.quiet, transient=False, console=Console(stderr=True))
    task: list[Any] = []

    def start(lesson: Lesson) -> None:
        progress.start()
        task.append(progress.add_task(f"{lesson.source.name}", total=len(lesson.figures)))

    def done(figure: FigureSpec, path: Path, notes: list[str]) -> None:
        for note in notes:
            progress.console.print(f"dorsum lesson: note: {figure.output}: {note}", style="yellow",
                                   highlight=False, soft_wrap=True)
        progress.update(task[0], advance=1, description=f"{args.file.name}: {figure.output}")

    try:
        written = render_lesson(args.file, args.out, atlas=args.atlas, overwrite=args.overwrite, jobs=jobs,
                                on_start=start, on_figure=done)
    finally:
        progress.stop()
    for path in written:
        print(f"wrote {path}")
    return 0
