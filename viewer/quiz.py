"""Self-test questions on the back muscles, made from the atlas's own structures (no VTK, no Qt).

A round is a reproducible sequence of :class:`Question` (same atlas and seed, same questions), so a
lecturer can give a class the same quiz. The viewer asks them interactively (``dorsum quiz``);
``dorsum quiz --print`` makes a handout with numbered pointers and an answer sheet.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from viewer.atlas import Atlas
from viewer.atrophy import AtrophyParams
from viewer.checks import check_option
from viewer.errors import DorsumError
from viewer.levels import LUMBAR_DISCS

#: Question kinds, in the order a round cycles through them.
KINDS = ("name", "click", "layer", "order", "level")
KIND_TITLES = {
    "name": "Name the highlighted muscle",
    "click": "Click the muscle",
    "layer": "Which layer is this?",
    "order": "Order the layers from superficial to deep",
    "level": "At which level is the multifidus wasted?",
}
#: The layers a lecturer peels (outermost first); other muscle layers (context) are not asked about.
TEACHING_LAYERS = ("superficial", "intermediate", "deep")
#: How close a typed name must be to the answer (difflib ratio) to count as a typo, not a wrong name.
TYPO_RATIO = 0.8
#: Wasting shown in a "level" question: large enough to see from behind.
LEVEL_WASTING = {"amount": 50.0, "fat": 40.0}
MAX_QUESTIONS = 100


@dataclass(frozen=True)
class Question:
    """One question with its answer and what the picture must show.

    Attributes
    ----------
    kind : one of :data:`KINDS`
    prompt : the question as asked
    answer : the correct answer (a muscle or layer name, a disc level, or layer names in order, joined by " > ")
    choices : the answers offered (empty when the answer is clicked)
    targets : structure ids the question is about (highlighted, or to be clicked)
    hide : layers hidden for the picture (so the target can be seen)
    only : when not empty, the names shown alone (the muscle in question on the skeleton)
    atrophy : the wasting shown (``level`` questions)
    """

    kind: str
    prompt: str
    answer: str
    choices: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    hide: tuple[str, ...] = ()
    atrophy: AtrophyParams | None = None
    only: tuple[str, ...] = ()


@dataclass(frozen=True)
class Answered:
    """A question, the answer given, and whether it was right."""

    question: Question
    given: str
    correct: bool


def muscle_title(muscle: str) -> str:
    """Display name of a muscle id: ``latissimus_dorsi`` -> ``Latissimus dorsi``."""
    return muscle.replace("_", " ").capitalize()


def _normalise(text: str) -> str:
    words = re.sub(r"[^a-z ]+", " ", str(text).lower()).split()
    return " ".join(w for w in words if w not in ("muscle", "m", "the", "musculus"))


def is_correct(question: Question, given: str | Sequence[str]) -> bool:
    """Whether ``given`` answers ``question``; typed names may have small typos (see :data:`TYPO_RATIO`).

    A ``click`` question takes the clicked structure id; an ``order`` question a sequence of layer
    names or the names joined by ``" > "``.
    """
    if question.kind == "click":
        return str(given) in question.targets
    if question.kind == "order":
        names = given.split(">") if isinstance(given, str) else list(given)
        return [_normalise(n) for n in names] == [_normalise(n) for n in question.answer.split(">")]
    expected, typed = _normalise(question.answer), _normalise(str(given))
    if not typed:
        return False
    if question.kind == "level":
        return typed.replace(" ", "") == expected.replace(" ", "") or str(given).strip().upper() == question.answer
    if typed == expected:
        return True
    if question.choices and any(typed == _normalise(c) for c in question.choices):
        return False  # another offered answer, not a typo of this one
    return difflib.SequenceMatcher(None, typed, expected).ratio() >= TYPO_RATIO


# -- making a round --------------------------------------------------------------------------------
def _teaching_layers(atlas: Atlas) -> tuple[str, ...]:
    muscle_layers = {s.layer for s in atlas.structures if s.kind == "muscle"}
    return tuple(name for name in atlas.layer_names if name in TEACHING_LAYERS and name in muscle_layers)


def _muscles_by_layer(atlas: Atlas) -> dict[str, list[str]]:
    layers = _teaching_layers(atlas)
    found: dict[str, list[str]] = {layer: [] for layer in layers}
    for structure in atlas.structures:
        if structure.kind == "muscle" and structure.layer in found and structure.muscle not in found[structure.layer]:
            found[structure.layer].append(structure.muscle)
    return found


def _outer_layers(atlas: Atlas, layer: str) -> tuple[str, ...]:
    depth = atlas.layer(layer).depth
    return tuple(other.name for other in atlas.layers if other.depth < depth)


def _bone_layers(atlas: Atlas) -> tuple[str, ...]:
    return tuple(dict.fromkeys(s.layer for s in atlas.structures if s.kind == "bone"))


def _on_skeleton(atlas: Atlas, targets: tuple[str, ...]) -> tuple[str, ...]:
    """What a question about ``targets`` shows: the muscle alone on the skeleton, never covered."""
    return (*targets, *_bone_layers(atlas))


def _one_side(atlas: Atlas, muscle: str, rng: random.Random) -> tuple[str, ...]:
    structures = atlas.structures_of_muscle(muscle)
    side = rng.choice(sorted({s.side for s in structures}))
    return tuple(s.id for s in structures if s.side == side)


def _name_question(atlas: Atlas, rng: random.Random, muscle: str, layer: str, all_muscles: list[str]) -> Question:
    same_layer = [m for m in _muscles_by_layer(atlas)[layer] if m != muscle]
    others = [m for m in all_muscles if m != muscle and m not in same_layer]
    rng.shuffle(same_layer)
    rng.shuffle(others)
    choices = [muscle, *(same_layer + others)[:3]]
    rng.shuffle(choices)
    targets = _one_side(atlas, muscle, rng)
    return Question("name", "Which muscle is highlighted?", muscle_title(muscle),
                    tuple(muscle_title(m) for m in choices), targets, only=_on_skeleton(atlas, targets))


def _click_question(atlas: Atlas, muscle: str, layer: str) -> Question:
    targets = tuple(s.id for s in atlas.structures_of_muscle(muscle))
    return Question("click", f"Click the {muscle_title(muscle).lower()}.", muscle_title(muscle), (), targets,
                    _outer_layers(atlas, layer))


def _layer_question(atlas: Atlas, rng: random.Random, muscle: str, layer: str) -> Question:
    targets = _one_side(atlas, muscle, rng)
    return Question("layer", "Which layer does the highlighted muscle belong to?", layer,
                    _teaching_layers(atlas), targets, only=_on_skeleton(atlas, targets))


def _order_question(atlas: Atlas, rng: random.Random) -> Question:
    layers = list(_teaching_layers(atlas))
    shuffled = layers[:]
    while len(shuffled) > 1 and shuffled == layers:
        rng.shuffle(shuffled)
    return Question("order", "Put these layers in order, from superficial to deep.", " > ".join(layers),
                    tuple(shuffled))


def _level_question(atlas: Atlas, rng: random.Random) -> Question | None:
    structures = atlas.structures_of_muscle("multifidus")
    if not structures or not all("segment" in atlas.meshes[s.id].point_data for s in structures):
        return None
    disc = rng.choice(LUMBAR_DISCS)
    side = rng.choice(("left", "right"))
    params = AtrophyParams(segments=disc, side=side, **LEVEL_WASTING)
    hide = _outer_layers(atlas, "deep") if "deep" in atlas.layer_names else ()
    return Question("level", f"The {side} multifidus is wasted at one disc level. Which one?", disc,
                    LUMBAR_DISCS, tuple(s.id for s in structures), hide, params)


def make_round(atlas: Atlas, count: int = 10, *, seed: int | None = None,
               kinds: Sequence[str] = KINDS) -> tuple[Question, ...]:
    """``count`` questions on ``atlas``, cycling through ``kinds``; the same seed gives the same round.

    Raises
    ------
    DorsumError
        For a count outside 1 to :data:`MAX_QUESTIONS`, an unknown kind, or an atlas without the
        muscle layers the questions need.
    """
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_QUESTIONS:
        raise DorsumError(f"questions: {count!r} is out of range (allowed: 1 to {MAX_QUESTIONS})")
    kinds = tuple(check_option("question kind", kind, KINDS) for kind in kinds) or KINDS
    by_layer = _muscles_by_layer(atlas)
    pool = [(muscle, layer) for layer, muscles in by_layer.items() for muscle in muscles]
    if len(pool) < 4 or len(by_layer) < 2:
        raise DorsumError("this atlas has too few muscles in its superficial, intermediate and deep layers for a "
                          "quiz (it needs at least four muscles in two layers)")
    rng = random.Random(seed)
    all_muscles = [muscle for muscle, _ in pool]
    order = pool[:]
    rng.shuffle(order)
    questions: list[Question] = []
    for index in range(count):
        kind = kinds[index % len(kinds)]
        muscle, layer = order[index % len(order)]
        if kind == "name":
            questions.append(_name_question(atlas, rng, muscle, layer, all_muscles))
        elif kind == "click":
            questions.append(_click_question(atlas, muscle, layer))
        elif kind == "layer":
            questions.append(_layer_question(atlas, rng, muscle, layer))
        elif kind == "order":
            questions.append(_order_question(atlas, rng))
        else:
            question = _level_question(atlas, rng)
            questions.append(question or _name_question(atlas, rng, muscle, layer, all_muscles))
    return tuple(questions)


# -- results ---------------------------------------------------------------------------------------
def score(answers: Sequence[Answered]) -> tuple[int, int]:
    """(right, asked)."""
    return sum(a.correct for a in answers), len(answers)


RESULT_FIELDS = ("number", "kind", "question", "answer", "given", "correct")


def result_rows(answers: Sequence[Answered]) -> list[dict[str, object]]:
    return [{"number": i, "kind": a.question.kind, "question": a.question.prompt, "answer": a.question.answer,
             "given": a.given, "correct": a.correct} for i, a in enumerate(answers, start=1)]


def results_text(answers: Sequence[Answered], suffix: str) -> str:
    """The answers as CSV (``.csv``) or JSON (``.json``) text."""
    rows = result_rows(answers)
    if suffix == ".json":
        right, asked = score(answers)
        return json.dumps({"score": right, "questions": asked, "answers": rows}, indent=2) + "\n"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RESULT_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def save_results(path: str | Path, answers: Sequence[Answered], *, overwrite: bool = False) -> Path:
    """Write the answers as CSV or JSON (by the file's suffix), atomically."""
    from viewer.output import check_output_path, write_atomically

    out = check_output_path(path, overwrite=overwrite, suffixes=(".csv", ".json"))
    text = results_text(answers, out.suffix.lower())
    return write_atomically(out, lambda target: target.write_text(text, encoding="utf-8"), overwrite=overwrite)
