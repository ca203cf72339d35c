"""The scene model: what is shown, how, and with which geometry. Plain Python, no VTK.

The GUI and the CLI edit a :class:`SceneModel`; renderers subscribe to its ``events`` and apply the
changes. Several edits inside ``with model.batch():`` reach subscribers as one event per kind.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from psygnal import Signal, SignalGroup

from viewer.atlas import Atlas
from viewer.checks import check_range
from viewer.errors import DorsumError


class SceneEvents(SignalGroup):
    """Change events; each carries the tuple of structure ids affected."""

    visibility = Signal(tuple)
    opacity = Signal(tuple)
    geometry = Signal(tuple)
    colour = Signal(tuple)
    highlight = Signal(object)
    atrophy = Signal(object)


class SceneModel:
    """Visibility, opacity, highlight and displayed geometry of every structure of an atlas."""

    def __init__(self, atlas: Atlas):
        self.atlas = atlas
        self.events = SceneEvents()
        self._layer_visible = {name: True for name in atlas.layer_names}
        self._layer_opacity = {name: 1.0 for name in atlas.layer_names}
        self._visible = {sid: True for sid in atlas.structure_ids}
        self._opacity = {sid: 1.0 for sid in atlas.structure_ids}
        self._colour = {s.id: s.colour for s in atlas.structures}
        self._vertex_colours: dict[str, np.ndarray] = {}
        self._vertices: dict[str, np.ndarray] = {}
        self._highlight: str | None = None
        self._skin = False
        self._atrophy: Any = None
        self._pending: dict[str, set[str]] | None = None

    # -- names ---------------------------------------------------------------------------------
    def resolve(self, name: str) -> tuple[str, ...]:
        """Structure ids named by a layer, a structure id, a muscle, a group, or ``<muscle>_<side>``.

        ``longissimus_left`` names the left longissimus whole, also in an atlas that splits it into
        parts (see :meth:`viewer.atlas.Atlas.ids_named`).
        """
        atlas = self.atlas
        ids = atlas.ids_named(name)
        if ids:
            return ids
        raise DorsumError(
            f"unknown layer or structure {name!r} (layers: {', '.join(atlas.layer_names)}; "
            f"muscles: {', '.join(atlas.muscles)}; see 'dorsum info' for every structure id)"
        )

    # -- visibility ----------------------------------------------------------------------------
    def is_visible(self, structure_id: str) -> bool:
        """A structure is drawn when its own flag and its layer's flag are both on."""
        layer = self.atlas.structure(structure_id).layer
        return self._visible[structure_id] and self._layer_visible[layer]

    def layer_visible(self, layer: str) -> bool:
        return self._layer_visible[self._layer(layer)]

    def structure_visible(self, structure_id: str) -> bool:
        return self._visible[self._structure(structure_id)]

    def layer_shown(self, layer: str) -> bool:
        """Whether any structure of ``layer`` is drawn (what a menu tick or a tree check box shows)."""
        return any(self.is_visible(sid) for sid in self.resolve(self._layer(layer)))

    def show_layer(self, layer: str, shown: bool) -> None:
        """Show or hide a layer as the user means it, so that the picture always changes.

        Hiding turns the layer's flag off and keeps which of its structures are on. Showing turns it
        on and, when none of its structures would then be drawn (e.g. after "Show only" of another
        layer hid them one by one), shows all of them.
        """
        ids = self.resolve(self._layer(layer))
        with self.batch():
            self.set_layer_visible(layer, shown)
            if shown and not any(self._visible[sid] for sid in ids):
                for sid in ids:
                    self._visible[sid] = True
                self._emit("visibility", ids)

    def set_layer_visible(self, layer: str, visible: bool) -> None:
        self._layer_visible[self._layer(layer)] = bool(visible)
        self._emit("visibility", self.resolve(layer))

    def set_visible(self, name: str, visible: bool) -> None:
        """Show or hide a layer, muscle, group or single structure by name."""
        if name in self._layer_visible:
            self.set_layer_visible(name, visible)
            return
        ids = self.resolve(name)
        with self.batch():
            for sid in ids:
                self._visible[sid] = bool(visible)
                if visible:
                    # Showing a structure of a hidden layer shows it alone, as a user expects.
                    layer = self.atlas.structure(sid).layer
                    if not self._layer_visible[layer]:
                        self._show_layer_alone(layer, keep=sid)
            self._emit("visibility", ids)

    def _show_layer_alone(self, layer: str, keep: str) -> None:
        ids = self.resolve(layer)
        for sid in ids:
            self._visible[sid] = sid == keep
        self._layer_visible[layer] = True
        self._emit("visibility", ids)

    def show_only(self, names: Iterable[str]) -> None:
        """Show exactly the named layers/muscles/structures and hide everything else."""
        keep = {sid for name in names for sid in self.resolve(name)}
        with self.batch():
            for layer in self._layer_visible:
                self._layer_visible[layer] = any(s.layer == layer for s in self.atlas.structures if s.id in keep)
            for sid in self._visible:
                self._visible[sid] = sid in keep
            self._emit("visibility", self.atlas.structure_ids)

    def show_all(self) -> None:
        with self.batch():
            for layer in self._layer_visible:
                self._layer_visible[layer] = True
            for sid in self._visible:
                self._visible[sid] = True
            self._emit("visibility", self.atlas.structure_ids)

    def visible_ids(self) -> tuple[str, ...]:
        return tuple(sid for sid in self.atlas.structure_ids if self.is_visible(sid))

    # -- opacity -------------------------------------------------------------------------------
    def opacity(self, structure_id: str) -> float:
        """Effective opacity: the structure's own times its layer's."""
        layer = self.atlas.structure(structure_id).layer
        return self._opacity[structure_id] * self._layer_opacity[layer]

    def layer_opacity(self, layer: str) -> float:
        return self._layer_opacity[self._layer(layer)]

    def structure_opacity(self, structure_id: str) -> float:
        return self._opacity[self._structure(structure_id)]

    def set_opacity(self, name: str, value: float) -> None:
        """Set the opacity (0 to 1) of a layer, or of every structure a name resolves to."""
        value = check_range(f"opacity of {name}", value, 0.0, 1.0)
        if name in self._layer_opacity:
            self._layer_opacity[name] = value
            self._emit("opacity", self.resolve(name))
            return
        ids = self.resolve(name)
        for sid in ids:
            self._opacity[sid] = value
        self._emit("opacity", ids)

    # -- colour, highlight ---------------------------------------------------------------------
    def colour(self, structure_id: str) -> str:
        """Displayed colour ``#rrggbb`` (the atlas colour unless changed, e.g. by fat infiltration)."""
        return self._colour[structure_id]

    def set_colour(self, structure_id: str, colour: str) -> None:
        self._colour[self._structure(structure_id)] = colour
        self._emit("colour", (structure_id,))

    def vertex_colours(self, structure_id: str) -> np.ndarray | None:
        """Per-vertex displayed colours, (n, 3) float in [0, 1], or None for one colour everywhere.

        Used where a colour varies over a structure, e.g. fat only at the levels that waste.
        """
        return self._vertex_colours.get(self._structure(structure_id))

    def set_vertex_colours(self, structure_id: str, colours: np.ndarray | None) -> None:
        sid = self._structure(structure_id)
        if colours is None:
            if self._vertex_colours.pop(sid, None) is not None:
                self._emit("colour", (sid,))
            return
        colours = np.asarray(colours, dtype=np.float64)
        expected = (len(self.atlas.meshes[sid].vertices), 3)
        if colours.shape != expected:
            raise ValueError(f"vertex colours of {sid}: shape {colours.shape}, expected {expected}")
        previous = self._vertex_colours.get(sid)
        if previous is not None and np.array_equal(previous, colours):
            return
        self._vertex_colours[sid] = np.clip(colours, 0.0, 1.0)
        self._emit("colour", (sid,))

    @property
    def highlight(self) -> str | None:
        return self._highlight

    def set_highlight(self, structure_id: str | None) -> None:
        if structure_id is not None:
            self._structure(structure_id)
        if structure_id != self._highlight:
            self._highlight = structure_id
            self.events.highlight.emit(structure_id)

    @property
    def skin(self) -> bool:
        """Whether the body's skin (generated, see :mod:`viewer.body`) is drawn around the back in 3D."""
        return self._skin

    def set_skin(self, on: bool) -> None:
        if bool(on) != self._skin:
            self._skin = bool(on)
            self.events.visibility.emit(())

    # -- geometry ------------------------------------------------------------------------------
    def vertices(self, structure_id: str) -> np.ndarray:
        """Displayed vertex positions, (n, 3) float64 mm; the atlas geometry unless deformed."""
        sid = self._structure(structure_id)
        return self._vertices.get(sid, self.atlas.meshes[sid].vertices)

    def set_vertices(self, structure_id: str, vertices: np.ndarray) -> None:
        """Replace the displayed vertex positions; the count and connectivity stay the same."""
        sid = self._structure(structure_id)
        original = self.atlas.meshes[sid].vertices
        vertices = np.asarray(vertices, dtype=np.float64)
        if vertices.shape != original.shape:
            raise ValueError(f"vertices of {sid}: shape {vertices.shape} differs from the atlas {original.shape}")
        if vertices is original or np.array_equal(vertices, original):
            self._vertices.pop(sid, None)
        else:
            self._vertices[sid] = vertices
        self._emit("geometry", (sid,))

    @property
    def atrophy(self) -> Any:
        """The atrophy parameters currently applied (set by :mod:`viewer.atrophy`), or None."""
        return self._atrophy

    def set_atrophy(self, params: Any) -> None:
        self._atrophy = params
        self.events.atrophy.emit(params)

    # -- batching ------------------------------------------------------------------------------
    @contextmanager
    def batch(self) -> Iterator[None]:
        """Collect changes and emit one event per kind when the outermost batch ends."""
        if self._pending is not None:
            yield
            return
        self._pending = {}
        try:
            yield
        finally:
            pending, self._pending = self._pending, None
            for kind, ids in pending.items():
                getattr(self.events, kind).emit(tuple(sid for sid in self.atlas.structure_ids if sid in ids))

    def _emit(self, kind: str, ids: Iterable[str]) -> None:
        if self._pending is not None:
            self._pending.setdefault(kind, set()).update(ids)
        else:
            getattr(self.events, kind).emit(tuple(ids))

    def _layer(self, name: str) -> str:
        if name not in self._layer_visible:
            raise DorsumError(f"unknown layer {name!r} (known: {', '.join(self._layer_visible)})")
        return name

    def _structure(self, structure_id: str) -> str:
        if structure_id not in self._visible:
            raise DorsumError(f"unknown structure {structure_id!r} (see 'dorsum info' for the structure ids)")
        return structure_id
