"""Vertebral levels: names, their order along the spine, and level ranges such as ``L4-S1``.

The order is the global level coordinate used by the atlas' per-vertex ``segment`` data:
C1 = 0 ... C7 = 6, T1 = 7 ... T12 = 18, L1 = 19 ... L5 = 23, S1 = 24. A disc sits half-way
between its two vertebrae (L4-L5 = 22.5).
"""

from __future__ import annotations

from collections.abc import Iterable

from viewer.errors import DorsumError

VERTEBRAE: tuple[str, ...] = (
    *(f"C{i}" for i in range(1, 8)),
    *(f"T{i}" for i in range(1, 13)),
    *(f"L{i}" for i in range(1, 6)),
    "S1",
)
LUMBAR: tuple[str, ...] = ("L1", "L2", "L3", "L4", "L5")
LUMBAR_DISCS: tuple[str, ...] = ("L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1")
SIDES: tuple[str, ...] = ("left", "right", "both")


def level_index(name: str) -> int:
    """Index of a vertebra name (``"L4"`` -> 22) in :data:`VERTEBRAE`."""
    key = str(name).strip().upper()
    if key not in VERTEBRAE:
        raise DorsumError(f"unknown vertebral level {name!r} (known: C1-C7, T1-T12, L1-L5, S1)")
    return VERTEBRAE.index(key)


def disc_position(name: str) -> float:
    """Level coordinate of an intervertebral disc such as ``"L4-L5"`` (22.5)."""
    parts = str(name).strip().upper().split("-")
    if len(parts) != 2:
        raise DorsumError(f"unknown disc level {name!r} (use two adjacent vertebrae, e.g. L4-L5)")
    upper, lower = (level_index(p) for p in parts)
    if lower != upper + 1:
        raise DorsumError(f"unknown disc level {name!r} (use two adjacent vertebrae, e.g. L4-L5)")
    return upper + 0.5


def parse_disc_list(text: str) -> tuple[str, ...]:
    """Parse ``"L3-L4,L4-L5"`` into a tuple of normalised disc names."""
    names = [n.strip().upper() for n in str(text).split(",") if n.strip()]
    if not names:
        raise DorsumError("levels: give one or more disc levels, e.g. L4-L5,L5-S1")
    for name in names:
        disc_position(name)
    return tuple(names)


def level_position(name: str) -> float:
    """Level coordinate of a disc (``"L4-L5"`` -> 22.5) or of a vertebral body (``"L4"`` -> 22)."""
    key = str(name).strip().upper()
    return disc_position(key) if "-" in key else float(level_index(key))


def parse_level_list(text: str) -> tuple[str, ...]:
    """Parse ``"L3-L4,L4,L4-L5"`` into normalised disc and vertebral-body level names (in the given order)."""
    names = [n.strip().upper() for n in str(text).split(",") if n.strip()]
    if not names:
        raise DorsumError("levels: give one or more levels, e.g. L4-L5,L5-S1 (discs) or L4,L5 (vertebral bodies)")
    for name in names:
        level_position(name)
    return tuple(names)


def parse_segment_range(text: str) -> tuple[float, float]:
    """Parse a vertebral range such as ``"L4-S1"`` or ``"L5"`` into level coordinates (low, high).

    The range covers the named vertebrae and the discs between them: ``L4-S1`` spans the L4-L5 and
    L5-S1 disc levels, so it runs from L4's centre to S1's centre.
    """
    parts = [p.strip() for p in str(text).split("-")]
    if len(parts) == 1:
        index = level_index(parts[0])
        return float(index), float(index)
    if len(parts) != 2:
        raise DorsumError(f"segments: {text!r} is not a vertebral range such as L4-S1")
    first, last = level_index(parts[0]), level_index(parts[1])
    if last < first:
        raise DorsumError(f"segments: {text!r} runs upwards; write the cranial level first, e.g. L4-S1")
    return float(first), float(last)


def _level_parts(name: str) -> tuple[str, tuple[int, ...]]:
    """``"vertebra_t10"`` -> ``("vertebra_#", (16,))``: the name without its levels, and the levels."""
    stem, levels = [], []
    for token in str(name).split("_"):
        if token.upper() in VERTEBRAE:
            stem.append("#")
            levels.append(VERTEBRAE.index(token.upper()))
        else:
            stem.append(token)
    return "_".join(stem), tuple(levels)


def anatomical_order(names: Iterable[str]) -> list[str]:
    """``names`` with those that differ only in vertebral level sorted cranial to caudal.

    Names are ids such as ``vertebra_t10`` or ``disc_l4_l5``: C1..C7, T1..T12, L1..L5, S1, never as
    text (which puts L before T and T10 before T2). Everything else keeps its given order; a family
    of levelled names stays where its first member was.
    """
    names = list(names)
    first: dict[str, int] = {}
    keys = []
    for index, name in enumerate(names):
        stem, levels = _level_parts(name)
        keys.append((first.setdefault(stem, index), levels, index))
    return [name for _, name in sorted(zip(keys, names))]
