"""Pictures of what the window shows, at any size: rendered off-screen with the window's camera.

The same scene model and :class:`viewer.render.SceneRenderer` draw the picture, and labels and legend
come from the lesson figure code (:mod:`viewer.figures`), so an export and ``dorsum shot --state FILE
[--labels --legend]`` of the saved view give the same pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
    """Render ``model`` seen by ``camera`` to an (h, w, 3|4) uint8 array of exactly ``options.size``.

    With labels, every visible muscle is named with a leader line in the margins beside the body
    (``dorsum shot --labels``); the legend lists the visible layers (``--legend``).
    """
    if options.labels or options.legend:
        from viewer.figures.figure import FigureRenderer

        with FigureRenderer(model.atlas, model=model, transparent=options.transparent, settings=settings) as figure:
            return figure.render_current(options.size, view=None, camera=camera, legend=options.legend,
                                         label_all=options.labels)
    plotter = offscreen_plotter(options.size)
    renderer = SceneRenderer(plotter, model, settings)
    try:
        renderer.set_camera(camera)
        return renderer.screenshot(options.size, transparent=options.transparent)
    finally:
        renderer.close()
        plotter.close()
