"""Teaching in the viewer: the quiz, scenarios, paraspinal wasting and the side-by-side comparison (pytest-qt)."""

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


def test_comparison_shows_healthy_beside_wasted_and_turns_both(qtbot, real_atlas):
    from viewer.atrophy import AtrophyParams, apply_atrophy

    window = make_window(qtbot, real_atlas)
    window.model.set_layer_visible("superficial", False)
    window.model.set_layer_visible("intermediate", False)
    apply_atrophy(window.model, AtrophyParams(amount=60, segments="L2-S1", side="right", fat=80))
    window.open_comparison()
    compare = window.compare_window
    qtbot.waitExposed(compare)
    healthy, wasted = (np.asarray(compare.pixels(i))[..., :3].astype(int) for i in (0, 1))
    r, g, b = (healthy[..., i] for i in range(3))
    fatty = lambda img: ((img[..., 0] > 120) & (img[..., 1] > 0.5 * img[..., 0]) & (img[..., 1] < 0.8 * img[..., 0])
                         & (img[..., 2] < 0.85 * img[..., 1])).sum()
    assert fatty(wasted) > 5 * max(fatty(healthy), 20)  # fat only on the wasted side
    assert not window.compare_window.healthy.layer_visible("superficial")  # the same layers peeled
    camera = compare.renderers[0].plotter.renderer.GetActiveCamera()
    assert camera is compare.renderers[1].plotter.renderer.GetActiveCamera()  # one camera for both views
    camera.Azimuth(40)
    turned = np.asarray(compare.pixels(0))[..., :3].astype(int)
    assert np.abs(turned - healthy).mean() > 2
    assert "Multifidus -60% L2-S1 right" in compare.captions[1].text()


def test_scenario_menu_shows_the_wasting_its_card_and_undoes(qtbot, real_atlas):
    from viewer.presets import load_preset, preset_wasting

    window = make_window(qtbot, real_atlas)
    assert window.apply_scenario("chronic_lbp")
    expected, _ = preset_wasting(load_preset("chronic_lbp"), real_atlas)
    assert window.model.atrophy == expected
    assert not window.model.layer_visible("superficial")  # what covers the multifidus is peeled
    assert window.scenario_box.isVisible() and "Chronic low back pain" in window.scenario_card.text.text()
    assert "Danneels" in window.scenario_card.text.text()  # the sources are shown with it
    table = window.atrophy_panel.readout
    assert table.rowCount() > 0
    window.undo_stack.undo()
    assert window.model.atrophy is None and not window.scenario_box.isVisible()
    assert window.apply_scenario("ageing", 80)
    assert "age 80" in window.scenario_card.text.text() and "psoas_major is not in this atlas" in \
        window.scenario_card.text.text()
    menu_titles = [a.text() for a in window.menuBar().actions()]
    assert "&Scenario" in menu_titles
    window.clear_scenario()
    assert window.model.atrophy is None


def test_atrophy_panel_wastes_the_erector_spinae_and_keeps_the_scenario(qtbot, real_atlas):
    window = make_window(qtbot, real_atlas)
    window.apply_scenario("l5_radiculopathy")
    panel = window.atrophy_panel
    panel.muscle_choice.setCurrentIndex(panel.muscle_choice.findData("longissimus"))
    assert panel.readout_title.text().startswith("Longissimus CSA")
    assert panel.amount.value() == 0  # the scenario does not waste the longissimus
    panel.range_from.setCurrentText("L3")
    panel.range_to.setCurrentText("L5")
    panel.side.setCurrentIndex(panel.side.findData("left"))
    panel.amount.setValue(30)
    qtbot.waitUntil(lambda: any(p.muscle == "longissimus" for p in
                                (window.model.atrophy if isinstance(window.model.atrophy, tuple) else ())), timeout=30000)
    muscles = {p.muscle: p for p in window.model.atrophy}
    assert muscles["multifidus"].amount == 16  # the scenario's own wasting stays
    panel.update_readout()
    assert "(−30%)" in panel.readout_text("L3-L4", "left") and "(−30%)" in panel.readout_text("L4-L5", "left")
    assert "(" not in panel.readout_text("L3-L4", "right")
    window.undo_stack.undo()
    assert window.model.atrophy == muscles["multifidus"]  # undo takes back the longissimus only
