"""The "Save screenshot" dialog: file, size preset or custom size, transparency, labels and legend."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from viewer.app.export import SIZE_PRESETS, ExportOptions

CUSTOM = "Custom…"
MAX_WIDTH, MAX_HEIGHT = 7680, 4320


class ExportDialog(QDialog):
    """Asks where and how to save the picture; :meth:`options` and :meth:`path` give the answer."""

    def __init__(self, window_size: tuple[int, int], labels: bool, suggested: Path, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Save screenshot")
        self.path_edit = QLineEdit(str(suggested))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(browse)

        self.size_combo = QComboBox()
        self.size_combo.addItem(f"Window {window_size[0]} × {window_size[1]}", window_size)
        for label, size in SIZE_PRESETS.items():
            self.size_combo.addItem(label, size)
        self.size_combo.addItem(CUSTOM, None)
        self.size_combo.setCurrentIndex(self.size_combo.findData(SIZE_PRESETS["Full HD 1920 × 1080"]))
        self.width_spin = _spin(16, MAX_WIDTH, 1920)
        self.height_spin = _spin(16, MAX_HEIGHT, 1080)
        size_row = QHBoxLayout()
        size_row.addWidget(self.size_combo, 1)
        size_row.addWidget(self.width_spin)
        size_row.addWidget(self.height_spin)
        self.size_combo.currentIndexChanged.connect(self._size_changed)
        self._size_changed()

        self.transparent_check = QCheckBox("Transparent background")
        self.labels_check = QCheckBox("Include labels")
        self.labels_check.setChecked(labels)
        self.legend_check = QCheckBox("Include legend")

        form = QFormLayout(self)
        form.addRow("File", path_row)
        form.addRow("Size", size_row)
        form.addRow("", self.transparent_check)
        form.addRow("", self.labels_check)
        form.addRow("", self.legend_check)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _size_changed(self) -> None:
        size = self.size_combo.currentData()
        custom = size is None
        self.width_spin.setEnabled(custom)
        self.height_spin.setEnabled(custom)
        if not custom:
            self.width_spin.setValue(size[0])
            self.height_spin.setValue(size[1])

    def _browse(self) -> None:
        name, _ = QFileDialog.getSaveFileName(self, "Save screenshot", self.path_edit.text(), "PNG image (*.png)")
        if name:
            self.path_edit.setText(name if name.lower().endswith(".png") else name + ".png")

    def path(self) -> Path:
        return Path(self.path_edit.text()).expanduser()

    def options(self) -> ExportOptions:
        return ExportOptions(size=(self.width_spin.value(), self.height_spin.value()),
                             transparent=self.transparent_check.isChecked(), labels=self.labels_check.isChecked(),
                             legend=self.legend_check.isChecked())


def _spin(low: int, high: int, value: int) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setValue(value)
    spin.setSuffix(" px")
    return spin
