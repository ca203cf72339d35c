"""The scenario shown in the viewer: its title, what it means, and the studies behind it."""

from __future__ import annotations

import html

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from viewer.presets import Preset


class ScenarioCard(QWidget):
    """A short card for the active scenario (hidden when none is shown)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.text = QLabel(wordWrap=True)
        self.text.setOpenExternalLinks(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.text)
        self.preset: Preset | None = None
        self.hide()

    def show_preset(self, preset: Preset, age: float | None, notes: tuple[str, ...] = ()) -> None:
        self.preset = preset
        lines = [f"<b>{html.escape(preset.caption(age))}</b>", html.escape(preset.explanation)]
        lines += [f"<i>{html.escape(note)}</i>" for note in notes]
        sources = "".join(f"<li>{html.escape(source)}</li>" for source in preset.sources)
        lines.append(f"<small>Sources:<ul style='margin-left: -20px'>{sources}</ul></small>")
        self.text.setText("<br>".join(lines))
        self.show()

    def clear(self) -> None:
        self.preset = None
        self.text.clear()
        self.hide()
