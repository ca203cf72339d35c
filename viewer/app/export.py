"""Pictures of what the window shows, at any size: rendered off-screen with the window's camera.

The same scene model and :class:`viewer.render.SceneRenderer` draw the picture, so an export and
``dorsum shot --state`` of the saved view give the same pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from viewer.app.labels import show_labels, show_legend
from viewer.model import SceneModel
from viewer.render import Camera, RenderSettings, SceneRenderer, offscreen_plotter

#: Size presets of the export dialog: label -> (width, height) pixels.
SIZE_PRESETS: dict[str, tuple[int, int]] = {
    "HD 1280 × 720": (1280, 720),
    "Full HD 1920 × 1080": (1920, 1080),
    "Slide 4:3 1600 × 1200": (1600, 1200),
    "QHD 2560 × 1440": (2560, 1440),
    "4K 3840 × 2160": (3840, 2160),
}


@dataclass(frozen=True)
class ExportOptions:
    size: tuple[int, int] = (1920, 1080)
    transparent: bool = False
    labels: bool = False
    legend: bool = False


def export_pixels(model: SceneModel, camera: Camera, options: ExportOptions,
                  settings: RenderSettings = RenderSettings()) -> np.ndarray:
    """Render ``model`` seen by ``camera`` to an (h, w, 3|4) uint8 array of exactly ``options.size``."""
    plotter = offscreen_plotter(options.size)
    renderer = SceneRenderer(plotter, model, settings)
    try:
        renderer.set_camera(camera)
        scale = max(1, int(settings.supersample))
        if options.labels:
            show_labels(plotter, model, np.asarray(camera.position), font_size=_font_px(options.size) * scale)
        if options.legend:
            show_legend(plotter, model)
        return renderer.screenshot(options.size, transparent=options.transparent)
    finally:
        renderer.close()
        plotter.close()


def _font_px(size: tuple[int, int]) -> int:
    """Label text height for a picture: readable on a slide, about 1/60 of its height."""
    return max(12, round(min(size) / 60))
