"""Camera presets as plain data: where the camera looks from, and which way is up (atlas frame, RAS)."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from viewer.checks import check_option


@dataclass(frozen=True)
class ViewPreset:
    """A named view.

    Attributes
    ----------
    direction : (3,) unit vector from the focal point toward the camera.
    up : (3,) unit vector that points up on screen.
    """

    name: str
    label: str
    direction: tuple[float, float, float]
    up: tuple[float, float, float]


def _unit(x: float, y: float, z: float) -> tuple[float, float, float]:
    v = np.array([x, y, z], dtype=float)
    return tuple(float(c) for c in v / np.linalg.norm(v))  # type: ignore[return-value]


_SUPERIOR = (0.0, 0.0, 1.0)
_PRESETS = (
    ViewPreset("posterior", "Posterior", (0.0, -1.0, 0.0), _SUPERIOR),
    ViewPreset("anterior", "Anterior", (0.0, 1.0, 0.0), _SUPERIOR),
    ViewPreset("left", "Left lateral", (-1.0, 0.0, 0.0), _SUPERIOR),
    ViewPreset("right", "Right lateral", (1.0, 0.0, 0.0), _SUPERIOR),
    # Axial views keep anterior at the top of the picture, as on an MRI slice.
    ViewPreset("superior", "Superior", (0.0, 0.0, 1.0), (0.0, 1.0, 0.0)),
    ViewPreset("inferior", "Inferior", (0.0, 0.0, -1.0), (0.0, 1.0, 0.0)),
    ViewPreset("posterolateral_left", "Posterolateral oblique, left", _unit(-0.6, -0.8, 0.0), _SUPERIOR),
    ViewPreset("posterolateral_right", "Posterolateral oblique, right", _unit(0.6, -0.8, 0.0), _SUPERIOR),
)
VIEWS: MappingProxyType[str, ViewPreset] = MappingProxyType({p.name: p for p in _PRESETS})
DEFAULT_VIEW = "posterior"


def view_preset(name: str) -> ViewPreset:
    """The preset called ``name``; unknown names raise with the list of known ones."""
    return VIEWS[check_option("view", name, VIEWS)]


def fit_distance(points: np.ndarray, centre: np.ndarray, preset: ViewPreset, view_angle_deg: float,
                 aspect: float, margin: float = 0.06) -> float:
    """Camera distance from ``centre`` at which every point fits the perspective frame.

    Parameters
    ----------
    points : (n, 3) float array, mm.
    centre : (3,) focal point, mm.
    view_angle_deg : vertical field of view in degrees.
    aspect : width / height of the picture.
    margin : fraction of the frame left free on each side.
    """
    d = np.asarray(preset.direction, dtype=float)
    up = np.asarray(preset.up, dtype=float)
    right = np.cross(-d, up)
    rel = np.asarray(points, dtype=float) - centre
    tan_v = np.tan(np.radians(view_angle_deg) / 2.0) * (1.0 - margin)
    tan_h = tan_v * aspect
    depth = rel @ d
    need = np.maximum(np.abs(rel @ right) / tan_h, np.abs(rel @ up) / tan_v) + depth
    return float(need.max())
