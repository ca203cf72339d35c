"""Small validation helpers whose messages name the parameter and the allowed values."""

from __future__ import annotations

import math
from collections.abc import Iterable

from viewer.errors import DorsumError


def check_option(name: str, value: str, allowed: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise naming the allowed values."""
    allowed = list(allowed)
    if value not in allowed:
        raise DorsumError(f"{name}: unknown value {value!r} (allowed: {', '.join(allowed)})")
    return value


def check_range(name: str, value: float, low: float, high: float) -> float:
    """Return ``value`` as float if ``low <= value <= high``, else raise naming the range."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DorsumError(f"{name}: {value!r} is not a number (allowed: {low:g} to {high:g})") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise DorsumError(f"{name}: {value!r} is out of range (allowed: {low:g} to {high:g})")
    return number


#: Resolution a PNG may record, dots per inch (as lesson files allow).
DPI_RANGE = (10.0, 2400.0)


def check_dpi(value: object) -> float:
    """Return ``value`` as a DPI within :data:`DPI_RANGE`, else raise naming the range."""
    return check_range("dpi", value, *DPI_RANGE)  # type: ignore[arg-type]


def parse_size(text: str, *, max_width: int = 7680, max_height: int = 4320) -> tuple[int, int]:
    """Parse ``"WxH"`` into ``(width, height)`` pixels, both within the allowed maxima."""
    parts = str(text).lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise DorsumError(f"size: {text!r} is not WIDTHxHEIGHT in pixels, e.g. 1920x1080")
    width, height = (int(p) for p in parts)
    if not (16 <= width <= max_width and 16 <= height <= max_height):
        raise DorsumError(
            f"size: {text!r} is out of range (width 16 to {max_width}, height 16 to {max_height})"
        )
    return width, height


def parse_colour(name: str, text: str) -> tuple[float, float, float]:
    """Parse ``"#rrggbb"`` into an RGB triple of floats in [0, 1]."""
    value = str(text)
    if len(value) != 7 or value[0] != "#":
        raise DorsumError(f"{name}: {text!r} is not a colour of the form '#rrggbb'")
    try:
        return tuple(int(value[i : i + 2], 16) / 255.0 for i in (1, 3, 5))  # type: ignore[return-value]
    except ValueError:
        raise DorsumError(f"{name}: {text!r} is not a colour of the form '#rrggbb'") from None
