"""The quiz in the viewer: asks a round of :mod:`viewer.quiz` questions on the live scene, scores it.

Each question puts the scene into the state it needs (outer layers peeled, the muscle in question
tinted, a wasted level), takes the answer from a choice button, typed text, the layer list or a click
in the 3D view, and says at once whether it was right. The round ends with the score and a review of
every answer, which can be saved as CSV or JSON. The scene the user had comes back afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from viewer.atrophy import apply_atrophy
from viewer.errors import DorsumError
from viewer.model import SceneModel
from viewer.quiz import KIND_TITLES, Answered, Question, is_correct, save_results, score
from viewer.session import Session, apply_session, capture_session

#: Colour of the muscle a question is about: a clear cyan, unlike any muscle, bone or fat colour.
QUESTION_COLOUR = "#1fb8d6"


class QuizPanel(QWidget):
    """Asks questions one at a time; ``finished`` carries the answers when the round ends."""

    finished = Signal(list)

    def __init__(self, model: SceneModel, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = model
        self.questions: tuple[Question, ...] = ()
        self.answers: list[Answered] = []
        self.index = -1
        self._saved: Session | None = None
        self._tinted: tuple[str, ...] = ()
        self._awaiting = False
        self._build()
        model.events.highlight.connect(self._on_click)

    # -- widgets -------------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        self.progress = QLabel()
        self.title = QLabel()
        self.title.setStyleSheet("font-weight: bold")
        self.prompt = QLabel(wordWrap=True)
        self.choices_box = QVBoxLayout()
        self.order_list = QListWidget()
        self.order_list.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.typed = QLineEdit(placeholderText="or type the answer and press Enter")
        self.typed.returnPressed.connect(lambda: self.answer(self.typed.text()))
        self.submit = QPushButton("Answer")
        self.submit.clicked.connect(self._submit)
        self.feedback = QLabel(wordWrap=True)
        self.next_button = QPushButton("Next question")
        self.next_button.clicked.connect(self.next_question)
        self.review = QTableWidget(0, 4)
        self.review.setHorizontalHeaderLabels(["Question", "Answer", "Given", ""])
        self.review.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.save_button = QPushButton("Save results…")
        self.save_button.clicked.connect(self.save_dialog)
        for widget in (self.progress, self.title, self.prompt):
            layout.addWidget(widget)
        layout.addLayout(self.choices_box)
        for widget in (self.order_list, self.typed, self.submit, self.feedback, self.next_button, self.review):
            layout.addWidget(widget)
        buttons = QHBoxLayout()
        buttons.addWidget(self.save_button)
        layout.addLayout(buttons)
        layout.addStretch(1)
        self._show_widgets(review=False)

    def _show_widgets(self, *, review: bool) -> None:
        for widget in (self.review, self.save_button):
            widget.setVisible(review)
        self.next_button.setVisible(False)
        self.order_list.setVisible(False)
        self.typed.setVisible(False)
        self.submit.setVisible(False)

    def _clear_choices(self) -> None:
        while self.choices_box.count():
            item = self.choices_box.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()

    # -- the round -------------------------------------------------------------------------------
    def start(self, questions: Sequence[Question]) -> None:
        """Begin a round; the scene as it is now comes back when the round ends."""
        if not questions:
            raise DorsumError("a quiz round needs at least one question")
        if self._saved is None:
            self._saved = capture_session(self.model)
        self.questions = tuple(questions)
        self.answers = []
        self.index = -1
        self.feedback.clear()
        self._show_widgets(review=False)
        self.next_question()

    @property
    def current(self) -> Question | None:
        return self.questions[self.index] if 0 <= self.index < len(self.questions) else None

    def next_question(self) -> None:
        self.index += 1
        if self.index >= len(self.questions):
            self._end()
            return
        question = self.questions[self.index]
        self._stage(question)
        self.progress.setText(f"Question {self.index + 1} of {len(self.questions)}")
        self.title.setText(KIND_TITLES[question.kind])
        self.prompt.setText(question.prompt)
        self.feedback.clear()
        self._clear_choices()
        self._show_widgets(review=False)
        if question.kind == "order":
            self.order_list.clear()
            self.order_list.addItems(list(question.choices))
            self.order_list.setVisible(True)
            self.submit.setVisible(True)
        elif question.kind == "click":
            self.prompt.setText(question.prompt + " (click it in the 3D view)")
        else:
            for choice in question.choices:
                button = QPushButton(choice)
                button.clicked.connect(lambda _checked=False, text=choice: self.answer(text))
                self.choices_box.addWidget(button)
            if question.kind == "name":
                self.typed.clear()
                self.typed.setVisible(True)
        self._awaiting = True

    def _stage(self, question: Question) -> None:
        """Put the scene into the state the question needs (not recorded for undo)."""
        model = self.model
        self._untint()
        with model.batch():
            model.show_all()
            if question.only:
                model.show_only(question.only)
            for layer in question.hide:
                model.set_layer_visible(layer, False)
            model.set_highlight(None)
        apply_atrophy(model, question.atrophy)
        if question.kind in ("name", "layer"):
            with model.batch():
                for sid in question.targets:
                    model.set_colour(sid, QUESTION_COLOUR)
            self._tinted = question.targets

    def _untint(self) -> None:
        with self.model.batch():
            for sid in self._tinted:
                self.model.set_colour(sid, self.model.atlas.structure(sid).colour)
        self._tinted = ()

    def _submit(self) -> None:
        question = self.current
        if question is not None and question.kind == "order":
            self.answer([self.order_list.item(i).text() for i in range(self.order_list.count())])

    def _on_click(self, sid: str | None) -> None:
        question = self.current
        if self._awaiting and question is not None and question.kind == "click" and sid is not None:
            self.answer(sid)

    def answer(self, given: str | Sequence[str]) -> bool:
        """Answer the current question; returns whether it was right."""
        question = self.current
        if question is None or not self._awaiting:
            return False
        self._awaiting = False
        right = is_correct(question, given)
        shown = " > ".join(given) if not isinstance(given, str) else given
        if question.kind == "click":
            shown = self.model.atlas.structure(given).name if given in self.model.atlas.structure_ids else shown
        self.answers.append(Answered(question, shown, right))
        self.feedback.setText("Right." if right else f"Not quite: the answer is {question.answer}.")
        self.feedback.setStyleSheet(f"color: {'#1b7a2f' if right else '#a32020'}; font-weight: bold")
        self.next_button.setText("Next question" if self.index + 1 < len(self.questions) else "See the score")
        self.next_button.setVisible(True)
        return right

    def _end(self) -> None:
        right, asked = score(self.answers)
        self.progress.setText("")
        self.title.setText(f"Score: {right} of {asked}")
        self.prompt.setText("Your answers, with the right ones:")
        self._clear_choices()
        self._show_widgets(review=True)
        self.review.setRowCount(len(self.answers))
        for row, answered in enumerate(self.answers):
            cells = (answered.question.prompt, answered.question.answer, answered.given,
                     "✓" if answered.correct else "✗")
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                self.review.setItem(row, column, item)
        self.review.resizeColumnsToContents()
        self.restore()
        self.finished.emit(list(self.answers))

    def restore(self) -> None:
        """Give the user back the scene they had before the round."""
        self._untint()
        if self._saved is not None:
            apply_session(self._saved, self.model)
            self._saved = None

    def save_dialog(self) -> None:
        name, _ = QFileDialog.getSaveFileName(self, "Save quiz results", str(Path.home() / "quiz-results.csv"),
                                              "CSV (*.csv);;JSON (*.json)")
        if name:
            self.save(Path(name), overwrite=True)  # the dialog has asked about replacing

    def save(self, path: Path, *, overwrite: bool = False) -> Path:
        return save_results(path, self.answers, overwrite=overwrite)
