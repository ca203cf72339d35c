"""Quiz rounds made from the atlas: reproducible, answerable, scored, saved."""

from __future__ import annotations

import csv
import json

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
