"""A printable quiz: one page per question (numbered pointers, no names) and a separate answer sheet.

Pages are A4 portrait at 150 dpi. ``png`` writes ``question-01.png`` ... and ``answers.png``;
``pdf`` writes ``quiz.pdf`` (the questions) and ``answers.pdf`` (the sheet), so the questions can be
handed out without the answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from viewer.atlas import Atlas
from viewer.errors import DorsumError
from viewer.figures import compose
from viewer.figures.figure import FigureRenderer, framing_camera, reset_model
from viewer.output import check_output_path, write_atomically
from viewer.render import Camera
from viewer.quiz import Question

PAGE = (1240, 1754)  # A4 at 150 dpi
DPI = 150
FORMATS = ("png", "pdf")
ANSWER_LINE = "Answer: ______________________________"
#: Level coordinates a level question's picture frames: T12's centre to S1's (see viewer.levels).
LUMBAR_FROM, LUMBAR_TO = 18.0, 24.0


def handout_paths(out_dir: Path, count: int, fmt: str) -> tuple[list[Path], Path]:
    """(question files, answer file) a handout of ``count`` questions writes into ``out_dir``."""
    if fmt == "pdf":
        return [out_dir / "quiz.pdf"], out_dir / "answers.pdf"
    return [out_dir / f"question-{i:02d}.png" for i in range(1, count + 1)], out_dir / "answers.png"


def page_prompt(number: int, question: Question) -> str:
    """The question as printed: the picture's pointer carries the question's number instead of a name."""
    if question.kind == "name":
        return f"{number}. Name the muscle marked {number}."
    if question.kind == "layer":
        return f"{number}. To which layer (superficial, intermediate or deep) does the muscle marked {number} belong?"
    if question.kind == "click":
        return f"{number}. Circle the {question.answer.lower()} on the picture."
    if question.kind == "order":
        return f"{number}. Put these layers in order from superficial to deep: {', '.join(question.choices)}."
    return f"{number}. {question.prompt}"


def question_page(renderer: FigureRenderer, number: int, question: Question) -> np.ndarray:
    """The page of one question, (h, w, 3) uint8."""
    model = renderer.model
    reset_model(model)
    prompt = page_prompt(number, question)
    if question.kind == "order":
        return text_page(prompt, [ANSWER_LINE])
    with model.batch():
        if question.only:
            model.show_only(question.only)
        for layer in question.hide:
            model.set_layer_visible(layer, False)
    if question.atrophy is not None:
        from viewer.atrophy import apply_atrophy

        apply_atrophy(model, question.atrophy)
    pointed = question.targets if question.kind in ("name", "layer") else ()
    camera = lumbar_camera(renderer, question.targets) if question.kind == "level" else None
    renderer.label_overrides = {sid: str(number) for sid in pointed}
    try:
        for view in _views_toward(model.atlas, pointed):
            pixels = renderer.render_current(PAGE, view=view, camera=camera, title=prompt, caption=ANSWER_LINE,
                                             labels=pointed)
            if not (pointed and renderer.notes):
                return pixels
    finally:
        renderer.label_overrides = {}
    raise DorsumError(f"question {number}: the marked muscle cannot be seen well enough for a pointer "
                      f"({renderer.notes[0]}); try another --seed")


def _views_toward(atlas: Atlas, structure_ids: Sequence[str]) -> tuple[str, ...]:
    """Views to try for a pointer, best first: from behind, then from the muscle's side."""
    sides = {atlas.structure(sid).side for sid in structure_ids}
    side = "left" if sides == {"left"} else "right"
    return ("posterior", f"posterolateral_{side}", side)


def lumbar_camera(renderer: FigureRenderer, structure_ids: Sequence[str]) -> Camera:
    """A posterior close-up of the lumbar part (T12 to S1) of the structures, where a level question looks."""
    from viewer.measure import vertex_levels

    model = renderer.model
    points = [model.vertices(sid)[(levels >= LUMBAR_FROM) & (levels <= LUMBAR_TO)]
              for sid in structure_ids for levels in [vertex_levels(model.atlas, sid)]]
    return framing_camera(np.concatenate(points), "posterior", PAGE, renderer.settings.view_angle)


def text_page(title: str, lines: Sequence[str]) -> np.ndarray:
    """A page of text: a bold title and lines under it."""
    canvas = compose.blank_canvas(PAGE, transparent=False)
    draw = ImageDraw.Draw(canvas)
    typo = compose.Typography.for_size(PAGE)
    margin = typo.body * 3
    y = margin
    for text, typeface in [(title, compose.font(typo.title, bold=True))] + [(line, compose.font(typo.body))
                                                                            for line in lines]:
        for wrapped in compose.wrap_text(text, typeface, PAGE[0] - 2 * margin):
            draw.text((margin, y), wrapped, font=typeface, fill=compose.TEXT_COLOUR)
            y += compose.line_height(typeface)
        y += typo.body // 2
    return np.asarray(canvas)


def answer_text(question: Question) -> str:
    if question.kind == "click":
        return f"the {question.answer.lower()}"
    return question.answer


def answer_sheet(questions: Sequence[Question], atlas: Atlas) -> np.ndarray:
    lines = [f"{i}. {answer_text(q)}" for i, q in enumerate(questions, start=1)]
    return text_page(f"Answers ({atlas.name})", lines)


def write_handout(atlas: Atlas, questions: Sequence[Question], out_dir: str | Path, *, fmt: str = "pdf",
                  overwrite: bool = False) -> list[Path]:
    """Render the handout of ``questions`` into ``out_dir``; returns the files written."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise DorsumError(f"{out_dir}: folder does not exist; create it first")
    question_files, answer_file = handout_paths(out_dir, len(questions), fmt)
    for path in (*question_files, answer_file):
        check_output_path(path, overwrite=overwrite)
    with FigureRenderer(atlas) as renderer:
        pages = [question_page(renderer, i, q) for i, q in enumerate(questions, start=1)]
    sheet = answer_sheet(questions, atlas)
    if fmt == "pdf":
        return [_save_pdf(question_files[0], pages, overwrite), _save_pdf(answer_file, [sheet], overwrite)]
    from viewer.output import save_png

    written = [save_png(path, page, overwrite=overwrite, dpi=DPI) for path, page in zip(question_files, pages)]
    return [*written, save_png(answer_file, sheet, overwrite=overwrite, dpi=DPI)]


def _save_pdf(path: Path, pages: Sequence[np.ndarray], overwrite: bool) -> Path:
    images = [Image.fromarray(page).convert("RGB") for page in pages]

    def write(target: Path) -> None:
        images[0].save(target, format="PDF", save_all=True, append_images=images[1:], resolution=DPI)

    return write_atomically(path, write, overwrite=overwrite)

