"""Scene options shared by every command that shows the scene (shot, view, measure, export, ...)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from viewer.atlas import Atlas, load_atlas
from viewer.atlases import resolve_atlas
from viewer.atrophy import DEFAULT_SEGMENTS, MAX_AMOUNT, AtrophyParams, Wasting, apply_atrophy, wasting_entries
from viewer.checks import check_range
from viewer.errors import DorsumError
from viewer.model import SceneModel
from viewer.views import DEFAULT_VIEW, VIEWS


@dataclass(frozen=True)
class SceneOptions:
    """What to show, as plain data (the same fields a session or lesson file holds)."""

    view: str = DEFAULT_VIEW
    hide: tuple[str, ...] = ()
    only: tuple[str, ...] = ()
    opacity: dict[str, float] = field(default_factory=dict)
    atrophy: Wasting = None
    skin: bool = False
    preset: str | None = None
    age: float | None = None

    def as_dict(self) -> dict[str, object]:
        entries = wasting_entries(self.atrophy)
        atrophy = None if not entries else entries[0].as_dict() if len(entries) == 1 else [p.as_dict() for p in entries]
        found = {"view": self.view, "hide": list(self.hide), "only": list(self.only), "opacity": dict(self.opacity),
                 "atrophy": atrophy}
        if self.skin:  # only when set, so metadata written before reads the same
            found["skin"] = True
        if self.preset is not None:
            found["preset"] = self.preset
            if self.age is not None:
                found["age"] = self.age
        return found


def add_atlas_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--atlas", default=None, metavar="NAME|DIR",
                        help="an installed atlas by name (see 'dorsum atlas list'; 'builtin' is the shipped one) "
                             "or a folder holding atlas.toml (default: the one set with 'dorsum atlas use')")


def add_scene_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --atlas, --view, --hide, --only and --opacity to ``parser``."""
    add_atlas_argument(parser)
    parser.add_argument("--view", default=DEFAULT_VIEW, choices=list(VIEWS), metavar="NAME",
                        help=f"camera preset: {', '.join(VIEWS)} (default: {DEFAULT_VIEW})")
    parser.add_argument("--hide", nargs="+", action="extend", default=[], metavar="NAME",
                        help="hide layers, muscles or structures (e.g. superficial, trapezius, multifidus_left)")
    parser.add_argument("--only", nargs="+", action="extend", default=[], metavar="NAME",
                        help="show only these layers, muscles or structures")
    parser.add_argument("--opacity", nargs="+", action="extend", default=[], metavar="NAME=VALUE",
                        help="opacity from 0 to 1 of a layer, muscle or structure, e.g. superficial=0.3")
    parser.add_argument("--skin", action="store_true",
                        help="draw the skin of the lumbar trunk, translucent, around the back (generated from the atlas)")
    add_atrophy_arguments(parser)


def add_atrophy_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --atrophy, --segments, --side and --fat (multifidus wasting) to ``parser``."""
    group = parser.add_argument_group("atrophy (multifidus wasting, see docs/atrophy.md)")
    group.add_argument("--atrophy", default=None, metavar="PERCENT",
                       help=f"cross-sectional area lost at the disc levels of --segments, 0 to {MAX_AMOUNT:g}")
    group.add_argument("--segments", default=None, metavar="RANGE",
                       help=f"vertebral range that wastes, e.g. L4-S1 (default: {DEFAULT_SEGMENTS}, all lumbar levels)")
    group.add_argument("--side", default=None, metavar="SIDE", help="left, right or both (default: both)")
    group.add_argument("--fat", default=None, metavar="PERCENT",
                       help="fat fraction of the wasting muscle's cross-section, 0 to 100 (fat patches in sections, "
                            "marbling in 3D)")
    group.add_argument("--retracted", action="store_true", default=None,
                       help="show the retracted muscle alone in sections and measure inside its own outline "
                            "(default: the healthy outline stays as the fascial boundary and the vacated space is fat)")
    group.add_argument("--ghost", action="store_true", default=None,
                       help="show the healthy shape of the wasting muscle in 3D as a translucent ghost")
    group.add_argument("--preset", default=None, metavar="NAME",
                       help="a clinical or ageing scenario instead of the options above: a name from "
                            "'dorsum preset list' or a scenario .toml file (docs/presets.md)")
    group.add_argument("--age", default=None, metavar="YEARS", help="the age shown by an ageing scenario")


def preset_from_args(args: argparse.Namespace) -> tuple[str | None, float | None]:
    """(scenario name or file, age) of ``args``; mixing a scenario with --atrophy options is refused."""
    preset, age = getattr(args, "preset", None), getattr(args, "age", None)
    if preset is None:
        if age is not None:
            raise DorsumError("--age goes with --preset (an ageing scenario, see 'dorsum preset list')")
        return None, None
    mixed = [f"--{name}" for name in ("atrophy", "segments", "side", "fat") if getattr(args, name, None) is not None]
    if mixed:
        raise DorsumError(f"--preset sets the wasting itself; leave out {', '.join(mixed)} (or copy the scenario "
                          "file and edit it, docs/presets.md)")
    return str(preset), None if age is None else check_range("age", age, 0.0, 120.0)


def atrophy_from_args(args: argparse.Namespace, muscle: str | None = None) -> AtrophyParams | None:
    """The atrophy options of ``args`` as parameters, or None when none was given."""
    given = {name: getattr(args, name, None) for name in ("atrophy", "segments", "side", "fat", "retracted", "ghost")}
    if all(value is None for value in given.values()):
        return None
    params = {"amount": given["atrophy"] if given["atrophy"] is not None else 0.0,
              "segments": given["segments"] or DEFAULT_SEGMENTS, "side": given["side"] or "both",
              "fat": given["fat"] if given["fat"] is not None else 0.0, "retracted": bool(given["retracted"]),
              "ghost": bool(given["ghost"])}
    if muscle is not None:
        params["muscle"] = muscle
    return AtrophyParams(**params)


def parse_opacity(items: list[str]) -> dict[str, float]:
    """Parse ``["superficial=0.3"]`` into ``{"superficial": 0.3}``."""
    result: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise DorsumError(f"opacity: {item!r} is not NAME=VALUE, e.g. superficial=0.3")
        result[name] = check_range(f"opacity of {name}", value, 0.0, 1.0)
    return result


def scene_options_from_args(args: argparse.Namespace) -> SceneOptions:
    preset, age = preset_from_args(args)
    return SceneOptions(view=args.view, hide=tuple(args.hide), only=tuple(args.only),
                        opacity=parse_opacity(args.opacity), atrophy=atrophy_from_args(args),
                        skin=bool(getattr(args, "skin", False)), preset=preset, age=age)


def apply_scene_options(model: SceneModel, options: SceneOptions) -> tuple[str, ...]:
    """Apply visibility, opacity and atrophy options to ``model`` in one batch (unknown names raise).

    Returns notes for the user: muscles of a scenario this atlas cannot show (they stay healthy).
    """
    notes: tuple[str, ...] = ()
    hide = options.hide
    with model.batch():
        if options.preset is not None:
            from viewer.presets import load_preset, preset_wasting

            preset = load_preset(options.preset)
            wasting, notes = preset_wasting(preset, model.atlas, options.age)
            apply_atrophy(model, wasting)
            if not options.only:  # the scenario peels what covers the wasting muscles
                hide = (*preset.hide, *hide)
        elif options.atrophy is not None:
            apply_atrophy(model, options.atrophy)
        if options.only:
            model.show_only(options.only)
        for name in hide:
            model.set_visible(name, False)
        for name, value in options.opacity.items():
            model.set_opacity(name, value)
        if options.skin:  # only ever switched on here; a figure panel's reset switches it off
            model.set_skin(True)
    if not model.visible_ids():
        raise DorsumError("nothing left to show: the --hide/--only options hide every structure")
    return notes


def load_atlas_from_args(args: argparse.Namespace, fallback: Path | None = None) -> Atlas:
    """The atlas named by ``--atlas`` (a NAME or a folder); without it ``fallback``, else the default."""
    value = getattr(args, "atlas", None)
    if value is None and fallback is not None:
        return load_atlas(fallback)
    return load_atlas(resolve_atlas(value))


def model_from_args(args: argparse.Namespace) -> tuple[SceneModel, SceneOptions]:
    """Load the atlas, build the model and apply the scene options of ``args``."""
    options = scene_options_from_args(args)
    model = SceneModel(load_atlas_from_args(args))
    print_notes(args, apply_scene_options(model, options))
    return model, options


def print_notes(args: argparse.Namespace, notes: tuple[str, ...]) -> None:
    """Tell the user, on stderr, what the options could not show as asked."""
    import sys

    for note in notes:
        print(f"dorsum {getattr(args, 'command', '')}: note: {note}", file=sys.stderr)
