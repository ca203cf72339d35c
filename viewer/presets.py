"""Scenarios: named, cited sets of muscle wasting and fat by level and side (TOML files).

Dorsum ships its scenarios in ``viewer/preset_files``; a lecturer can copy one, edit it and pass the
file's path wherever a preset name goes (``--preset my-case.toml``). The format is in
``docs/presets.md``. A scenario whose numbers change with age (``[age]``) gives the wasting at any
age from its yearly rates. No VTK, no Qt.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from viewer.atlas import Atlas
from viewer.atrophy import MAX_AMOUNT, AtrophyParams, Wasting, atrophied_vertices
from viewer.errors import DorsumError

PRESET_DIR = Path(__file__).resolve().parent / "preset_files"
_PRESET_KEYS = {"name", "title", "summary", "explanation", "sources", "hide", "view"}
_WASTING_KEYS = {"muscle", "segments", "side", "amount", "fat", "amount_per_year", "fat_per_year", "source"}
_AGE_KEYS = {"reference", "default", "low", "high"}


class PresetError(DorsumError):
    """A scenario file that cannot be used, with the file and the key that is wrong."""


@dataclass(frozen=True)
class Wasting:
    """One muscle's wasting in a scenario: fixed amounts, or yearly rates past the reference age."""

    muscle: str
    segments: str
    side: str
    amount: float = 0.0
    fat: float = 0.0
    amount_per_year: float = 0.0
    fat_per_year: float = 0.0
    source: str = ""

    def at_age(self, years_past_reference: float) -> AtrophyParams:
        amount = min(MAX_AMOUNT, self.amount + self.amount_per_year * years_past_reference)
        fat = min(100.0, self.fat + self.fat_per_year * years_past_reference)
        return AtrophyParams(amount=round(amount, 2), segments=self.segments, side=self.side, fat=round(fat, 2),
                             muscle=self.muscle)


@dataclass(frozen=True)
class AgeScale:
    """Ages a scenario covers: its rates apply to the years past ``reference``."""

    reference: float
    default: float
    low: float
    high: float


@dataclass(frozen=True)
class Preset:
    """A scenario: what wastes, where and how much, why, and from which studies."""

    name: str
    title: str
    summary: str
    explanation: str
    sources: tuple[str, ...]
    wasting: tuple[Wasting, ...]
    age: AgeScale | None = None
    hide: tuple[str, ...] = ()
    view: str | None = None
    path: Path | None = None

    def params(self, age: float | None = None) -> tuple[AtrophyParams, ...]:
        """The wasting of each muscle (at ``age`` years for an ageing scenario; else its default age)."""
        years = 0.0
        if self.age is not None:
            chosen = self.age.default if age is None else check_age(self, age)
            years = chosen - self.age.reference
        elif age is not None:
            raise PresetError(f"preset {self.name}: --age only applies to scenarios that change with age "
                              f"(see 'dorsum preset list')")
        return tuple(w.at_age(years) for w in self.wasting)

    def caption(self, age: float | None = None) -> str:
        """A one-line caption: the title, the age for ageing scenarios."""
        if self.age is None:
            return self.title
        return f"{self.title}, age {age if age is not None else self.age.default:g}"


def preset_wasting(preset: Preset, atlas: Atlas, age: float | None = None) -> tuple[Wasting, tuple[str, ...]]:
    """The scenario's wasting for ``atlas``, and a note for each muscle the atlas cannot show.

    A muscle the atlas lacks, or cannot waste exactly as asked (see :func:`viewer.atrophy.atrophied_vertices`),
    stays healthy and gets a note; the scenario must leave at least one muscle to show.
    """
    entries: list[AtrophyParams] = []
    notes: list[str] = []
    for params in preset.params(age):
        if params.muscle not in atlas.muscles:
            notes.append(f"{params.muscle} is not in this atlas; the scenario shows the other muscles")
            continue
        try:
            for structure in atlas.structures_of_muscle(params.muscle):
                atrophied_vertices(atlas, structure.id, params)
        except DorsumError as exc:
            notes.append(f"{params.muscle} stays healthy in this atlas ({exc})")
            continue
        entries.append(params)
    if not entries:
        raise PresetError(f"preset {preset.name}: this atlas has none of its muscles ({', '.join(notes)})")
    return (entries[0] if len(entries) == 1 else tuple(entries)), tuple(notes)


def check_age(preset: Preset, age: float) -> float:
    scale = preset.age
    assert scale is not None
    try:
        value = float(age)
    except (TypeError, ValueError):
        raise PresetError(f"age: {age!r} is not a number of years") from None
    if not math.isfinite(value) or not scale.low <= value <= scale.high:
        raise PresetError(f"age: {age!r} is out of range for preset {preset.name} "
                          f"(allowed: {scale.low:g} to {scale.high:g} years)")
    return value


def preset_files() -> dict[str, Path]:
    """Name -> file of every scenario shipped with Dorsum."""
    return {path.stem: path for path in sorted(PRESET_DIR.glob("*.toml"))}


def builtin_presets() -> tuple[Preset, ...]:
    return tuple(load_preset(path) for path in preset_files().values())


def load_preset(name_or_path: str | Path) -> Preset:
    """A shipped scenario by name (``chronic_lbp``), or a scenario file by path.

    Raises
    ------
    PresetError
        For an unknown name, an unreadable file, or a file that breaks the format (one line that
        names the file and the key).
    """
    text = str(name_or_path)
    files = preset_files()
    if text in files:
        path = files[text]
    elif text.endswith(".toml") or Path(text).is_file():
        path = Path(text)
    else:
        raise PresetError(f"unknown preset {text!r} (shipped: {', '.join(files)}; or give a .toml file)")
    if not path.is_file():
        raise PresetError(f"{path}: preset file not found")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PresetError(f"{path}: not a readable TOML file ({exc})") from None
    return _Reader(path).preset(data)


class _Reader:
    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, message: str) -> PresetError:
        return PresetError(f"{self.path.name}: {where}: {message}")

    def keys(self, where: str, table: Any, allowed: set[str], required: set[str]) -> Mapping[str, Any]:
        if not isinstance(table, Mapping):
            raise self.fail(where, "must be a table")
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise self.fail(f"{where}.{unknown[0]}", f"unknown key (allowed: {', '.join(sorted(allowed))})")
        missing = sorted(required - set(table))
        if missing:
            raise self.fail(where, f"missing required key {missing[0]!r}")
        return table

    def text(self, where: str, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, "must be non-empty text")
        return value.strip()

    def number(self, where: str, value: Any, low: float, high: float) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.fail(where, f"{value!r} is not a number")
        if not low <= value <= high:
            raise self.fail(where, f"{value!r} is out of range (allowed: {low:g} to {high:g})")
        return float(value)

    def texts(self, where: str, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.fail(where, "must be a list of text")
        return tuple(self.text(f"{where}[{i}]", v) for i, v in enumerate(value))

    def preset(self, data: Mapping[str, Any]) -> Preset:
        self.keys("(top level)", data, {"preset", "wasting", "age"}, {"preset", "wasting"})
        meta = self.keys("preset", data["preset"], _PRESET_KEYS, {"name", "title", "summary", "explanation", "sources"})
        sources = self.texts("preset.sources", meta["sources"])
        if not sources:
            raise self.fail("preset.sources", "cite at least one source for the numbers")
        age = self.age(data["age"]) if "age" in data else None
        entries = data["wasting"]
        if not isinstance(entries, list) or not entries:
            raise self.fail("wasting", "must be one or more [[wasting]] tables")
        wasting = tuple(self.wasting(i, entry, age is not None) for i, entry in enumerate(entries))
        muscles = [(w.muscle, w.side) for w in wasting]
        if len(set(m for m, _ in muscles)) != len(muscles):
            raise self.fail("wasting", "name each muscle once (one range and side per muscle)")
        view = meta.get("view")
        return Preset(name=self.text("preset.name", meta["name"]), title=self.text("preset.title", meta["title"]),
                      summary=self.text("preset.summary", meta["summary"]),
                      explanation=" ".join(self.text("preset.explanation", meta["explanation"]).split()),
                      sources=sources, wasting=wasting, age=age,
                      hide=self.texts("preset.hide", meta.get("hide", [])),
                      view=None if view is None else self.text("preset.view", view), path=self.path)

    def age(self, table: Any) -> AgeScale:
        table = self.keys("age", table, _AGE_KEYS, _AGE_KEYS)
        low = self.number("age.low", table["low"], 0, 120)
        high = self.number("age.high", table["high"], low, 120)
        return AgeScale(reference=self.number("age.reference", table["reference"], 0, high),
                        default=self.number("age.default", table["default"], low, high), low=low, high=high)

    def wasting(self, index: int, table: Any, ageing: bool) -> Wasting:
        where = f"wasting[{index}]"
        table = self.keys(where, table, _WASTING_KEYS, {"muscle", "segments", "side", "source"})
        rates = {key: self.number(f"{where}.{key}", table[key], 0, 5) for key in ("amount_per_year", "fat_per_year")
                 if key in table}
        if rates and not ageing:
            raise self.fail(where, "yearly rates need an [age] table (reference, default, low, high)")
        try:
            params = AtrophyParams(amount=table.get("amount", 0.0), segments=table["segments"], side=table["side"],
                                   fat=table.get("fat", 0.0), muscle=self.text(f"{where}.muscle", table["muscle"]))
        except DorsumError as exc:
            raise self.fail(where, str(exc)) from None
        return Wasting(params.muscle, params.segments, params.side, params.amount, params.fat,
                       source=self.text(f"{where}.source", table["source"]), **rates)
