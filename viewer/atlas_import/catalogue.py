"""The catalogue of an imported atlas: which FMA concepts become which Dorsum structures.

The data live in ``catalogue.toml`` beside this module (ids, layers, groups, colours, teaching
text); this module reads it and expands paired entries into their left and right structures.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType

from viewer.atlas import Layer, Teaching

SIDES = ("left", "right")


@dataclass(frozen=True)
class Planned:
    """One structure of the imported atlas and where its mesh comes from.

    Attributes
    ----------
    fma : tuple of int
        FMA concepts whose meshes are merged into this structure (empty: made by the lumbar rebuild).
    split : str
        ``"left"`` or ``"right"`` when the source mesh holds both sides and this structure is the
        half on that side of x = 0; ``""`` otherwise.
    upper_mm : float
        When > 0, only the top this many millimetres of the mesh are kept (the upper femur).
    """

    id: str
    name: str
    muscle: str
    group: str
    side: str
    kind: str
    layer: str
    colour: str
    fma: tuple[int, ...]
    split: str
    required: bool
    teaching: Teaching
    upper_mm: float = 0.0


@dataclass(frozen=True)
class Catalogue:
    """Layers, planned structures and FMA concept names of an imported atlas."""

    layers: tuple[Layer, ...]
    structures: tuple[Planned, ...]
    fma_names: Mapping[int, str]

    def structure(self, structure_id: str) -> Planned:
        return next(s for s in self.structures if s.id == structure_id)

    def planned_or_guessed(self, structure_id: str) -> Planned:
        """The catalogue's structure, or for an id it lacks (a new mesh of the lumbar rebuild,
        e.g. ``supraspinous_ligament``) one guessed from the id: kind from its words, side from
        its suffix, in the layer where such a structure is dissected."""
        known = next((s for s in self.structures if s.id == structure_id), None)
        if known is not None:
            return known
        side = next((side for side in SIDES if structure_id.endswith("_" + side)), "midline")
        base = structure_id[: -len(side) - 1] if side != "midline" else structure_id
        if "ligament" in structure_id:
            kind, layer, group = "ligament", "skeleton", "ligaments"
        elif "fascia" in structure_id or "aponeurosis" in structure_id:
            kind, layer, group = "fascia", "superficial", "fasciae"
        else:
            kind, layer, group = "muscle", "deep", "lumbar"
        colours = {"ligament": "#d9d2bd", "fascia": "#b9c4d2", "muscle": "#b04a50"}
        return Planned(
            id=structure_id, name=base.replace("_", " ").capitalize(), muscle=base if kind == "muscle" else structure_id,
            group=group, side=side, kind=kind, layer=layer, colour=colours[kind], fma=(), split="", required=False,
            teaching=Teaching(notes="Built by Dorsum's lumbar rebuild on the imported vertebrae; not part of "
                                    "the BodyParts3D source."),
        )

    @property
    def required_fma(self) -> tuple[int, ...]:
        """FMA concepts without which the import stops, in catalogue order."""
        return tuple(dict.fromkeys(f for s in self.structures if s.required for f in s.fma))

    @property
    def known_fma(self) -> tuple[int, ...]:
        """Every FMA concept the catalogue uses, in catalogue order."""
        return tuple(dict.fromkeys(f for s in self.structures for f in s.fma))

    def concept_line(self, fma: int) -> str:
        """One line naming a concept, e.g. ``"FMA13075 fourth lumbar vertebra"``."""
        name = self.fma_names.get(fma, "")
        return f"FMA{fma} {name[:1].lower()}{name[1:]}".rstrip()

    def missing(self, fma_ids: Iterable[int], *, required: bool) -> list[str]:
        """Lines for the required (or the optional) concepts absent from ``fma_ids``."""
        present = set(fma_ids)
        wanted = self.required_fma if required else tuple(
            f for f in self.known_fma if f not in set(self.required_fma))
        return [self.concept_line(f) for f in wanted if f not in present]


@functools.cache
def load_catalogue() -> Catalogue:
    """The catalogue shipped with Dorsum (``viewer/atlas_import/catalogue.toml``)."""
    text = resources.files(__package__).joinpath("catalogue.toml").read_text(encoding="utf-8")
    return parse_catalogue(tomllib.loads(text))


def parse_catalogue(data: Mapping) -> Catalogue:
    """Build a :class:`Catalogue` from the parsed TOML tables."""
    layers = tuple(Layer(t["name"], int(t["depth"]), t["colour"], t.get("description", ""))
                   for t in data["layers"])
    colours = {layer.name: layer.colour for layer in layers}
    texts = data.get("texts", {})
    structures: list[Planned] = []
    for entry in data["structures"]:
        teaching = Teaching(**texts.get(entry.get("text", entry["id"]), {}))
        structures.extend(_expand(entry, teaching, entry.get("colour", colours[entry["layer"]])))
    names = MappingProxyType({int(k): str(v) for k, v in data.get("fma_names", {}).items()})
    return Catalogue(layers, tuple(structures), names)


def _expand(entry: Mapping, teaching: Teaching, colour: str) -> list[Planned]:
    """The structures of one catalogue entry: one midline structure, or a left and a right one."""
    fma = entry.get("fma", {})

    def planned(side: str, ids: Iterable[int], split: str = "") -> Planned:
        sid = entry["id"] if side == "midline" else f"{entry['id']}_{side}"
        muscle = entry["muscle"] if entry["kind"] == "muscle" else sid
        return Planned(
            id=sid, name=entry["name"], muscle=muscle, group=entry["group"], side=side,
            kind=entry["kind"], layer=entry["layer"], colour=colour, fma=tuple(int(i) for i in ids),
            split=split, required=bool(entry.get("required", False)), teaching=teaching,
            upper_mm=float(entry.get("upper_mm", 0.0)),
        )

    if "both" in fma:
        return [planned(side, [fma["both"]], split=side) for side in SIDES]
    if "left" in fma or "right" in fma:
        return [planned(side, [fma[side]]) for side in SIDES]
    ids = fma.get("midline", [])
    return [planned("midline", ids if isinstance(ids, list) else [ids])]
