"""The layers panel: a tree layer -> muscle -> left/right with tri-state check boxes and opacity sliders.

A muscle that an atlas splits into parts (structures sharing ``muscle``, e.g. the trapezius's
descending, transverse and ascending parts) gets one row with a row per part under it, and each
part its left and right rows: layer -> muscle -> part -> side.

The panel edits the model through an ``edit(text, change, merge)`` callable (the undo recorder) and
redraws its check states from the model's visibility events; it holds no visibility of its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QSlider,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from viewer.app.info_card import structure_title
from viewer.model import SceneModel

Edit = Callable[..., None]
ROLE_IDS = Qt.ItemDataRole.UserRole
ROLE_LAYER = Qt.ItemDataRole.UserRole + 1
SIDE_LABELS = {"left": "Left", "right": "Right", "midline": "Midline"}


class LayersPanel(QWidget):
    """Tree of layers, muscles and structures; "Show only" and "Show all" act on the selection."""

    def __init__(self, model: SceneModel, edit: Edit, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = model
        self._edit = edit
        self._refreshing = False
        self.tree = QTreeWidget()
        self.tree.setColumnCount(2)
        self.tree.setHeaderLabels(["Structure", "Opacity"])
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.tree.header().setSectionResizeMode(1, QHeaderView.ResizeMode.Fixed)
        self.tree.header().resizeSection(1, 96)
        self.tree.header().setStretchLastSection(False)
        self.tree.setSelectionMode(QTreeWidget.SelectionMode.ExtendedSelection)
        self.tree.setUniformRowHeights(True)
        self.layer_items: dict[str, QTreeWidgetItem] = {}
        self.muscle_items: dict[tuple[str, str], QTreeWidgetItem] = {}
        self.part_items: dict[tuple[str, str, str], QTreeWidgetItem] = {}
        self.structure_items: dict[str, QTreeWidgetItem] = {}
        self.opacity_sliders: dict[str, QSlider] = {}
        self._build_tree()
        self.tree.itemChanged.connect(self._on_item_changed)
        self.tree.itemDoubleClicked.connect(lambda item, _column: self.show_only_items([item]))

        self.show_only_button = QPushButton("Show only")
        self.show_only_button.setToolTip("Show only the selected rows (double-click a row does the same)")
        self.show_only_button.clicked.connect(lambda: self.show_only_items(self.tree.selectedItems()))
        self.show_all_button = QPushButton("Show all")
        self.show_all_button.setToolTip("Show every layer and structure, fully opaque")
        self.show_all_button.clicked.connect(self.show_all)
        buttons = QHBoxLayout()
        buttons.addWidget(self.show_only_button)
        buttons.addWidget(self.show_all_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tree)
        layout.addLayout(buttons)

        model.events.visibility.connect(self._on_model_visibility)
        model.events.opacity.connect(self._on_model_opacity)
        self.refresh()

    # -- building ------------------------------------------------------------------------------
    def _build_tree(self) -> None:
        atlas = self.model.atlas
        for layer in atlas.layers:
            members = [s for s in atlas.structures if s.layer == layer.name]
            layer_item = self._item(self.tree, layer.name.capitalize(), [s.id for s in members], layer.name)
            layer_item.setToolTip(0, layer.description or layer.name)
            self.layer_items[layer.name] = layer_item
            self.tree.setItemWidget(layer_item, 1, self._opacity_slider(layer.name))
            by_muscle: dict[str, list] = {}
            for structure in members:
                by_muscle.setdefault(_row_key(structure), []).append(structure)
            for muscle, structures in by_muscle.items():
                if len(structures) == 1:
                    structure = structures[0]
                    twin = sum(s.name == structure.name for s in members) > 1
                    label = f"{structure.name} ({structure.side})" if twin else structure.name
                    item = self._item(layer_item, label, [structure.id], None)
                    self.structure_items[structures[0].id] = item
                    continue
                parts = _parts(structures)
                label = _muscle_label(muscle, structures) if len(parts) == 1 else _muscle_name(muscle, structures)
                muscle_item = self._item(layer_item, label, [s.id for s in structures], None)
                self.muscle_items[(layer.name, muscle)] = muscle_item
                if len(parts) == 1:
                    self._side_rows(muscle_item, structures)
                    continue
                for part, members_of_part in parts.items():
                    if len(members_of_part) == 1:
                        only = members_of_part[0]
                        self.structure_items[only.id] = self._item(muscle_item, structure_title(only), [only.id], None)
                        continue
                    part_item = self._item(muscle_item, _part_label(part, label), [s.id for s in members_of_part], None)
                    part_item.setToolTip(0, part)
                    self.part_items[(layer.name, muscle, part)] = part_item
                    self._side_rows(part_item, members_of_part)
            layer_item.setExpanded(True)

    def _side_rows(self, parent: QTreeWidgetItem, structures: list) -> None:
        """One row per structure under ``parent``: "Left", "Right" (or the full title if ambiguous)."""
        for structure in structures:
            label = SIDE_LABELS.get(structure.side, structure.name)
            if sum(s.side == structure.side for s in structures) > 1:
                label = structure_title(structure)
            item = self._item(parent, label, [structure.id], None)
            item.setToolTip(0, structure.name)
            self.structure_items[structure.id] = item

    def _item(self, parent, text: str, ids: list[str], layer: str | None) -> QTreeWidgetItem:
        item = QTreeWidgetItem(parent, [text])
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setData(0, ROLE_IDS, tuple(ids))
        item.setData(0, ROLE_LAYER, layer)
        item.setCheckState(0, Qt.CheckState.Checked)
        return item

    def _opacity_slider(self, layer: str) -> QSlider:
        slider = QSlider(Qt.Orientation.Horizontal)
        slider.setRange(0, 100)
        slider.setValue(100)
        slider.setToolTip(f"Opacity of the {layer} layer")
        slider.setAccessibleName(f"{layer} opacity")
        slider.valueChanged.connect(lambda value, name=layer: self.set_layer_opacity(name, value / 100.0))
        self.opacity_sliders[layer] = slider
        return slider

    # -- user actions --------------------------------------------------------------------------
    def _on_item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if self._refreshing or column != 0:
            return
        checked = item.checkState(0) != Qt.CheckState.Unchecked
        layer = item.data(0, ROLE_LAYER)
        ids = item.data(0, ROLE_IDS)
        if layer is not None:
            self.set_layer_checked(layer, checked)
        else:
            self._edit(f"{'Show' if checked else 'Hide'} {item.text(0)}", lambda: self._set_ids_visible(ids, checked))
        self.refresh()  # a click may have been refused or widened; show what the model says

    def set_layer_checked(self, layer: str, checked: bool) -> None:
        """Check box of a layer row: hide the layer, or show it with every structure it holds."""
        def change() -> None:
            model = self.model
            if not checked:
                model.set_layer_visible(layer, False)
                return
            with model.batch():
                was_hidden = not model.layer_visible(layer)
                if was_hidden:
                    model.set_layer_visible(layer, True)
                ids = model.resolve(layer)
                # A partly shown layer, or one that would come back empty, is shown whole.
                if not was_hidden or not any(model.is_visible(sid) for sid in ids):
                    for sid in ids:
                        if not model.structure_visible(sid):
                            model.set_visible(sid, True)

        self._edit(f"{'Show' if checked else 'Hide'} {layer} layer", change)

    def toggle_layer(self, layer: str) -> None:
        """Keyboard and menu toggle: hide the layer if any of it is drawn, else show it (see
        :meth:`SceneModel.show_layer`)."""
        shown = not self.model.layer_shown(layer)
        self._edit(f"{'Show' if shown else 'Hide'} {layer} layer", lambda: self.model.show_layer(layer, shown))

    def _set_ids_visible(self, ids: tuple[str, ...], visible: bool) -> None:
        with self.model.batch():
            for sid in ids:
                self.model.set_visible(sid, visible)

    def set_layer_opacity(self, layer: str, value: float) -> None:
        if self._refreshing or abs(self.model.layer_opacity(layer) - value) < 1e-9:
            return
        self._edit(f"Opacity of {layer} layer", lambda: self.model.set_opacity(layer, value),
                   merge=f"opacity:{layer}")

    def show_only_items(self, items: list[QTreeWidgetItem]) -> None:
        ids = [sid for item in items for sid in item.data(0, ROLE_IDS)]
        if not ids:
            return
        names = ", ".join(item.text(0) for item in items)
        self._edit(f"Show only {names}", lambda: self.model.show_only(ids))

    def show_all(self) -> None:
        def change() -> None:
            with self.model.batch():
                self.model.show_all()
                for layer in self.model.atlas.layer_names:
                    if self.model.layer_opacity(layer) != 1.0:
                        self.model.set_opacity(layer, 1.0)

        self._edit("Show all", change)

    # -- model -> widgets ----------------------------------------------------------------------
    def disconnect_model(self) -> None:
        self.model.events.visibility.disconnect(self._on_model_visibility)
        self.model.events.opacity.disconnect(self._on_model_opacity)

    def _on_model_visibility(self, _ids: tuple[str, ...]) -> None:
        self.refresh()

    def _on_model_opacity(self, _ids: tuple[str, ...]) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Set every check box and slider from the model."""
        self._refreshing = True
        try:
            for item in (*self.layer_items.values(), *self.muscle_items.values(), *self.part_items.values(),
                         *self.structure_items.values()):
                shown = [self.model.is_visible(sid) for sid in item.data(0, ROLE_IDS)]
                state = (Qt.CheckState.Checked if all(shown) else
                         Qt.CheckState.Unchecked if not any(shown) else Qt.CheckState.PartiallyChecked)
                if item.checkState(0) != state:
                    item.setCheckState(0, state)
            for layer, slider in self.opacity_sliders.items():
                value = round(self.model.layer_opacity(layer) * 100)
                if slider.value() != value:
                    slider.setValue(value)
        finally:
            self._refreshing = False


def _row_key(structure) -> str:
    """Rows group a muscle's left and right parts; bones group by region (vertebral column, ...)."""
    return structure.muscle if structure.kind == "muscle" else f"group:{structure.group}"


def _parts(structures: list) -> dict[str, list]:
    """The structures of one muscle by part name (the name without its side), in atlas order."""
    parts: dict[str, list] = {}
    for structure in structures:
        parts.setdefault(_muscle_label(structure.muscle, [structure]), []).append(structure)
    return parts


def _part_label(part: str, muscle_label: str) -> str:
    """A part's row under its muscle row: "Trapezius, descending part" -> "Descending part"."""
    prefix = f"{muscle_label}, "
    if part.lower().startswith(prefix.lower()) and len(part) > len(prefix):
        rest = part[len(prefix):]
        return rest[:1].upper() + rest[1:]
    return part


def _muscle_name(muscle: str, structures: list) -> str:
    """Row label of a muscle made of parts: the muscle's own name ("trapezius" -> "Trapezius")."""
    if muscle.startswith("group:"):
        return _muscle_label(muscle, structures)
    return muscle.replace("_", " ").capitalize()


def _muscle_label(muscle: str, structures: list) -> str:
    """Row label of a muscle: its name without the side ("Multifidus (left)" -> "Multifidus")."""
    if muscle.startswith("group:"):
        return muscle.removeprefix("group:").replace("_", " ").capitalize()
    name = _SIDE_WORD.sub(" ", structures[0].name)
    name = " ".join(name.replace(" ,", ",").split()).strip(" ,")
    return name[:1].upper() + name[1:] if name else muscle.replace("_", " ").capitalize()


# "(left)", ", right", "Left ", "of right trapezius": the side, wherever the name says it.
_SIDE_WORD = re.compile(r"\((?:left|right)\)|,?\s*\b(?:left|right)\b", re.IGNORECASE)
