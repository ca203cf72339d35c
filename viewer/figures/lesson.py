"""Lesson files: a TOML list of figures, validated completely before anything is rendered.

See ``docs/lessons.md`` for the format. :func:`load_lesson` reads and checks a file against an atlas
and raises one :class:`LessonError` listing every problem (unknown keys, bad sizes, unknown layers or
structures, bad atrophy settings, duplicate or unsafe output names); :func:`check_lesson_outputs`
checks the output folder and existing files, also before rendering.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from viewer.atlas import Atlas
from viewer.atrophy import DEFAULT_MUSCLE, DEFAULT_SEGMENTS, MAX_AMOUNT, AtrophyParams
from viewer.checks import DPI_RANGE, check_option, check_range, parse_size
from viewer.errors import DorsumError
from viewer.levels import SIDES, disc_position, parse_segment_range
from viewer.scene_options import SceneOptions
from viewer.views import DEFAULT_VIEW, VIEWS

PANEL_KINDS = ("3d", "section")
BACKGROUNDS = ("white", "transparent")
LIGHTING = ("studio", "flat")
DEFAULT_SIZE = (1600, 1200)
MAX_SIZE = (7680, 7680)

_LESSON_KEYS = {"title", "description", "size", "background", "lighting", "dpi", "credit"}
_TOP_KEYS = {"lesson", "figures"}
# Keys a panel may set; on a figure they are defaults for its panels (or describe its single panel).
_PANEL_KEYS = {"kind", "view", "only", "hide", "opacity", "atrophy", "labels", "level", "caption", "frame", "style", "skin",
               "preset", "age"}
#: How a section panel is drawn: the coloured diagram, or grey levels as on a T1-weighted MRI.
SECTION_STYLES = ("diagram", "mri")
_FIGURE_KEYS = {"output", "title", "caption", "size", "columns", "legend", "scale_bar", "panels",
                "credit"} | _PANEL_KEYS
_ATROPHY_KEYS = {"amount", "segments", "side", "fat", "muscle", "retracted", "ghost"}
_OUTPUT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.png$")


def preset_text(text: str, preset: str | None, age: float | None) -> str:
    """``text`` with ``{preset}`` (the scenario's title and age) and ``{explanation}`` filled in."""
    if preset is None or "{" not in text:
        return text
    from viewer.presets import load_preset

    found = load_preset(preset)
    return text.replace("{preset}", found.caption(age)).replace("{explanation}", found.explanation)


class LessonError(DorsumError):
    """A lesson file is invalid; carries every problem found."""

    def __init__(self, source: str, problems: list[str]):
        self.problems = list(problems)
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"{source}: {count}: " + "; ".join(self.problems))


@dataclass(frozen=True)
class PanelSpec:
    """One picture of a figure: a 3D view or an axial cross-section, with an optional caption."""

    kind: str = "3d"
    scene: SceneOptions = field(default_factory=SceneOptions)
    atrophy: AtrophyParams | None = None
    labels: tuple[str, ...] = ()
    label_all: bool = False
    level: str = "L4-L5"
    caption: str = ""
    frame: tuple[str, ...] = ()
    style: str = "diagram"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.scene.as_dict(), "frame": list(self.frame),
                "atrophy": self.atrophy.as_dict() if self.atrophy else None,
                "labels": True if self.label_all else list(self.labels), "level": self.level,
                "caption": self.caption, "style": self.style}


@dataclass(frozen=True)
class FigureSpec:
    """One output PNG: its panels laid out in a grid, with title, caption, legend and scale bar."""

    output: str
    size: tuple[int, int]
    panels: tuple[PanelSpec, ...]
    title: str = ""
    caption: str = ""
    columns: int | None = None
    legend: bool = False
    scale_bar: bool = False
    #: Print the data credit of the atlas's Creative Commons sources in small type at the bottom.
    credit: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {"output": self.output, "size": list(self.size), "title": self.title, "caption": self.caption,
                "columns": self.columns, "legend": self.legend, "scale_bar": self.scale_bar,
                "credit": self.credit, "panels": [p.as_dict() for p in self.panels]}


@dataclass(frozen=True)
class Lesson:
    """A validated lesson: settings shared by its figures, and the figures in file order."""

    source: Path
    title: str
    description: str
    background: str
    lighting: str
    dpi: float | None
    figures: tuple[FigureSpec, ...]


def load_lesson(path: str | Path, atlas: Atlas) -> Lesson:
    """Read and validate a lesson file against ``atlas``.

    Raises
    ------
    LessonError
        Listing every problem found (nothing has been rendered).
    """
    source = Path(path)
    if not source.is_file():
        raise DorsumError(f"{source}: no such lesson file")
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DorsumError(f"{source}: not valid TOML: {exc}") from None
    return parse_lesson(data, atlas, source)


def parse_lesson(data: Mapping[str, Any], atlas: Atlas, source: Path = Path("lesson.toml")) -> Lesson:
    """Validate the parsed TOML ``data`` of a lesson (see :func:`load_lesson`)."""
    return _LessonReader(atlas, source).lesson(data)


def check_lesson_outputs(lesson: Lesson, out_dir: str | Path, *, overwrite: bool) -> Path:
    """Make sure every figure of ``lesson`` can be written to ``out_dir``; create the folder if needed.

    Raises one :class:`LessonError` naming every existing file (without ``overwrite``) and an
    unwritable or impossible folder.
    """
    folder = Path(out_dir)
    problems: list[str] = []
    if folder.exists() and not folder.is_dir():
        raise LessonError(str(lesson.source), [f"--out {folder}: is a file, not a folder"])
    if not folder.exists():
        parent = next((p for p in folder.absolute().parents if p.exists()), None)
        if parent is None or not parent.is_dir():
            raise LessonError(str(lesson.source), [f"--out {folder}: cannot create the folder ({parent} is a file)"])
        if not os.access(parent, os.W_OK):
            raise LessonError(str(lesson.source), [f"--out {folder}: cannot create the folder ({parent} is not writable)"])
    elif not os.access(folder, os.W_OK):
        raise LessonError(str(lesson.source), [f"--out {folder}: folder is not writable; choose another place"])
    if not overwrite:
        for figure in lesson.figures:
            if (folder / figure.output).exists():
                problems.append(f"{folder / figure.output}: file exists (pass --overwrite to replace it)")
    if problems:
        raise LessonError(str(lesson.source), problems)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def check_lesson_atrophy(lesson: Lesson, atlas: Atlas) -> None:
    """Apply each atrophy setting of ``lesson`` once, without rendering, so that one the model cannot
    reach (e.g. more CSA loss than the muscle's bony bed allows) fails before any figure is written.

    The atrophy model memoises its calibration, so the figures reuse this work.
    """
    from viewer.atrophy import apply_atrophy
    from viewer.model import SceneModel

    model = SceneModel(atlas)
    problems: list[str] = []
    checked: dict[AtrophyParams, str | None] = {}
    for i, figure in enumerate(lesson.figures):
        for j, panel in enumerate(figure.panels):
            params = panel.atrophy
            if params is None:
                continue
            if params not in checked:
                try:
                    apply_atrophy(model, params)
                    checked[params] = None
                except DorsumError as exc:
                    checked[params] = str(exc)
            if checked[params] is not None:
                where = f"figures[{i}]" + (f".panels[{j}]" if len(figure.panels) > 1 else "")
                problems.append(f"{where}.atrophy ({figure.output}): {checked[params]}")
    if problems:
        raise LessonError(str(lesson.source), problems)


class _LessonReader:
    """Collects every problem of a lesson, then builds the :class:`Lesson` or raises."""

    def __init__(self, atlas: Atlas, source: Path):
        self.atlas = atlas
        self.source = source
        self.problems: list[str] = []
        self.default_credit = True

    def known(self, name: str) -> bool:
        """A layer, structure, muscle or group name, or ``<muscle>_<side>`` (see ``Atlas.ids_named``)."""
        return bool(self.atlas.ids_named(name))

    def fail(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def lesson(self, data: Mapping[str, Any]) -> Lesson:
        self.keys("(top level)", data, _TOP_KEYS)
        meta = data.get("lesson", {})
        if not isinstance(meta, dict):
            self.fail("lesson", "must be a table ([lesson])")
            meta = {}
        self.keys("lesson", meta, _LESSON_KEYS)
        default_size = self.size("lesson.size", meta.get("size")) or DEFAULT_SIZE
        background = self.option("lesson.background", meta.get("background", "white"), BACKGROUNDS)
        lighting = self.option("lesson.lighting", meta.get("lighting", "studio"), LIGHTING)
        dpi = self.number("lesson.dpi", meta["dpi"], *DPI_RANGE) if "dpi" in meta else None
        self.default_credit = self.flag("lesson.credit", meta.get("credit", True))
        entries = data.get("figures")
        if not isinstance(entries, list) or not entries or not all(isinstance(f, dict) for f in entries):
            self.fail("figures", "give one or more figures as [[figures]] tables")
            entries = []
        figures = [self.figure(f"figures[{i}]", entry, default_size) for i, entry in enumerate(entries)]
        outputs = [f.output for f in figures if f is not None]
        for name in sorted({n for n in outputs if outputs.count(n) > 1}):
            self.fail("figures", f"output name {name!r} is used by more than one figure")
        if self.problems:
            raise LessonError(str(self.source), self.problems)
        return Lesson(self.source, str(meta.get("title", "")), str(meta.get("description", "")),
                      background or "white", lighting or "studio", dpi, tuple(f for f in figures if f))

    # -- figures and panels --------------------------------------------------------------------
    def figure(self, where: str, entry: Mapping[str, Any], default_size: tuple[int, int]) -> FigureSpec | None:
        before = len(self.problems)
        self.keys(where, entry, _FIGURE_KEYS)
        output = entry.get("output")
        if not isinstance(output, str) or not _OUTPUT_NAME.match(output):
            self.fail(f"{where}.output", f"{output!r} is not a file name ending in .png "
                      "(letters, digits, '.', '_', '-'; no folders), e.g. \"01-superficial.png\"")
        size = self.size(f"{where}.size", entry.get("size")) or default_size
        defaults = {k: v for k, v in entry.items() if k in _PANEL_KEYS - {"caption"}}
        base = self.panel(where, defaults)
        raw_panels = entry.get("panels")
        if raw_panels is None:
            panels = [base]
        elif not isinstance(raw_panels, list) or not raw_panels or not all(isinstance(p, dict) for p in raw_panels):
            self.fail(f"{where}.panels", "give one or more panels as [[figures.panels]] tables")
            panels = []
        else:
            for i, own in enumerate(raw_panels):
                self.keys(f"{where}.panels[{i}]", own, _PANEL_KEYS)
            panels = [self.panel(f"{where}.panels[{i}]", own, base or PanelSpec()) for i, own in enumerate(raw_panels)]
        columns = entry.get("columns")
        if columns is not None and (not isinstance(columns, int) or isinstance(columns, bool) or columns < 1):
            self.fail(f"{where}.columns", f"{columns!r} is not a whole number of at least 1")
            columns = None
        legend = self.flag(f"{where}.legend", entry.get("legend", False))
        scale_bar = self.flag(f"{where}.scale_bar", entry.get("scale_bar", False))
        credit = self.flag(f"{where}.credit", entry.get("credit", self.default_credit))
        title = self.text(f"{where}.title", entry.get("title", ""))
        caption = self.text(f"{where}.caption", entry.get("caption", ""))
        first = next((p.scene for p in panels if p is not None and p.scene.preset is not None), None)
        if first is not None:
            title, caption = (preset_text(text, first.preset, first.age) for text in (title, caption))
        if len(self.problems) > before:
            return None
        return FigureSpec(output, size, tuple(p for p in panels if p), title, caption, columns, legend, scale_bar,
                          credit)

    def panel(self, where: str, entry: Mapping[str, Any], base: PanelSpec = PanelSpec()) -> PanelSpec | None:
        """A panel from its own keys; keys it does not set come from ``base`` (the figure's defaults)."""
        before = len(self.problems)
        scene = base.scene
        kind = self.option(f"{where}.kind", entry["kind"], PANEL_KINDS) if "kind" in entry else base.kind
        view = self.option(f"{where}.view", entry["view"], VIEWS) if "view" in entry else scene.view
        only = self.name_list(f"{where}.only", entry["only"]) if "only" in entry else scene.only
        hide = self.name_list(f"{where}.hide", entry["hide"]) if "hide" in entry else scene.hide
        opacity = self.opacity(f"{where}.opacity", entry["opacity"]) if "opacity" in entry else scene.opacity
        if len(self.problems) == before and only and self._resolves_to_nothing(only, hide):
            self.fail(where, "only/hide leave nothing to show")
        atrophy = self.atrophy(f"{where}.atrophy", entry["atrophy"]) if "atrophy" in entry else base.atrophy
        label_all, labels = (self.labels(f"{where}.labels", entry["labels"]) if "labels" in entry
                             else (base.label_all, base.labels))
        level = base.level
        if "level" in entry:
            level = str(entry["level"]).upper()
            try:
                disc_position(level)
            except DorsumError as exc:
                self.fail(f"{where}.level", str(exc))
        frame = self.name_list(f"{where}.frame", entry["frame"]) if "frame" in entry else base.frame
        style = self.option(f"{where}.style", entry["style"], SECTION_STYLES) if "style" in entry else base.style
        skin = self.flag(f"{where}.skin", entry["skin"]) if "skin" in entry else scene.skin
        preset, age = self.preset(where, entry, base.scene)
        if preset is not None and "atrophy" in entry:
            self.fail(where, "give either a preset or an atrophy table, not both")
        caption = self.text(f"{where}.caption", entry.get("caption", ""))
        if len(self.problems) > before:
            return None
        caption = preset_text(caption, preset, age)
        return PanelSpec(kind or "3d", SceneOptions(view=view or DEFAULT_VIEW, hide=hide, only=only, opacity=opacity,
                                                    skin=skin, preset=preset, age=age),
                         None if preset is not None else atrophy, labels, label_all, level, caption, frame,
                         style or "diagram")

    def preset(self, where: str, entry: Mapping[str, Any], scene: SceneOptions) -> tuple[str | None, float | None]:
        """The panel's scenario (name or file, checked) and age, or the figure's."""
        name = entry.get("preset", scene.preset)
        age = entry.get("age", scene.age if "preset" not in entry else None)
        if name is None:
            if "age" in entry:
                self.fail(f"{where}.age", "goes with a preset (an ageing scenario)")
            return None, None
        from viewer.presets import load_preset

        try:
            found = load_preset(str(name) if not str(name).endswith(".toml") else self.source.parent / str(name))
            if age is not None:
                found.params(age)
        except DorsumError as exc:
            self.fail(f"{where}.preset", str(exc))
            return None, None
        name = str(self.source.parent / str(name)) if str(name).endswith(".toml") else str(name)
        return name, None if age is None else float(age)

    def _resolves_to_nothing(self, only: tuple[str, ...], hide: tuple[str, ...]) -> bool:
        shown = set().union(*(self.atlas.ids_named(n) for n in only))
        hidden = set().union(*(self.atlas.ids_named(n) for n in hide)) if hide else set()
        return not (shown - hidden)

    def atrophy(self, where: str, value: Any) -> AtrophyParams | None:
        if not isinstance(value, dict):
            self.fail(where, "must be a table, e.g. atrophy = { amount = 30, segments = \"L4-S1\", side = \"left\" }")
            return None
        before = len(self.problems)
        self.keys(where, value, _ATROPHY_KEYS)
        if "amount" not in value:
            self.fail(where, f"missing required key 'amount' (CSA loss in percent, 0 to {MAX_AMOUNT:g})")
        amount = self.number(f"{where}.amount", value.get("amount", 0), 0, MAX_AMOUNT)
        fat = self.number(f"{where}.fat", value.get("fat", 0), 0, 100)
        side = self.option(f"{where}.side", value.get("side", "both"), SIDES)
        segments = str(value.get("segments", DEFAULT_SEGMENTS)).upper()
        try:
            parse_segment_range(segments)
        except DorsumError as exc:
            self.fail(f"{where}.segments", str(exc))
        retracted = self.flag(f"{where}.retracted", value.get("retracted", False))
        ghost = self.flag(f"{where}.ghost", value.get("ghost", False))
        muscle = str(value.get("muscle", DEFAULT_MUSCLE))
        if muscle not in self.atlas.muscles:
            self.fail(f"{where}.muscle", f"unknown muscle {muscle!r} (known: {', '.join(self.atlas.muscles)})")
        if len(self.problems) > before:
            return None
        try:  # the atrophy model's own rules (e.g. a range must hold a disc level)
            return AtrophyParams(amount=amount, segments=segments, side=side, fat=fat, muscle=muscle,
                                 retracted=retracted, ghost=ghost)
        except DorsumError as exc:
            self.fail(where, str(exc))
            return None

    def labels(self, where: str, value: Any) -> tuple[bool, tuple[str, ...]]:
        if isinstance(value, bool):
            return value, ()
        return False, self.name_list(where, value)

    # -- values --------------------------------------------------------------------------------
    def keys(self, where: str, table: Mapping[str, Any], allowed: set[str]) -> None:
        for key in sorted(set(table) - allowed):
            place = key if where == "(top level)" else f"{where}.{key}"
            self.fail(place, f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def size(self, where: str, value: Any) -> tuple[int, int] | None:
        if value is None:
            return None
        try:
            return parse_size(str(value), max_width=MAX_SIZE[0], max_height=MAX_SIZE[1])
        except DorsumError as exc:
            self.fail(where, str(exc).removeprefix("size: "))
            return None

    def option(self, where: str, value: Any, allowed: Any) -> str | None:
        try:
            return check_option(where, str(value), allowed)
        except DorsumError as exc:
            self.problems.append(str(exc))
            return None

    def number(self, where: str, value: Any, low: float, high: float) -> float | None:
        if isinstance(value, bool):
            self.fail(where, f"{value!r} is not a number")
            return None
        try:
            return check_range(where, value, low, high)
        except DorsumError as exc:
            self.problems.append(str(exc))
            return None

    def flag(self, where: str, value: Any) -> bool:
        if not isinstance(value, bool):
            self.fail(where, f"{value!r} is not true or false")
            return False
        return value

    def text(self, where: str, value: Any) -> str:
        if not isinstance(value, str):
            self.fail(where, f"{value!r} is not text (put it in quotes)")
            return ""
        return value

    def name_list(self, where: str, value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(where, f"{value!r} is not a list of names, e.g. [\"superficial\", \"multifidus\"]")
            return ()
        for name in value:
            if not self.known(name):
                self.fail(where, f"unknown layer or structure {name!r} (layers: {', '.join(self.atlas.layer_names)}; "
                          f"muscles: {', '.join(self.atlas.muscles)}; see 'dorsum info')")
        return tuple(value)

    def opacity(self, where: str, value: Any) -> dict[str, float]:
        if not isinstance(value, dict):
            self.fail(where, "must be a table, e.g. opacity = { superficial = 0.3 }")
            return {}
        result = {}
        for name, number in value.items():
            if not self.known(name):
                self.fail(where, f"unknown layer or structure {name!r} (layers: {', '.join(self.atlas.layer_names)})")
            checked = self.number(f"{where}.{name}", number, 0.0, 1.0)
            if checked is not None:
                result[name] = checked
        return result
