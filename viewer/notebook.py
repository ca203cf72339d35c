"""The scene in a Jupyter notebook: an interactive 3D view through PyVista's trame backend, or a picture.

The interactive view needs the ``notebook`` extra (``pip install 'dorsum[notebook]'``, which is
``pyvista[jupyter]``). Its modes are PyVista's:

- ``"trame"`` (default): the kernel renders (server-side rendering, off-screen, so no display and no
  graphics card are needed) and the view can be switched to drawing in the browser;
- ``"server"``: the kernel always renders and streams the pictures;
- ``"client"``: the browser draws the scene with vtk.js (WebGL);
- ``"html"``: the scene is exported into the cell itself (no server; the view survives a saved
  notebook but does not follow later changes).

The first three run a small trame web server inside the kernel, on ``127.0.0.1`` only; its pages
come from the installed packages, nothing is downloaded. ``"static"``, or any mode when the extra is
not installed, shows a picture instead.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from viewer.checks import check_option

if TYPE_CHECKING:
    from viewer.model import SceneModel
    from viewer.render import Camera

#: How :meth:`viewer.api.Scene.show` draws in a notebook.
NOTEBOOK_MODES = ("trame", "server", "client", "html", "static")
#: Modes that run a trame server in the kernel and follow later changes of the scene.
SERVED_MODES = ("trame", "server", "client")
#: Size (w, h) of the view in a notebook cell, in pixels.
NOTEBOOK_SIZE = (960, 720)


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where a returned widget or picture is shown in the cell)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def interactive_available() -> bool:
    """True when PyVista's notebook backend (trame, trame-vtk and a widget library) is installed."""
    return all(_installed(name) for name in ("trame", "trame_vtk", "trame_pyvista", "ipywidgets"))


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ValueError:  # a module set to None in sys.modules (blocked) has no spec
        return False


class NotebookView:
    """A live notebook view of a scene model: one off-screen plotter, its renderer, and the widget.

    Parameters
    ----------
    model : SceneModel
        The scene shown; later changes of it (hide, opacity, atrophy) reach the view in the served
        modes.
    view : str or None
        Camera preset, used when ``camera`` is None.
    camera : Camera or None
        An explicit camera (a saved state's).
    size : (int, int)
        Width and height of the view in pixels.
    mode : {"trame", "server", "client", "html"}
        See the module's description.
    """

    def __init__(self, model: SceneModel, *, view: str | None, camera: Camera | None = None,
                 size: tuple[int, int] = NOTEBOOK_SIZE, mode: str = "trame"):
        from viewer.render import SceneRenderer, notebook_plotter

        self.mode = check_option("mode", mode, NOTEBOOK_MODES[:-1])
        self.model = model
        self.plotter = notebook_plotter(size)
        self.renderer = SceneRenderer(self.plotter, model)
        if camera is not None:
            self.renderer.set_camera(camera)
        elif view is not None:
            self.renderer.set_view(view)
        self.widget: Any = self.plotter.show(jupyter_backend=self.mode, return_viewer=True)
        self._followed = False
        if self.mode in SERVED_MODES:
            self._follow_model()
        else:  # the scene is in the widget now; nothing more to draw
            self.close()

    def _follow_model(self) -> None:
        # Connected after the renderer's own handlers, so the actors are updated before the push.
        events = self.model.events
        for signal in (events.visibility, events.opacity, events.colour, events.geometry, events.atrophy):
            signal.connect(self._push)
        self._followed = True

    def _push(self, *_: Any) -> None:
        viewer = getattr(self.widget, "viewer", None)
        if viewer is not None:
            viewer.update()

    def close(self) -> None:
        """Stop following the model and free the plotter (the widget in the cell stays as drawn)."""
        if self._followed:
            events = self.model.events
            for signal in (events.visibility, events.opacity, events.colour, events.geometry, events.atrophy):
                signal.disconnect(self._push)
            self._followed = False
        if self.renderer is not None:
            self.renderer.close()
            self.renderer = None
        if self.mode not in SERVED_MODES:
            self.plotter.close()
