"""Leader-line labels in the live 3D view, decided by the label engine of the figures.

What gets a label and where comes from :mod:`viewer.figures.labels` with the structure-index image
of :class:`viewer.figures.figure.StructureIndexRenderer`, exactly as in saved screenshots and
``dorsum shot --labels``: only structures the camera sees get a label, each anchored on a pixel
where its structure is the visible surface. This module only draws that layout, as VTK 2D text and
lines over the view.
"""

from __future__ import annotations

from vtkmodules.vtkCommonCore import vtkPoints
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData
from vtkmodules.vtkRenderingCore import vtkActor2D, vtkPolyDataMapper2D, vtkProp, vtkTextActor

from viewer.figures.compose import Box, font
from viewer.figures.figure import StructureIndexRenderer
from viewer.figures.labels import LabelLayout, label_targets, margin_width, place_visible_labels
from viewer.model import SceneModel
from viewer.render import SceneRenderer

LABEL_PX = 14
TEXT_RGB = (0.13, 0.13, 0.13)
LEADER_RGB = (0.16, 0.16, 0.16)


def live_label_layout(model: SceneModel, renderer: SceneRenderer, index: StructureIndexRenderer,
                      size: tuple[int, int], label_px: int = LABEL_PX) -> tuple[LabelLayout, tuple[str, ...]]:
    """Labels of the visible muscles in a view of ``size`` (w, h) pixels (y down), and the texts that
    got none because too little of them is visible."""
    targets = label_targets(model, label_all=True)
    if not targets:
        return LabelLayout((), ()), ()
    typeface = font(label_px)
    width, height = size
    margin = margin_width(list(targets), typeface, width)
    picture = Box(margin, 0, max(1, width - 2 * margin), height)
    index_image = index.index_image(model, renderer.camera, size)
    return place_visible_labels(index_image, model.atlas.structure_ids, targets, Box(0, 0, width, height),
                                picture, typeface, margin)


class LiveLabels:
    """2D labels with leader lines over the 3D view; :meth:`show` lays them out for the current camera."""

    def __init__(self, renderer: SceneRenderer, model: SceneModel):
        self.renderer = renderer
        self.model = model
        self.layout = LabelLayout((), ())
        #: Texts of visible structures that got no label (too little of them is visible).
        self.hidden: tuple[str, ...] = ()
        self._index = StructureIndexRenderer(model.atlas)
        self._actors: list[vtkProp] = []

    def show(self) -> None:
        self.clear()
        size = tuple(int(v) for v in self.renderer.plotter.window_size)
        if min(size) < 32:
            return
        self.layout, self.hidden = live_label_layout(self.model, self.renderer, self._index, size)
        # The index pass rendered in its own GL context: give the window's back before it draws.
        self.renderer.plotter.ren_win.MakeCurrent()
        height = size[1]
        lines = vtkPolyData()
        points = vtkPoints()
        cells = vtkCellArray()
        dots = vtkCellArray()  # the anchor, as in saved pictures
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
            dots.InsertNextCell(1, [end])
        lines.SetPoints(points)
        lines.SetLines(cells)
        lines.SetVerts(dots)
        mapper = vtkPolyDataMapper2D()
        mapper.SetInputData(lines)
        leaders = vtkActor2D()
        leaders.SetMapper(mapper)
        leaders.GetProperty().SetColor(*LEADER_RGB)
        leaders.GetProperty().SetLineWidth(1.5)
        leaders.GetProperty().SetPointSize(5.0)
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
        self.hidden = ()

    def close(self) -> None:
        """Remove the labels and release the off-screen index renderer."""
        self.clear()
        self._index.close()
