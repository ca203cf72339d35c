"""The atrophy panel: amount, level range, side and fat of multifidus atrophy, with a live CSA readout.

Dragging the amount slider updates the muscle live: changes are coalesced so the shape is recomputed
at most once per turn of the event loop, whatever the rate of slider events. The readout is measured
on the displayed mesh with :func:`viewer.measure.measure_muscle`, the same numbers ``dorsum measure``
prints.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QApplication,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSlider,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from viewer.errors import DorsumError
from viewer.levels import VERTEBRAE
from viewer.model import SceneModel

Edit = Callable[..., None]
MUSCLE = "multifidus"
SIDE_CHOICES = (("Both sides", "both"), ("Left", "left"), ("Right", "right"))
#: Vertebrae offered for the range: the lower thoracic and lumbar spine, where the atlas has multifidus levels.
RANGE_VERTEBRAE = ("T12", "L1", "L2", "L3", "L4", "L5", "S1")
NOTE = "Drag to waste multifidus; the table measures the mesh as shown."


def available_discs(model: SceneModel, muscle: str = MUSCLE) -> tuple[str, ...]:
    """Disc levels between vertebrae that the atlas has landmarks for, cranial first."""
    names = [name for name in RANGE_VERTEBRAE if name in model.atlas.spine]
    return tuple(f"{a}-{b}" for a, b in zip(names, names[1:]) if VERTEBRAE.index(b) == VERTEBRAE.index(a) + 1)


def csa_text(entry: dict[str, Any] | None) -> str:
    """Readout cell: ``"5.12 → 3.58 cm² (−30%)"``, and with fat a second line with the total CSA inside
    the fascial boundary, the lean CSA, the fat fraction and its grade (:data:`viewer.fat.GRADE_SCALE`)."""
    if entry is None:
        return "–"
    change = entry["change_percent"]
    change_text = "" if change is None else f" ({change:+.0f}%)".replace("-", "−")
    if abs(entry["csa_cm2"] - entry["baseline_cm2"]) < 0.005:
        text = f"{entry['csa_cm2']:.2f} cm²"
    else:
        text = f"{entry['baseline_cm2']:.2f} → {entry['csa_cm2']:.2f} cm²{change_text}"
    if entry.get("fat_percent", 0.0) >= 0.05:  # the composition an MRI study reports
        text += (f"\ntotal {entry['total_cm2']:.2f}, lean {entry['lean_cm2']:.2f} cm², "
                 f"fat {entry['fat_percent']:.0f}% (grade {entry['grade']})")
    return text


class AtrophyPanel(QWidget):
    """Controls of :class:`viewer.atrophy.AtrophyParams` and the CSA per disc level and side."""

    def __init__(self, model: SceneModel, edit: Edit, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = model
        self._edit = edit
        self._updating = False
        self._pending: tuple[dict[str, Any], str] | None = None
        self.discs = available_discs(model)
        self.atrophy_module = _atrophy_module()
        self.note = QLabel()
        self.note.setWordWrap(True)

        self.amount = self._slider(0, int(getattr(self.atrophy_module, "MAX_AMOUNT", 90)), "CSA loss")
        self.amount_label = QLabel("0%")
        self.fat = self._slider(0, 100, "Fat infiltration")
        self.fat_label = QLabel("0%")
        vertebrae = [v for v in RANGE_VERTEBRAE if v in model.atlas.spine] or ["L4", "L5"]
        self.range_from = QComboBox()
        self.range_from.addItems(vertebrae[:-1])
        self.range_to = QComboBox()
        self.range_to.addItems(vertebrae[1:])
        self.range_from.setCurrentIndex(0)
        self.range_to.setCurrentIndex(len(vertebrae) - 2)
        self.side = QComboBox()
        for label, value in SIDE_CHOICES:
            self.side.addItem(label, value)
        self.ghost = QCheckBox("Show the healthy shape (ghost)")
        self.ghost.setToolTip("Draw the healthy multifidus as a translucent ghost around the wasted one")
        self.reset_button = QPushButton("Reset (healthy)")
        self.reset_button.setToolTip("Give multifidus its healthy shape and colour back")

        form = QFormLayout()
        form.addRow("CSA loss", _with_label(self.amount, self.amount_label))
        range_row = QHBoxLayout()
        range_row.addWidget(self.range_from)
        range_row.addWidget(QLabel("to"))
        range_row.addWidget(self.range_to)
        form.addRow("Levels", range_row)
        form.addRow("Side", self.side)
        form.addRow("Fat", _with_label(self.fat, self.fat_label))
        form.addRow("", self.ghost)

        self.readout = QTableWidget(len(self.discs), 2)
        self.readout.setHorizontalHeaderLabels(["Left", "Right"])
        self.readout.setVerticalHeaderLabels(list(self.discs))
        self.readout.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.readout.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.readout.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        from viewer.fat import GRADE_SCALE

        self.readout.setToolTip("Multifidus cross-sectional area at each disc level: healthy → now (change); with "
                                "fat, the total CSA inside the fascia, the lean CSA, the fat fraction and its grade "
                                f"on the {GRADE_SCALE} scale")
        self.readout_title = QLabel("Multifidus CSA per disc level (healthy → now)")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.note)
        layout.addLayout(form)
        layout.addWidget(self.reset_button)
        layout.addWidget(self.readout_title)
        layout.addWidget(self.readout)
        layout.addStretch(1)

        self._apply_timer = QTimer(self, singleShot=True, interval=0)
        self._apply_timer.timeout.connect(self._apply_pending)
        self._readout_timer = QTimer(self, singleShot=True, interval=0)
        self._readout_timer.timeout.connect(self.update_readout)

        self.amount.valueChanged.connect(lambda v: self._changed("amount"))
        self.fat.valueChanged.connect(lambda v: self._changed("fat"))
        self.range_from.currentIndexChanged.connect(lambda i: self._changed("range"))
        self.range_to.currentIndexChanged.connect(lambda i: self._changed("range"))
        self.side.currentIndexChanged.connect(lambda i: self._changed("side"))
        self.ghost.toggled.connect(lambda on: self._changed("ghost"))
        self.reset_button.clicked.connect(self.reset)
        model.events.atrophy.connect(self._on_model_atrophy)

        problem = self._unavailable_reason()
        self.setEnabled(problem is None)
        self.note.setText(problem or NOTE)
        self._on_model_atrophy(model.atrophy)

    def _unavailable_reason(self) -> str | None:
        if self.atrophy_module is None:
            return "Atrophy is not available in this version (the atrophy model is missing)."
        if MUSCLE not in self.model.atlas.muscles:
            return f"This atlas has no {MUSCLE}; atrophy cannot be shown."
        if not self.discs:
            return "This atlas has no lumbar vertebra landmarks; atrophy cannot be shown."
        return None

    def _slider(self, low: int, high: int, name: str) -> QSlider:
        slider = QSlider(Qt.Orientation.Horizontal)
        slider.setRange(low, high)
        slider.setPageStep(5)
        slider.setAccessibleName(name)
        return slider

    # -- widgets -> model ----------------------------------------------------------------------
    def params_dict(self) -> dict[str, Any]:
        """The parameters the widgets show, as plain data."""
        segments = f"{self.range_from.currentText()}-{self.range_to.currentText()}"
        return {"amount": float(self.amount.value()), "segments": segments, "side": self.side.currentData(),
                "fat": float(self.fat.value()), "muscle": MUSCLE, "ghost": self.ghost.isChecked()}

    def _changed(self, what: str) -> None:
        self.amount_label.setText(f"{self.amount.value()}%")
        self.fat_label.setText(f"{self.fat.value()}%")
        if self._updating:
            return
        self._fix_range(what)
        self._pending = (self.params_dict(), what)
        self._apply_timer.start()

    def _fix_range(self, what: str) -> None:
        # Keep the range at least one disc long: moving one end past the other drags it along.
        if what != "range":
            return
        start, end = self.range_from.currentIndex(), self.range_to.currentIndex()
        if end < start:
            self._updating = True
            self.range_to.setCurrentIndex(start)
            self._updating = False

    def _apply_pending(self) -> None:
        if self._pending is None:
            return
        params, what = self._pending
        self._pending = None
        titles = {"amount": "Atrophy amount", "fat": "Fat infiltration", "range": "Atrophy levels",
                  "side": "Atrophy side", "ghost": "Healthy ghost"}
        # A new range or side is calibrated by measurement first (about a second on the real atlas).
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            self._edit(titles[what], lambda: self.apply(params), merge=f"atrophy:{what}")
        finally:
            QApplication.restoreOverrideCursor()

    def apply(self, params: dict[str, Any] | None) -> None:
        """Apply atrophy parameters (plain data) to the model; 0 % and no fat is the healthy muscle."""
        module = self.atrophy_module
        if params is None or (params["amount"] == 0 and params["fat"] == 0):
            if self.model.atrophy is not None:
                module.apply_atrophy(self.model, None)
            return
        try:
            module.apply_atrophy(self.model, module.AtrophyParams(**params))
        except DorsumError as exc:
            # E.g. more loss than shrinking toward the bone can give: say so, show what the model has.
            self.note.setText(f"<span style='color:#a00000'>{exc}</span>")
            QTimer.singleShot(0, lambda: self._on_model_atrophy(self.model.atrophy))
            return
        self.note.setText(NOTE)

    def reset(self) -> None:
        self._pending = None
        self._edit("Reset atrophy", lambda: self.apply(None))
        self._on_model_atrophy(self.model.atrophy)

    # -- model -> widgets ----------------------------------------------------------------------
    def disconnect_model(self) -> None:
        self._apply_timer.stop()
        self._readout_timer.stop()
        self.model.events.atrophy.disconnect(self._on_model_atrophy)

    def _on_model_atrophy(self, params: Any) -> None:
        self._updating = True
        try:
            if params is None:
                self.amount.setValue(0)
                self.fat.setValue(0)
            else:
                self.amount.setValue(round(params.amount))
                self.fat.setValue(round(params.fat))
                self.ghost.setChecked(bool(getattr(params, "ghost", False)))
                low, _, high = params.segments.partition("-")
                for combo, name in ((self.range_from, low), (self.range_to, high or low)):
                    index = combo.findText(name)
                    if index >= 0:
                        combo.setCurrentIndex(index)
                self.side.setCurrentIndex(max(0, self.side.findData(params.side)))
            self.amount_label.setText(f"{self.amount.value()}%")
            self.fat_label.setText(f"{self.fat.value()}%")
        finally:
            self._updating = False
        self._readout_timer.start()

    def update_readout(self) -> None:
        """Measure multifidus at each disc level on the displayed mesh and fill the table."""
        if not self.isEnabled():
            return
        from viewer.measure import measure_muscle

        result = measure_muscle(self.model, MUSCLE, self.discs)
        affected = set(getattr(self.model.atrophy, "discs", ()) or ())
        for row, disc in enumerate(self.discs):
            for column, side in enumerate(("left", "right")):
                entry = result["levels"][disc].get(side)
                item = QTableWidgetItem(csa_text(entry))
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                if disc in affected:
                    font = QFont()
                    font.setBold(True)
                    item.setFont(font)
                self.readout.setItem(row, column, item)
            # Levels where the muscle has no section (above its top) only take room.
            empty = all((result["levels"][disc].get(side) or {}).get("baseline_cm2", 0.0) == 0.0
                        for side in ("left", "right"))
            self.readout.setRowHidden(row, empty)
        self.readout.resizeRowsToContents()

    def readout_text(self, disc: str, side: str) -> str:
        """The readout cell of ``disc`` and ``side`` (``"left"`` or ``"right"``)."""
        item = self.readout.item(self.discs.index(disc), ("left", "right").index(side))
        return "" if item is None else item.text()


def _with_label(slider: QSlider, label: QLabel) -> QHBoxLayout:
    label.setMinimumWidth(36)
    label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    row = QHBoxLayout()
    row.addWidget(slider, 1)
    row.addWidget(label)
    return row


def _atrophy_module() -> Any:
    try:
        from viewer import atrophy
    except ImportError:
        return None
    return atrophy
