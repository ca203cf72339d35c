"""Quiz rounds made from the atlas: reproducible, answerable, scored, saved."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from viewer.errors import DorsumError
from viewer.quiz import Answered, is_correct, make_round, save_results, score


def test_a_seed_makes_the_same_round_and_another_seed_another(real_atlas):
    first = make_round(real_atlas, 10, seed=7)
    assert first == make_round(real_atlas, 10, seed=7)
    assert first != make_round(real_atlas, 10, seed=8)
    assert [q.kind for q in first] == ["name", "click", "layer", "order", "level"] * 2


def test_every_question_can_be_answered_from_the_atlas(real_atlas):
    muscles = set(real_atlas.muscles)
    for question in make_round(real_atlas, 20, seed=1):
        if question.choices:
            assert len(set(question.choices)) == len(question.choices)
            if question.kind != "order":
                assert question.answer in question.choices
        if question.kind in ("name", "click", "layer"):
            assert question.targets and all(real_atlas.structure(t).muscle in muscles for t in question.targets)
            layer = real_atlas.structure(question.targets[0]).layer
            assert layer not in question.hide  # the target is never hidden
        if question.kind == "level":
            assert question.atrophy is not None and question.atrophy.discs == (question.answer,)


def test_answers_right_wrong_and_with_typos(real_atlas):
    questions = make_round(real_atlas, 5, seed=3, kinds=("name",))
    question = questions[0]
    assert is_correct(question, question.answer)
    assert is_correct(question, question.answer.lower() + " muscle")
    typo = question.answer[:-2] + question.answer[-1] + question.answer[-2]  # two letters swapped
    assert is_correct(question, typo)
    wrong = next(c for c in question.choices if c != question.answer)
    assert not is_correct(question, wrong)
    assert not is_correct(question, "")
    order = make_round(real_atlas, 1, seed=3, kinds=("order",))[0]
    assert is_correct(order, ["superficial", "intermediate", "deep"])
    assert not is_correct(order, ["deep", "intermediate", "superficial"])
    click = make_round(real_atlas, 1, seed=3, kinds=("click",))[0]
    assert is_correct(click, click.targets[0]) and not is_correct(click, "vertebra_l4")


def test_score_and_saved_results(real_atlas, tmp_path):
    questions = make_round(real_atlas, 3, seed=5, kinds=("layer",))
    answers = [Answered(q, q.answer if i != 1 else "skeleton", i != 1) for i, q in enumerate(questions)]
    assert score(answers) == (2, 3)
    save_results(tmp_path / "class.json", answers)
    saved = json.loads((tmp_path / "class.json").read_text())
    assert saved["score"] == 2 and saved["questions"] == 3 and saved["answers"][1]["correct"] is False
    save_results(tmp_path / "class.csv", answers)
    rows = list(csv.DictReader((tmp_path / "class.csv").open()))
    assert [r["correct"] for r in rows] == ["True", "False", "True"]
    with pytest.raises(DorsumError, match="file exists"):
        save_results(tmp_path / "class.csv", answers)


def test_bad_round_requests_are_one_line_errors(real_atlas, fixture_atlas):
    with pytest.raises(DorsumError, match="out of range"):
        make_round(real_atlas, 0)
    with pytest.raises(DorsumError, match="unknown value 'trivia'"):
        make_round(real_atlas, 3, kinds=("trivia",))
    with pytest.raises(DorsumError, match="too few muscles"):
        make_round(fixture_atlas, 3)


def test_printed_handout_is_two_pdfs_with_a_page_per_question(real_atlas, tmp_path, capsys):
    from viewer.cli import main

    code = main(["quiz", "--print", "--out", str(tmp_path), "--questions", "4", "--seed", "2",
                 "--kinds", "name", "order"])
    assert code == 0, capsys.readouterr().err
    quiz, answers = (tmp_path / "quiz.pdf").read_bytes(), (tmp_path / "answers.pdf").read_bytes()
    assert quiz.startswith(b"%PDF") and answers.startswith(b"%PDF")
    assert quiz.count(b"/Type /Page\n") + quiz.count(b"/Type /Page ") + quiz.count(b"/Type /Page/") == 4 or \
        quiz.count(b"/Type /Page") - quiz.count(b"/Type /Pages") == 4
    assert answers.count(b"/Type /Page") - answers.count(b"/Type /Pages") == 1
    # Nothing is replaced without --overwrite, and the refusal comes before any rendering.
    assert main(["quiz", "--print", "--out", str(tmp_path), "--questions", "4", "--seed", "2"]) == 2
    assert "file exists" in capsys.readouterr().err


def test_printed_pages_point_at_the_muscle_with_a_number(real_atlas, tmp_path):
    from PIL import Image

    from viewer.figures.handout import PAGE, write_handout

    questions = make_round(real_atlas, 2, seed=11, kinds=("name", "level"))
    files = write_handout(real_atlas, questions, tmp_path, fmt="png")
    assert [f.name for f in files] == ["question-01.png", "question-02.png", "answers.png"]
    pages = [np.asarray(Image.open(f).convert("RGB")).astype(int) for f in files]
    assert all(page.shape == (PAGE[1], PAGE[0], 3) for page in pages)
    marked = pages[0]
    # The leader line of the pointer: dark grey pixels in the label margin, beside the picture.
    grey = (np.ptp(marked, axis=2) < 20) & (marked.sum(axis=2) < 400)
    assert grey[200:-200].sum() > 200
    # The level question shows the wasting (fat colour at the wasted level) in a lumbar close-up.
    r, g, b = pages[1][..., 0], pages[1][..., 1], pages[1][..., 2]
    fatty = (r > 120) & (g > 0.5 * r) & (g < 0.8 * r) & (b < 0.85 * g)  # between muscle red and fat yellow
    assert fatty.sum() > 500


def test_handout_errors_are_one_line(tmp_path, capsys):
    from viewer.cli import main

    assert main(["quiz", "--print"]) == 2
    assert "--print needs --out" in capsys.readouterr().err
    assert main(["quiz", "--print", "--out", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["quiz", "--print", "--out", str(tmp_path), "--questions", "0"]) == 2
    assert "out of range" in capsys.readouterr().err
