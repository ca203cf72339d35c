"""Clicking and hovering in the 3D view: which structure is under the pointer.

Observers on the VTK interactor tell a click (press and release without moving) from a drag that
turns the camera; a click highlights the structure under it or clears the highlight on empty space.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer

from vtkmodules.vtkRenderingCore import vtkPropPicker

from viewer.app.info_card import structure_title
from viewer.model import SceneModel
from viewer.render import SceneRenderer

CLICK_TOLERANCE = 4  # pixels the pointer may move between press and release for a click
HOVER_DELAY_MS = 150  # pointer at rest this long before the name under it is looked up


class StructurePicker(QObject):
    """Highlights the clicked structure; optionally reports the name under a resting pointer."""

    def __init__(self, renderer: SceneRenderer, model: SceneModel, on_hover: Callable[[str | None], None]):
        super().__init__()
        self.renderer = renderer
        self.model = model
        self.hover_enabled = False
        self._on_hover = on_hover
        self._press: tuple[int, int] | None = None
        self._picker = vtkPropPicker()
        self._hover_timer = QTimer(self, singleShot=True, interval=HOVER_DELAY_MS)
        self._hover_timer.timeout.connect(self._hover)
        interactor = renderer.plotter.iren.interactor
        # The release of the left button does not reach interactor observers (the style consumes it),
        # but the style's end of interaction does, at the release position.
        self._observers = [
            interactor.AddObserver("LeftButtonPressEvent", self._on_press, 10.0),
            interactor.AddObserver("EndInteractionEvent", self._on_release, 10.0),
            interactor.AddObserver("MouseMoveEvent", self._on_move, 10.0),
        ]

    def close(self) -> None:
        self._hover_timer.stop()
        iren = self.renderer.plotter.iren
        if iren is not None:
            for observer in self._observers:
                iren.interactor.RemoveObserver(observer)
        self._observers = []

    def structure_at(self, x: int, y: int) -> str | None:
        """Structure drawn at render-window pixel (x, y) (VTK convention: y up), or None."""
        self._picker.Pick(x, y, 0, self.renderer.plotter.renderer)
        return self.renderer.structure_of_actor(self._picker.GetActor())

    def _event_position(self) -> tuple[int, int]:
        x, y = self.renderer.plotter.iren.interactor.GetEventPosition()
        return int(x), int(y)

    def _on_press(self, *_: object) -> None:
        self._press = self._event_position()

    def _on_release(self, *_: object) -> None:
        if self._press is None:
            return
        (x0, y0), (x, y) = self._press, self._event_position()
        self._press = None
        if abs(x - x0) <= CLICK_TOLERANCE and abs(y - y0) <= CLICK_TOLERANCE:
            self.model.set_highlight(self.structure_at(x, y))

    def _on_move(self, *_: object) -> None:
        if self.hover_enabled and self._press is None:
            self._hover_timer.start()

    def _hover(self) -> None:
        sid = self.structure_at(*self._event_position())
        self._on_hover(None if sid is None else structure_title(self.model.atlas.structure(sid)))
