"""Name labels on the visible muscles in the live 3D view (exports use :mod:`viewer.figures.labels`).

Each visible muscle gets one label, anchored on its surface where the camera sees it: the vertex
nearest the camera among those close to the line from the camera through the muscle's centre.
"""

from __future__ import annotations

import numpy as np
import pyvista as pv

from viewer.model import SceneModel

LABEL_ACTOR = "dorsum-labels"


def surface_anchor(vertices: np.ndarray, camera_position: np.ndarray, band: float = 0.25) -> np.ndarray:
    """The point where a label of this mesh should point, (3,) mm.

    Parameters
    ----------
    vertices : (n, 3) float mm, the displayed mesh.
    camera_position : (3,) mm.
    band : radius of the search around the camera-to-centre line, as a fraction of the mesh size.
    """
    centre = 0.5 * (vertices.min(axis=0) + vertices.max(axis=0))
    axis = centre - camera_position
    axis = axis / max(float(np.linalg.norm(axis)), 1e-9)
    relative = vertices - camera_position
    along = relative @ axis
    off_line = np.linalg.norm(relative - np.outer(along, axis), axis=1)
    size = float(np.linalg.norm(vertices.max(axis=0) - vertices.min(axis=0)))
    near_line = off_line <= band * size
    candidates = np.flatnonzero(near_line) if near_line.any() else np.arange(len(vertices))
    return vertices[candidates[np.argmin(along[candidates])]]


def muscle_labels(model: SceneModel, camera_position: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Anchors (k, 3) mm and texts of one label per visible muscle (not bones)."""
    atlas = model.atlas
    by_muscle: dict[str, list[str]] = {}
    for sid in model.visible_ids():
        structure = atlas.structure(sid)
        if structure.kind == "muscle" and model.opacity(sid) > 0.05:
            by_muscle.setdefault(structure.muscle, []).append(sid)
    points, texts = [], []
    for muscle, ids in by_muscle.items():
        anchors = [surface_anchor(model.vertices(sid), camera_position) for sid in ids]
        nearest = int(np.argmin([np.linalg.norm(a - camera_position) for a in anchors]))
        points.append(anchors[nearest])
        texts.append(muscle_display_name(model, muscle))
    return np.reshape(points, (-1, 3)), texts


def muscle_display_name(model: SceneModel, muscle: str) -> str:
    """"Multifidus" for the structures "Multifidus (left)" and "Multifidus (right)"."""
    names = [s.name for s in model.atlas.structures_of_muscle(muscle)]
    name = names[0]
    for word in ("(left)", "(right)", ", left", ", right", " left", " right", "(Left)", "(Right)"):
        name = name.replace(word, "")
    return name.strip(" ,") or muscle.replace("_", " ").capitalize()


def show_labels(plotter: pv.Plotter, model: SceneModel, camera_position: np.ndarray, font_size: int = 14) -> None:
    """Add (or replace) the label actor for the visible muscles."""
    plotter.remove_actor(LABEL_ACTOR, render=False)
    points, texts = muscle_labels(model, np.asarray(camera_position, dtype=float))
    if not texts:
        return
    plotter.add_point_labels(
        points, texts, name=LABEL_ACTOR, font_size=font_size, point_size=max(4, font_size // 2),
        point_color="#222222", text_color="#111111", shape_color="#ffffff", shape_opacity=0.8, margin=3,
        always_visible=True, show_points=True, render_points_as_spheres=True, pickable=False, render=False,
        reset_camera=False,
    )


def hide_labels(plotter: pv.Plotter) -> None:
    plotter.remove_actor(LABEL_ACTOR, render=False)
