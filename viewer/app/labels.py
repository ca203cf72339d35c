"""Leader-line labels on the visible muscles in the live 3D view.

Each visible muscle gets one anchor on its surface where the camera sees it; the labels are laid out
in columns beside the body by the lesson figure code (:func:`viewer.figures.labels.layout_labels`,
the same layout the exports use) and drawn as 2D text and lines over the 3D view.
"""

from __future__ import annotations

import numpy as np
from vtkmodules.vtkCommonCore import vtkPoints
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData
from vtkmodules.vtkRenderingCore import vtkActor2D, vtkPolyDataMapper2D, vtkProp, vtkTextActor

from viewer.figures.compose import Box, font
from viewer.figures.labels import Anchor, LabelLayout, choose_anchors, layout_labels, margin_width
from viewer.model import SceneModel
from viewer.render import SceneRenderer

LABEL_PX = 14
TEXT_RGB = (0.13, 0.13, 0.13)
LEADER_RGB = (0.16, 0.16, 0.16)


def surface_anchor(vertices: np.ndarray, camera_position: np.ndarray, band: float = 0.25) -> np.ndarray:
    """The point a label of this mesh points to, (3,) mm: the vertex nearest the camera near the
    line from the camera through the mesh's centre.

    Parameters
    ----------
    vertices : (n, 3) float mm, the displayed mesh.
    camera_position : (3,) mm.
    band : radius of the search around the camera-to-centre line, as a fraction of the mesh's width.
    """
    centre = 0.5 * (vertices.min(axis=0) + vertices.max(axis=0))
    axis = centre - camera_position
    axis = axis / max(float(np.linalg.norm(axis)), 1e-9)
    relative = vertices - camera_position
    along = relative @ axis
    off_line = np.linalg.norm(relative - np.outer(along, axis), axis=1)
    # The width, not the length, of a long muscle: the anchor stays over its middle.
    width = float(np.sort(vertices.max(axis=0) - vertices.min(axis=0))[1])
    near_line = off_line <= band * width
    candidates = np.flatnonzero(near_line) if near_line.any() else np.arange(len(vertices))
    return vertices[candidates[np.argmin(along[candidates])]]


def muscle_anchors(model: SceneModel, camera_position: np.ndarray) -> dict[str, list[np.ndarray]]:
    """Label text -> surface anchors (3,) mm of its visible structures (muscles only, not bones)."""
    anchors: dict[str, list[np.ndarray]] = {}
    for sid in model.visible_ids():
        structure = model.atlas.structure(sid)
        if structure.kind == "muscle" and model.opacity(sid) > 0.05:
            anchors.setdefault(muscle_display_name(model, structure.muscle), []).append(
                surface_anchor(model.vertices(sid), camera_position))
    return anchors


def muscle_display_name(model: SceneModel, muscle: str) -> str:
    """"Multifidus" for the structures "Multifidus (left)" and "Multifidus (right)"."""
    name = model.atlas.structures_of_muscle(muscle)[0].name
    for word in ("(left)", "(right)", ", left", ", right", " left", " right", "(Left)", "(Right)"):
        name = name.replace(word, "")
    return name.strip(" ,") or muscle.replace("_", " ").capitalize()


def label_layout(model: SceneModel, renderer: SceneRenderer, size: tuple[int, int],
                 label_px: int = LABEL_PX) -> LabelLayout:
    """Where the labels of the visible muscles go in a view of ``size`` (w, h) pixels (y down)."""
    camera = np.asarray(renderer.camera.position, dtype=float)
    by_text = muscle_anchors(model, camera)
    typeface = font(label_px)
    width, height = size
    if not by_text:
        return LabelLayout((), ())
    margin = margin_width(list(by_text), typeface, width)
    picture = Box(margin, 0, max(1, width - 2 * margin), height)
    candidates = {}
    for text, points in by_text.items():
        pixels = renderer.world_to_pixels(np.asarray(points), size)
        candidates[text] = [Anchor(i, float(x), float(y), 1) for i, (x, y) in enumerate(pixels)]
    body_points = np.concatenate([model.vertices(sid)[:: max(1, len(model.vertices(sid)) // 500)]
                                  for sid in model.visible_ids()])
    body_x = renderer.world_to_pixels(body_points, size)[:, 0]
    body = (float(np.clip(body_x.min(), 0, width)), float(np.clip(body_x.max(), 0, width)))
    chosen = choose_anchors(candidates, width / 2)
    return layout_labels(chosen, picture, typeface, margin, body)


class LiveLabels:
    """2D labels with leader lines over the 3D view; :meth:`show` lays them out for the current camera."""

    def __init__(self, renderer: SceneRenderer, model: SceneModel):
        self.renderer = renderer
        self.model = model
        self.layout = LabelLayout((), ())
        self._actors: list[vtkProp] = []

    def show(self) -> None:
        self.clear()
        size = tuple(int(v) for v in self.renderer.plotter.window_size)
        if min(size) < 32:
            return
        self.layout = label_layout(self.model, self.renderer, size)
        height = size[1]
        lines = vtkPolyData()
        points = vtkPoints()
        cells = vtkCellArray()
        for label in self.layout.placed:
            text = vtkTextActor()
            text.SetInput(label.text)
            prop = text.GetTextProperty()
            prop.SetFontSize(LABEL_PX)
            prop.SetColor(*TEXT_RGB)
            prop.SetBackgroundColor(1.0, 1.0, 1.0)
            prop.SetBackgroundOpacity(0.75)
            text.SetPosition(label.box.left, height - label.box.bottom)
            text.SetPickable(False)
            self._add(text)
            start = points.InsertNextPoint(label.start[0], height - label.start[1], 0.0)
            end = points.InsertNextPoint(label.anchor[0], height - label.anchor[1], 0.0)
            cells.InsertNextCell(2, [start, end])
        lines.SetPoints(points)
        lines.SetLines(cells)
        mapper = vtkPolyDataMapper2D()
        mapper.SetInputData(lines)
        leaders = vtkActor2D()
        leaders.SetMapper(mapper)
        leaders.GetProperty().SetColor(*LEADER_RGB)
        leaders.GetProperty().SetLineWidth(1.5)
        leaders.SetPickable(False)
        self._add(leaders)

    def _add(self, actor: vtkProp) -> None:
        self.renderer.plotter.renderer.AddViewProp(actor)
        self._actors.append(actor)

    def clear(self) -> None:
        for actor in self._actors:
            self.renderer.plotter.renderer.RemoveViewProp(actor)
        self._actors = []
        self.layout = LabelLayout((), ())
