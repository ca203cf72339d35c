"""``dorsum preset list``: the shipped scenarios, with what they show and the studies behind them."""

from __future__ import annotations

import argparse
import json
import textwrap
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("preset", help="clinical and ageing scenarios (use one with --preset NAME)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=type(parser))
    listing = actions.add_parser("list", help="list the scenarios shipped with dorsum")
    listing.add_argument("--json", action="store_true", help="print JSON instead of text")
    listing.set_defaults(run=run_list)
    show = actions.add_parser("show", help="one scenario in full: explanation, wasting, sources")
    show.add_argument("name", metavar="NAME", help="a scenario name, or a scenario .toml file")
    show.add_argument("--age", type=float, default=None, metavar="YEARS", help="for ageing scenarios")
    show.add_argument("--json", action="store_true", help="print JSON instead of text")
    show.set_defaults(run=run_show)


def preset_dict(preset: Any, age: float | None = None) -> dict[str, Any]:
    """A scenario as plain data (the JSON ``preset list`` and ``preset show`` print)."""
    data: dict[str, Any] = {
        "name": preset.name, "title": preset.title, "summary": preset.summary, "explanation": preset.explanation,
        "wasting": [p.as_dict() for p in preset.params(age)],
        "sources": list(preset.sources),
    }
    if preset.age is not None:
        data["age"] = {"reference": preset.age.reference, "default": preset.age.default,
                       "low": preset.age.low, "high": preset.age.high,
                       "shown": age if age is not None else preset.age.default}
    return data


def run_list(args: argparse.Namespace) -> int:
    from viewer.presets import builtin_presets

    presets = builtin_presets()
    if args.json:
        print(json.dumps([preset_dict(p) for p in presets], indent=2))
        return 0
    width = max(len(p.name) for p in presets)
    for preset in presets:
        ages = f" (--age {preset.age.low:g}-{preset.age.high:g})" if preset.age is not None else ""
        print(f"{preset.name:<{width}}  {preset.title}{ages}: {preset.summary}")
    print("\nUse one with --preset NAME (shot, measure, lesson, animate, export, view); "
          "'dorsum preset show NAME' explains it.")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from viewer.presets import load_preset

    preset = load_preset(args.name)
    data = preset_dict(preset, args.age)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(preset.caption(args.age))
    print(textwrap.fill(preset.explanation, 96))
    print("\nWasting:")
    for entry in data["wasting"]:
        sides = "both sides" if entry["side"] == "both" else f"{entry['side']} side"
        print(f"  {entry['muscle']}: {entry['amount']:g}% of its area lost at {entry['segments']}, {sides}, "
              f"fat {entry['fat']:g}%")
    print("\nSources:")
    for source in preset.sources:
        print(textwrap.fill(source, 96, initial_indent="  - ", subsequent_indent="    "))
    return 0
