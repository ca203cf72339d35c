"""Showing a wasting muscle: peel away the layers that cover it and frame the levels that waste.

A picture or animation of atrophy is about one muscle at a few levels, but the default scene shows
every layer from behind, and the multifidus lies under the superficial and intermediate layers.
When the user has not said what to show (no --hide/--only/--opacity/--view), atrophy pictures
hide the muscle layers outside the wasting muscle's layer and put the camera on the wasting levels.
Plain model edits and numpy; no VTK.
"""

from __future__ import annotations

import numpy as np

from viewer.atrophy import AtrophyParams, Wasting, wasting_entries
from viewer.levels import parse_segment_range
from viewer.measure import vertex_levels
from viewer.model import SceneModel

#: Levels of muscle shown above and below the wasting range in the close-up.
FRAME_MARGIN_LEVELS = 1.5


def covering_layers(model: SceneModel, muscle: str) -> tuple[str, ...]:
    """Layers outside (shallower than) the layer of ``muscle`` that hold muscles or fascia."""
    atlas = model.atlas
    depth = min(atlas.layer(s.layer).depth for s in atlas.structures_of_muscle(muscle))
    return tuple(layer.name for layer in atlas.layers if layer.depth < depth
                 and any(s.kind in ("muscle", "fascia") for s in atlas.structures if s.layer == layer.name))


def reveal_wasting_muscle(model: SceneModel, params: AtrophyParams) -> tuple[str, ...]:
    """Hide the layers covering ``params.muscle``; returns the names of the layers hidden."""
    hidden = covering_layers(model, params.muscle)
    with model.batch():
        for layer in hidden:
            model.set_layer_visible(layer, False)
    return hidden


def wasting_points(model: SceneModel, wasting: Wasting, step_target: int = 4000) -> np.ndarray:
    """(n, 3) mm: each wasting muscle (both sides) at its wasting levels plus a margin, for framing.

    ``wasting`` is one muscle's parameters or a scenario's (one per muscle). A muscle with no
    vertices near its range counts whole.
    """
    chunks = []
    for params in wasting_entries(wasting):
        low, high = parse_segment_range(params.segments)
        for structure in model.atlas.structures_of_muscle(params.muscle):
            vertices = model.vertices(structure.id)
            levels = vertex_levels(model.atlas, structure.id)
            near = vertices[(levels >= low - FRAME_MARGIN_LEVELS) & (levels <= high + FRAME_MARGIN_LEVELS)]
            chunks.append(near if len(near) else vertices)
    if not chunks:
        raise ValueError("nothing wastes: no points to frame")
    points = np.concatenate(chunks)
    return points[:: max(1, len(points) // step_target)]


def user_set_the_scene(hide, only, opacity, view) -> bool:
    """True when the user said what to show or from where (then nothing is peeled or re-framed)."""
    return bool(hide or only or opacity or view is not None)
