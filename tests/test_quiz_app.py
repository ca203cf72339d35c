"""The quiz in the viewer, answered through its real widgets (pytest-qt under Xvfb)."""

from __future__ import annotations

import json

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton
from test_app import make_window, view_pixels

from viewer.app.quiz_panel import QUESTION_COLOUR
from viewer.quiz import make_round


def _choice_button(panel, text: str) -> QPushButton:
    buttons = [panel.choices_box.itemAt(i).widget() for i in range(panel.choices_box.count())]
    return next(b for b in buttons if b is not None and b.text() == text)


def test_a_round_answered_right_and_wrong_is_scored_and_saved(qtbot, real_atlas, tmp_path):
    window = make_window(qtbot, real_atlas)
    questions = make_round(real_atlas, 5, seed=21)  # name, click, layer, order, level
    window.quiz_panel.start(questions)
    panel = window.quiz_panel
    # 1. name: the asked muscle is tinted in the question colour in the 3D view.
    pixels = view_pixels(window)
    target = np.array([int(QUESTION_COLOUR[i:i + 2], 16) for i in (1, 3, 5)])
    tinted = (np.abs(pixels[..., :3].astype(int) / np.maximum(pixels[..., :3].sum(axis=2, keepdims=True), 1)
                     - target / target.sum()).sum(axis=2) < 0.08) & (pixels[..., :3].sum(axis=2) > 120)
    assert tinted.sum() > 100
    qtbot.mouseClick(_choice_button(panel, questions[0].answer), Qt.MouseButton.LeftButton)
    assert panel.feedback.text() == "Right."
    panel.next_button.click()
    # 2. click: a click on the right muscle (through the model, as the picker does).
    window.model.set_highlight(questions[1].targets[0])
    assert panel.answers[-1].correct
    panel.next_button.click()
    # 3. layer: a wrong answer says what the right one was.
    wrong = next(c for c in questions[2].choices if c != questions[2].answer)
    qtbot.mouseClick(_choice_button(panel, wrong), Qt.MouseButton.LeftButton)
    assert panel.feedback.text() == f"Not quite: the answer is {questions[2].answer}."
    panel.next_button.click()
    # 4. order: the list in the right order.
    items = [panel.order_list.item(i).text() for i in range(panel.order_list.count())]
    panel.order_list.clear()
    panel.order_list.addItems(questions[3].answer.split(" > "))
    assert sorted(items) == sorted(questions[3].answer.split(" > "))
    panel.submit.click()
    assert panel.answers[-1].correct
    panel.next_button.click()
    # 5. level: the multifidus is wasted in the view, and typed answers count too.
    assert window.model.atrophy is not None and window.model.atrophy.discs == (questions[4].answer,)
    qtbot.mouseClick(_choice_button(panel, questions[4].answer), Qt.MouseButton.LeftButton)
    panel.next_button.click()
    assert panel.title.text() == "Score: 4 of 5"
    assert panel.review.rowCount() == 5 and panel.review.item(2, 3).text() == "✗"
    # The scene the user had comes back: healthy, nothing tinted, every layer shown.
    assert window.model.atrophy is None
    assert all(window.model.colour(s.id) == s.colour for s in real_atlas.structures)
    assert all(window.model.layer_visible(layer) for layer in real_atlas.layer_names)
    panel.save(tmp_path / "results.json")
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["score"] == 4 and [a["correct"] for a in saved["answers"]] == [True, True, False, True, True]


def test_typed_name_with_a_typo_counts(qtbot, real_atlas):
    window = make_window(qtbot, real_atlas)
    question = make_round(real_atlas, 1, seed=5, kinds=("name",))[0]
    window.start_quiz(1, seed=5, kinds=("name",))
    panel = window.quiz_panel
    assert window.tabs.currentWidget() is panel and panel.current == question
    typed = question.answer.lower()[:-1]  # the last letter missing
    qtbot.keyClicks(panel.typed, typed)
    panel.typed.returnPressed.emit()
    assert panel.answers[-1].correct and panel.answers[-1].given == typed
