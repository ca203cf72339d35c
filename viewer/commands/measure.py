"""``dorsum measure``: cross-sectional area per disc level and side, and volume, of a muscle as shown."""

from __future__ import annotations

import argparse
import json
from typing import Any

from viewer.atrophy import DEFAULT_MUSCLE
from viewer.api import Scene
from viewer.levels import LUMBAR_DISCS
from viewer.scene_options import (
    add_atlas_argument,
    add_atrophy_arguments,
    atrophy_from_args,
    load_atlas_from_args,
    preset_from_args,
    print_notes,
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "measure", help="cross-sectional area (cm²) per disc level and side, and volume, of a muscle",
        description="Measure a muscle on the displayed (optionally atrophied) mesh: CSA in the axial plane "
                    "through each disc level, perpendicular to the local spine axis, and volume.")
    add_atlas_argument(parser)
    parser.add_argument("--muscle", default=DEFAULT_MUSCLE, metavar="NAME",
                        help=f"muscle (or muscle group, e.g. erector_spinae) to measure and to waste (default: "
                             f"{DEFAULT_MUSCLE}; 'dorsum info' lists them)")
    parser.add_argument("--levels", default=",".join(LUMBAR_DISCS), metavar="DISCS",
                        help="levels to measure at: discs (L3-L4,L4-L5,L5-S1) and/or vertebral bodies (L4,L5) "
                             "(default: all lumbar discs)")
    add_atrophy_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    preset, age = preset_from_args(args)
    params = atrophy_from_args(args, muscle=args.muscle)
    scene = Scene(load_atlas_from_args(args))
    if preset is not None:
        scene.preset(preset, age=age)
        print_notes(args, tuple(scene.notes))
    elif params is not None:
        scene.atrophy(params.amount, segments=params.segments, side=params.side, fat=params.fat, muscle=params.muscle)
    result = scene.measure(args.muscle, args.levels)
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0


def _percent(value: float | None) -> str:
    return "   n/a" if value is None else f"{value:+6.1f}%"


def format_table(result: dict[str, Any]) -> str:
    """The measurement as a plain-text table (cm², cm³, change against the healthy atlas, composition)."""
    lines = [f"{result['muscle']}: cross-sectional area (cm²) in the disc planes, displayed vs healthy"]
    if result.get("atrophy"):
        a = result["atrophy"]
        form = "retracted outline" if a.get("retracted") else "healthy outline kept, vacated space fat"
        lines.append(f"atrophy {a['amount']:g}% at {a['segments']}, side {a['side']}, fat {a['fat']:g}% ({form})")
    lines.append(f"{'level':<8} {'side':<8} {'CSA':>7} {'healthy':>8} {'change':>8} {'total':>7} {'lean':>7} "
                 f"{'fat':>6} {'grade':>5}")
    for disc, sides in result["levels"].items():
        for side, entry in sides.items():
            lines.append(f"{disc:<8} {side:<8} {entry['csa_cm2']:7.2f} {entry['baseline_cm2']:8.2f} "
                         f"{_percent(entry['change_percent']):>8} {entry['total_cm2']:7.2f} {entry['lean_cm2']:7.2f} "
                         f"{entry['fat_percent']:5.1f}% {entry['grade']:>5}")
    lines.append("CSA: inside the muscle outline as drawn; total: inside the fascial boundary; lean = total x (1 - fat)")
    lines.append(f"grade: {result.get('grade_scale', '')}")
    lines.append(f"{'volume':<8} {'side':<8} {'cm³':>7} {'healthy':>8} {'change':>8}")
    for side, entry in result["volume_cm3"].items():
        lines.append(f"{'':<8} {side:<8} {entry['volume_cm3']:7.1f} {entry['baseline_cm3']:8.1f} "
                     f"{_percent(entry['change_percent']):>8}")
    return "\n".join(lines)
