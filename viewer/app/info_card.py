"""The info card: name, layer, attachments, innervation and action of the highlighted structure."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

from viewer.atlas import Structure
from viewer.model import SceneModel

PLACEHOLDER = "Click a muscle or bone to see its name, attachments, nerve supply and action."


def structure_title(structure: Structure) -> str:
    """"Multifidus (left)": the name, with the side when the atlas has the muscle on both sides."""
    if structure.side in ("left", "right") and f"({structure.side})" not in structure.name.lower():
        return f"{structure.name} ({structure.side})"
    return structure.name


def structure_card_html(structure: Structure) -> str:
    """Rich text of the card: the teaching fields that the atlas fills, in reading order."""
    teaching = structure.teaching
    rows = [("Layer", structure.layer.capitalize()),
            ("Origin", teaching.origin), ("Insertion", teaching.insertion),
            ("Innervation", teaching.innervation), ("Action", teaching.action), ("Note", teaching.notes)]
    body = "".join(f"<p style='margin:2px 0'><b>{escape(label)}:</b> {escape(text)}</p>" for label, text in rows if text)
    return f"<p style='font-size:12pt; margin:0 0 4px 0'><b>{escape(structure_title(structure))}</b></p>{body}"


class InfoCard(QFrame):
    """Shows the highlighted structure; follows the model's highlight events."""

    def __init__(self, model: SceneModel, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = model
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.addWidget(self.label)
        model.events.highlight.connect(self.show_structure)
        self.show_structure(model.highlight)

    def disconnect_model(self) -> None:
        self.model.events.highlight.disconnect(self.show_structure)

    def show_structure(self, structure_id: str | None) -> None:
        if structure_id is None:
            self.label.setText(f"<i>{escape(PLACEHOLDER)}</i>")
            return
        self.label.setText(structure_card_html(self.model.atlas.structure(structure_id)))
