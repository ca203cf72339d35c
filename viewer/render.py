"""The one module that owns rendering: it applies a :class:`SceneModel` to a VTK scene.

A :class:`SceneRenderer` draws into a *stage*: an :class:`OffscreenStage` (bare VTK, for every
picture) or a PyVista plotter (pyvistaqt's ``QtInteractor`` in the viewer, the notebook's plotter),
of which it uses only the VTK renderer and render window. It creates one VTK actor per structure
once and applies model events in place: visibility, opacity and colour flip actor properties;
geometry updates the points of the same ``vtkPolyData``. Nothing is re-added or reloaded.
Pictures never import PyVista's plotting package (with matplotlib it is about a second of a cold
``dorsum shot``).

An off-screen stage draws only when a picture is asked for (:meth:`SceneRenderer.screenshot`
renders exactly once); a window (pyvistaqt) is re-rendered on every change.

While the user turns the camera (:meth:`SceneRenderer.set_moving`), each large structure is drawn
from a level of detail (:mod:`viewer.lod`): a quarter of its triangles over the same points,
normals and colours, so nothing but the fineness of the surface changes; translucent layers
blend without depth peeling, and the back faces of closed opaque surfaces are not drawn. Full
detail returns as soon as the camera stops. Pictures never use it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import vtkmodules.vtkRenderingOpenGL2  # noqa: F401  (registers the OpenGL classes behind the factories)
from vtkmodules.util.numpy_support import numpy_to_vtk, numpy_to_vtkIdTypeArray, vtk_to_numpy
from vtkmodules.vtkCommonCore import vtkPoints
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData
from vtkmodules.vtkRenderingCore import (vtkActor, vtkLightKit, vtkPolyDataMapper, vtkRenderer, vtkRenderWindow,
                                         vtkWindowToImageFilter)

from viewer.atlas_cache import vertex_normals
from viewer.checks import parse_colour
from viewer.display import prefer_headless_vtk
from viewer.lod import coarse_faces
from viewer.model import SceneModel
from viewer.views import DEFAULT_VIEW, fit_distance, view_preset

_VERTEX_COLOURS = "displayed_colours"
# The largest side llvmpipe renders in one piece; larger exports are tiled by VTK.
MAX_SINGLE_RENDER = 8192
#: The healthy shape of a wasting muscle, drawn around it on request (``ghost``): pale and see-through.
GHOST_COLOUR = "#c9d3de"
GHOST_OPACITY = 0.22
GHOST_OFFSET = 0.6  # mm
#: The generated skin (``--skin``): a pale skin tone, see-through so the muscles stay visible.
SKIN_COLOUR = "#e9c3a6"
SKIN_OPACITY = 0.3
SILHOUETTE_COLOUR = "#3a2a24"


@dataclass(frozen=True)
class RenderSettings:
    """How pictures look. ``lighting="flat"`` draws exact, unshaded colours (diagram style)."""

    background: str = "#ffffff"
    lighting: str = "studio"
    silhouettes: bool = False
    view_angle: float = 20.0
    supersample: int = 2
    # Blue, the one hue no tissue in the atlas has: never read as fat (yellow) or bone (beige).
    highlight_colour: str = "#1e8cff"
    specular: float = 0.25


@dataclass(frozen=True)
class Camera:
    """A camera as plain data (mm, atlas frame)."""

    position: tuple[float, float, float]
    focal_point: tuple[float, float, float]
    up: tuple[float, float, float]
    view_angle: float

    def as_dict(self) -> dict[str, Any]:
        return {"position": list(self.position), "focal_point": list(self.focal_point),
                "up": list(self.up), "view_angle": self.view_angle}


# -- meshes and actors (plain VTK) -------------------------------------------------------------
def _rgb(colour: str) -> tuple[float, float, float]:
    return tuple(float(c) for c in parse_colour("colour", colour))


def _cell_array(faces: np.ndarray) -> vtkCellArray:
    """A ``vtkCellArray`` of triangles from (m, 3) vertex indices."""
    faces = np.asarray(faces, dtype=np.int64)
    cells = vtkCellArray()
    cells.SetData(numpy_to_vtkIdTypeArray(np.arange(0, 3 * len(faces) + 1, 3, dtype=np.int64), deep=True),
                  numpy_to_vtkIdTypeArray(np.ascontiguousarray(faces).ravel(), deep=True))
    return cells


def _surface(vertices: np.ndarray, faces: np.ndarray, normals: np.ndarray | None = None) -> vtkPolyData:
    """A triangle surface that owns copies of ``vertices`` (and ``normals``, made the active normals)."""
    mesh = vtkPolyData()
    points = vtkPoints()
    points.SetData(numpy_to_vtk(np.ascontiguousarray(vertices), deep=True))
    mesh.SetPoints(points)
    mesh.SetPolys(_cell_array(faces))
    if normals is not None:
        _set_point_array(mesh, "Normals", normals)
        mesh.GetPointData().SetActiveNormals("Normals")
    return mesh


def _set_point_array(mesh: vtkPolyData, name: str, values: np.ndarray) -> None:
    array = numpy_to_vtk(np.ascontiguousarray(values), deep=True)
    array.SetName(name)
    mesh.GetPointData().AddArray(array)


def points_of(mesh: vtkPolyData) -> np.ndarray:
    """The points of ``mesh`` as an (n, 3) array sharing VTK's memory (write, then ``Modified()``)."""
    return vtk_to_numpy(mesh.GetPoints().GetData())


def _smooth(mesh: vtkPolyData) -> vtkPolyData:
    """``mesh`` with smooth point normals (the shading of the see-through skin and ghosts)."""
    from vtkmodules.vtkFiltersCore import vtkPolyDataNormals

    normals = vtkPolyDataNormals()
    normals.SetInputData(mesh)
    normals.ComputeCellNormalsOff()
    normals.SplittingOff()
    normals.Update()
    return normals.GetOutput()


def _surface_actor(actor_type: type, mesh: vtkPolyData, colour: str, *, opacity: float = 1.0, lighting: bool = True,
                   interpolation: str = "gouraud", specular: float = 0.0, specular_power: float = 100.0) -> vtkActor:
    """An ``actor_type`` (a ``vtkActor`` class) drawing ``mesh`` in one colour."""
    mapper = vtkPolyDataMapper()
    mapper.SetInputData(mesh)
    mapper.ScalarVisibilityOff()
    mapper.InterpolateScalarsBeforeMappingOn()
    actor = actor_type()
    actor.SetMapper(mapper)
    prop = actor.GetProperty()
    prop.SetColor(_rgb(colour))
    prop.SetOpacity(opacity)
    prop.SetAmbient(0.0)
    prop.SetDiffuse(1.0)
    prop.SetSpecular(specular)
    prop.SetSpecularPower(specular_power)
    prop.SetLighting(lighting)
    {"flat": prop.SetInterpolationToFlat, "gouraud": prop.SetInterpolationToGouraud,
     "phong": prop.SetInterpolationToPhong}[interpolation]()
    return actor


def _silhouette_actor(actor_type: type, mesh: vtkPolyData, camera: Any, colour: str, line_width: float) -> vtkActor:
    """The outline of ``mesh`` as ``camera`` sees it, updated as the camera moves."""
    from vtkmodules.vtkFiltersHybrid import vtkPolyDataSilhouette

    outline = vtkPolyDataSilhouette()
    outline.SetInputData(mesh)
    outline.SetCamera(camera)
    outline.SetEnableFeatureAngle(False)
    mapper = vtkPolyDataMapper()
    mapper.SetInputConnection(outline.GetOutputPort())
    mapper.InterpolateScalarsBeforeMappingOn()
    actor = actor_type()
    actor.SetMapper(mapper)
    actor.GetProperty().SetColor(_rgb(colour))
    actor.GetProperty().SetLineWidth(line_width)
    actor.GetProperty().SetInterpolationToFlat()
    return actor


def _pyvista_actor_type() -> type:
    from pyvista import Actor

    return Actor


def _copy_colouring(source, target) -> None:
    """Give ``target`` mapper the scalar-colouring settings of ``source`` (per-vertex colours or none)."""
    target.SetScalarVisibility(source.GetScalarVisibility())
    target.SetScalarMode(source.GetScalarMode())
    target.SetColorMode(source.GetColorMode())
    target.SelectColorArray(source.GetArrayName())
    target.SetInterpolateScalarsBeforeMapping(source.GetInterpolateScalarsBeforeMapping())


def read_pixels(render_window: Any, *, transparent: bool = False, scale: int = 1,
                size: tuple[int, int] | None = None) -> np.ndarray:
    """The picture in ``render_window`` as (height, width, 3 or 4) uint8 rows top-down (``scale`` > 1:
    rendered again in scale x scale tiles), resized to ``size`` (w, h) by area averaging if given."""
    grab = vtkWindowToImageFilter()
    grab.SetInput(render_window)
    grab.SetScale(scale)
    grab.FixBoundaryOn()
    grab.ShouldRerenderOff()
    if transparent:
        grab.SetInputBufferTypeToRGBA()
    else:
        grab.SetInputBufferTypeToRGB()
    grab.ReadFrontBufferOn()
    grab.Update()
    if scale > 1:  # the tiled capture leaves its last tile in the window
        render_window.Render()
    image = grab.GetOutput()
    width, height, _ = image.GetDimensions()
    bottom_up = vtk_to_numpy(image.GetPointData().GetScalars()).reshape(height, width, -1)
    if size is None or tuple(size) == (width, height):
        return np.ascontiguousarray(bottom_up[::-1])
    from PIL import Image

    # Pillow reads VTK's bottom-up rows in place (orientation -1): no flipped copy of the big picture.
    mode = "RGBA" if bottom_up.shape[2] == 4 else "RGB"
    picture = Image.frombuffer(mode, (width, height), bottom_up, "raw", mode, 0, -1)
    return np.asarray(picture.resize(tuple(size), Image.Resampling.BOX))


class OffscreenStage:
    """An off-screen VTK render window with one renderer and PyVista's default lights (the light kit).

    Offers what :class:`SceneRenderer` uses of a PyVista plotter, without importing PyVista.
    """

    off_screen = True
    actor_type = vtkActor

    def __init__(self, size: tuple[int, int]):
        prefer_headless_vtk()
        self.renderer = vtkRenderer()
        self.renderer.AutomaticLightCreationOff()
        vtkLightKit().AddLightsToRenderer(self.renderer)
        lights = self.renderer.GetLights()
        for index in range(lights.GetNumberOfItems()):
            # PyVista keeps light colours as 8-bit colours: the same here, so a picture and the
            # viewer's window (a PyVista plotter) are lit alike to the last bit.
            light = lights.GetItemAsObject(index)
            rgb = tuple(round(c * 255.0) / 255.0 for c in light.GetDiffuseColor())
            light.SetDiffuseColor(rgb)
            light.SetSpecularColor(rgb)
        self.renderer.LightFollowCameraOn()
        self.render_window = vtkRenderWindow()
        self.render_window.SetMultiSamples(0)  # supersampled instead: see SceneRenderer.screenshot
        self.render_window.SetOffScreenRendering(1)
        self.render_window.AddRenderer(self.renderer)
        self.render_window.SetSize(*size)

    def add_actor(self, actor: vtkActor, *, name: str = "", reset_camera: bool = False, render: bool = False,
                  pickable: bool = True) -> None:
        """Add ``actor`` (PyVista's signature; the name, camera and render arguments are not needed here)."""
        actor.SetPickable(pickable)
        self.renderer.AddActor(actor)

    def remove_actor(self, actor: vtkActor, *, render: bool = False) -> None:
        self.renderer.RemoveActor(actor)

    def close(self) -> None:
        """Free the window's graphics resources."""
        if self.render_window is not None:
            self.render_window.Finalize()
            self.render_window = None


class SceneRenderer:
    """Applies a scene model to a stage (an :class:`OffscreenStage` or a PyVista plotter); holds it,
    never subclasses it."""

    def __init__(self, plotter: Any, model: SceneModel, settings: RenderSettings = RenderSettings()):
        self.plotter = plotter
        # A PyVista plotter (the viewer's window, a notebook's view) gets PyVista's actors: vtkActors
        # that notebook users can also handle the PyVista way (``actor.prop``, ``actor.visibility``).
        self._actor_type = getattr(plotter, "actor_type", None) or _pyvista_actor_type()
        self.model = model
        self.settings = settings
        self.view_name: str | None = None
        self._meshes: dict[str, vtkPolyData] = {}
        self._actors: dict[str, vtkActor] = {}
        # A window shows every change at once; an off-screen plotter renders only for a screenshot.
        self._live = not getattr(plotter, "off_screen", False)
        self.moving = False
        self._coarse: dict[str, np.ndarray] = {}
        # Per structure: coarse mesh, its mapper, the full mesh's MTime it last copied, the full mapper.
        self._lod: dict[str, tuple[vtkPolyData, vtkPolyDataMapper, int, Any]] = {}
        self._silhouettes: dict[str, Any] = {}
        self._still_order: list[Any] | None = None  # the props' drawing order before the camera moved
        self._ghosts: dict[str, vtkActor] = {}
        self._skin: vtkActor | None = None
        self._outline: tuple[str, Any] | None = None  # (structure id, silhouette actor) of the highlight
        plotter.renderer.SetBackground(_rgb(settings.background))
        plotter.renderer.SetUseDepthPeeling(False)
        plotter.renderer.SetMaximumNumberOfPeels(4)
        # Stop peeling when under 10% of pixels change: halves the cost on a CPU renderer.
        plotter.renderer.SetOcclusionRatio(0.1)
        for structure in model.atlas.structures:
            self._add(structure.id)
        model.atlas.cache.save()  # the normals, when this atlas had none cached yet
        self._connect()
        self._sync_ghosts(model.atrophy)
        self._sync_skin()
        self._apply_outline()  # the model may be highlighted before this renderer was made
        self._update_depth_peeling()
        self.set_view(DEFAULT_VIEW)

    # -- set-up --------------------------------------------------------------------------------
    def _add(self, sid: str) -> None:
        data = self.model.atlas.meshes[sid]
        vertices = self.model.vertices(sid)
        # The mesh owns copies of the points and normals: geometry changes write into them.
        mesh = _surface(vertices, data.faces, self._normals(sid, vertices))
        if self.settings.lighting == "flat":
            actor = _surface_actor(self._actor_type, mesh, self.model.colour(sid), lighting=False, interpolation="flat",
                                   specular_power=20.0)
        else:
            bone = self.model.atlas.structure(sid).kind == "bone"
            actor = _surface_actor(self._actor_type, mesh, self.model.colour(sid), specular=0.1 if bone else self.settings.specular,
                                   specular_power=20.0)
        self.plotter.add_actor(actor, name=sid, reset_camera=False, render=False)
        self._meshes[sid] = mesh
        self._actors[sid] = actor
        if self.settings.silhouettes:
            self._silhouettes[sid] = _silhouette_actor(self._actor_type, mesh, self.plotter.renderer.GetActiveCamera(),
                                                       SILHOUETTE_COLOUR, 1.0)
            self.plotter.add_actor(self._silhouettes[sid], name=f"{sid} (silhouette)", reset_camera=False,
                                   render=False, pickable=False)
        self._apply_visibility(sid)
        self._apply_opacity(sid)
        # The model may already be changed (atrophy, fat, highlight) when this renderer is made.
        self._apply_colour(sid)

    def _connect(self) -> None:
        events = self.model.events
        events.visibility.connect(self._on_visibility)
        events.opacity.connect(self._on_opacity)
        events.colour.connect(self._on_colour)
        events.geometry.connect(self._on_geometry)
        events.highlight.connect(self._on_highlight)
        events.atrophy.connect(self._on_atrophy)

    def close(self) -> None:
        """Stop listening to the model (the plotter belongs to the caller)."""
        events = self.model.events
        for signal, slot in ((events.visibility, self._on_visibility), (events.opacity, self._on_opacity),
                             (events.colour, self._on_colour), (events.geometry, self._on_geometry),
                             (events.highlight, self._on_highlight)):
            signal.disconnect(slot)
        events.atrophy.disconnect(self._on_atrophy)

    # -- event handlers ------------------------------------------------------------------------
    def _on_visibility(self, ids: tuple[str, ...]) -> None:
        for sid in ids:
            self._apply_visibility(sid)
        self._sync_skin()
        self._render()

    def _sync_skin(self) -> None:
        """The generated skin of the lumbar trunk (:func:`viewer.body.skin_surface`), translucent, when asked."""
        if self.model.skin and self._skin is None:
            from viewer.body import skin_surface

            vertices, faces = skin_surface(self.model.atlas)
            self._skin = _surface_actor(self._actor_type, _smooth(_surface(vertices, faces)), SKIN_COLOUR,
                                        opacity=SKIN_OPACITY, interpolation="phong")
            self.plotter.add_actor(self._skin, name="skin (generated)", reset_camera=False, render=False,
                                   pickable=False)
            self._update_depth_peeling()
        elif not self.model.skin and self._skin is not None:
            self.plotter.remove_actor(self._skin, render=False)
            self._skin = None
            self._update_depth_peeling()

    def _on_atrophy(self, params: Any) -> None:
        self._sync_ghosts(params)
        self._render()

    def _sync_ghosts(self, params: Any) -> None:
        """A translucent copy of the healthy mesh around each wasting structure when the atrophy asks for it."""
        wanted: set[str] = set()
        atlas = self.model.atlas
        for entry in (params if isinstance(params, tuple) else (params,) if params is not None else ()):
            if getattr(entry, "ghost", False):
                wanted |= {s.id for s in atlas.structures_of_muscle(entry.muscle)
                           if self.model.vertices(s.id) is not atlas.meshes[s.id].vertices}
        for sid in set(self._ghosts) - wanted:
            self.plotter.remove_actor(self._ghosts.pop(sid), render=False)
        for sid in wanted - set(self._ghosts):
            data = self.model.atlas.meshes[sid]
            # A hair outside the healthy surface, so it does not flicker where the muscle kept its shape.
            normals = atlas.normals(sid)
            ghost = _smooth(_surface(data.vertices + GHOST_OFFSET * normals, data.faces))
            self._ghosts[sid] = _surface_actor(self._actor_type, ghost, GHOST_COLOUR, opacity=GHOST_OPACITY,
                                               interpolation="phong")
            self.plotter.add_actor(self._ghosts[sid], name=f"{sid} (healthy ghost)", reset_camera=False,
                                   render=False, pickable=False)
        for sid, actor in self._ghosts.items():
            actor.SetVisibility(self.model.is_visible(sid))
        self._update_depth_peeling()

    def _on_opacity(self, ids: tuple[str, ...]) -> None:
        for sid in ids:
            self._apply_opacity(sid)
        self._update_depth_peeling()
        self._render()

    def _on_colour(self, ids: tuple[str, ...]) -> None:
        for sid in ids:
            self._apply_colour(sid)
        self._render()

    def _on_geometry(self, ids: tuple[str, ...]) -> None:
        for sid in ids:
            vertices = self.model.vertices(sid)
            mesh = self._meshes[sid]
            points_of(mesh)[:] = vertices
            vtk_to_numpy(mesh.GetPointData().GetNormals())[:] = self._normals(sid, vertices)
            mesh.GetPoints().Modified()
            mesh.GetPointData().GetNormals().Modified()
            mesh.Modified()
        self._render()

    def _normals(self, sid: str, vertices: np.ndarray) -> np.ndarray:
        atlas = self.model.atlas
        if vertices is atlas.meshes[sid].vertices:  # healthy: the atlas's own, cached between runs
            return atlas.normals(sid)
        return vertex_normals(vertices, atlas.meshes[sid].faces)

    def _on_highlight(self, _sid: str | None) -> None:
        for sid in self._actors:
            self._apply_colour(sid)
        self._apply_outline()
        self._render()

    def _apply_outline(self) -> None:
        """A blue outline around the highlighted structure (its silhouette as the camera sees it)."""
        sid = self.model.highlight
        if self._outline is not None and self._outline[0] != sid:
            self.plotter.remove_actor(self._outline[1], render=False)
            self._outline = None
        if sid is not None and self._outline is None:
            actor = _silhouette_actor(self._actor_type, self._meshes[sid], self.plotter.renderer.GetActiveCamera(),
                                      self.settings.highlight_colour, 3.0)
            # Pull the outline toward the camera so the surface it outlines does not hide half of it.
            actor.GetMapper().SetResolveCoincidentTopologyToPolygonOffset()
            actor.GetMapper().SetRelativeCoincidentTopologyLineOffsetParameters(-2.0, -200.0)
            self.plotter.add_actor(actor, name="highlight outline", reset_camera=False, render=False, pickable=False)
            self._outline = (sid, actor)
        if self._outline is not None:
            self._outline[1].SetVisibility(self.model.is_visible(sid))

    def _apply_visibility(self, sid: str) -> None:
        visible = self.model.is_visible(sid)
        self._actors[sid].SetVisibility(visible)
        if sid in self._ghosts:
            self._ghosts[sid].SetVisibility(visible)
        if sid in self._silhouettes:
            self._silhouettes[sid].SetVisibility(visible)
        if self._outline is not None and self._outline[0] == sid:
            self._outline[1].SetVisibility(visible)

    def _apply_opacity(self, sid: str) -> None:
        self._actors[sid].GetProperty().SetOpacity(self.model.opacity(sid))

    def _apply_colour(self, sid: str) -> None:
        highlighted = sid == self.model.highlight
        colour = self._highlighted(np.array(parse_colour("colour", self.model.colour(sid))), highlighted)
        actor = self._actors[sid]
        actor.GetProperty().SetColor(tuple(float(c) for c in np.round(colour * 255.0) / 255.0))  # 8-bit, as drawn
        if self.settings.lighting != "flat":
            actor.GetProperty().SetAmbient(0.1 if highlighted else 0.0)
        self._apply_vertex_colours(sid)

    def _apply_vertex_colours(self, sid: str) -> None:
        colours = self.model.vertex_colours(sid)
        mapper = self._full_mapper(sid) or self._actors[sid].mapper  # the level of detail copies it
        if colours is None:
            mapper.ScalarVisibilityOff()
            return
        # No tint over per-vertex colours: they carry meaning (fat yellow where the muscle wastes),
        # so a highlighted wasted muscle is marked by its outline and keeps its true colours.
        _set_point_array(self._meshes[sid], _VERTEX_COLOURS, np.round(colours * 255.0).astype(np.uint8))
        mapper.SetScalarModeToUsePointFieldData()
        mapper.SelectColorArray(_VERTEX_COLOURS)
        mapper.SetColorModeToDirectScalars()
        mapper.ScalarVisibilityOn()

    def _highlighted(self, colour: np.ndarray, highlighted: bool) -> np.ndarray:
        # A blue tint, far in hue from fat yellow and bone beige; the outline marks it as well.
        if not highlighted:
            return colour
        return 0.7 * colour + 0.3 * np.array(parse_colour("highlight", self.settings.highlight_colour))

    def _update_depth_peeling(self) -> None:
        # Depth peeling costs several passes on a CPU renderer: only when something is translucent.
        translucent = (any(self.model.opacity(sid) < 1.0 for sid in self._actors) or bool(self._ghosts)
                       or getattr(self, "_skin", None) is not None)
        self.plotter.renderer.SetUseDepthPeeling(translucent and not self.moving)

    def _render(self) -> None:
        if self._live:
            self.plotter.render()

    # -- level of detail while moving ----------------------------------------------------------
    def prepare_lod(self) -> None:
        """Compute the coarse face lists of every structure (numpy only; safe in a worker thread)."""
        for sid in list(self._meshes):
            if sid not in self._coarse:
                self._coarse[sid] = self._coarse_faces(sid)
            self.model.atlas.is_closed(sid)
        self.model.atlas.cache.save()

    def _coarse_faces(self, sid: str) -> np.ndarray:
        """The level of detail of a structure's healthy mesh (cached between runs with the atlas)."""
        atlas = self.model.atlas
        data = atlas.meshes[sid]
        return atlas.cache.derived(data.digest, "lod",
                                   lambda: coarse_faces(data.vertices, data.faces, atlas.normals(sid)))

    def set_moving(self, moving: bool) -> None:
        """Draw large structures coarse while the camera moves; back to full detail (and render) on stop."""
        moving = bool(moving)
        if moving == self.moving:
            return
        self.moving = moving
        for sid, actor in self._actors.items():
            mapper = self._lod_mapper(sid) if moving else self._full_mapper(sid)
            if mapper is not None and actor.GetMapper() is not mapper:
                actor.SetMapper(mapper)
            # The inside of a closed opaque surface is never seen from outside: skipping its back faces
            # saves about a third of a frame. Only while moving: at a few silhouette pixels the full
            # picture would not be exactly the same.
            culled = moving and actor.GetVisibility() and self.model.opacity(sid) >= 1.0 \
                and self.model.atlas.is_closed(sid)
            actor.GetProperty().SetBackfaceCulling(bool(culled))
        self._draw_front_to_back(moving)
        # Depth peeling (several passes) only while still: moving, translucent layers blend in one pass,
        # in plain alpha blending rather than VTK's order-independent pass, which costs extra
        # full-window passes (a fifth of a translucent frame) and is no closer to the still picture.
        self.plotter.renderer.SetUseOIT(not moving)
        self._update_depth_peeling()
        if not moving:
            self._render()

    def _draw_front_to_back(self, moving: bool) -> None:
        """While moving, draw the structures nearest the camera first; on stop, the order they were added in.

        A CPU renderer tests depth before shading, so what lies behind a surface already drawn costs
        little: drawing the superficial muscles first saves about a tenth of a moving frame on llvmpipe.
        Where two surfaces touch at exactly the same depth the order decides the pixel, so a still
        picture is always drawn in the original order.
        """
        renderer = self.plotter.renderer
        props = renderer.GetViewProps()
        current = [props.GetItemAsObject(i) for i in range(props.GetNumberOfItems())]
        if moving:
            self._still_order = current
            camera = renderer.GetActiveCamera()
            eye, direction = np.array(camera.GetPosition()), np.array(camera.GetDirectionOfProjection())
            # Opaque structures only, by the depth of their nearest point (every 16th vertex is plenty);
            # translucent ones blend, and keep the order they blend in.
            nearest = {id(actor): float(((points_of(self._meshes[sid])[::16] - eye) @ direction).min())
                       for sid, actor in self._actors.items()
                       if actor.GetProperty().GetOpacity() >= 1.0 and self._meshes[sid].GetNumberOfPoints()}
            order = sorted((p for p in current if id(p) in nearest), key=lambda p: nearest[id(p)])
            order += [p for p in current if id(p) not in nearest]
        else:
            still, self._still_order = self._still_order, None
            if still is None:
                return
            present = set(map(id, current))  # a prop added or removed meanwhile stays added or removed
            order = [p for p in still if id(p) in present]
            kept = set(map(id, still))
            order += [p for p in current if id(p) not in kept]
        props.RemoveAllItems()  # the same props, re-listed: nothing is released or uploaded again
        for prop in order:
            props.AddItem(prop)

    def _full_mapper(self, sid: str):
        return self._lod[sid][3] if sid in self._lod else None

    def _lod_mapper(self, sid: str) -> vtkPolyDataMapper | None:
        if sid not in self._coarse:
            self._coarse[sid] = self._coarse_faces(sid)
        faces = self._coarse[sid]
        if len(faces) == len(self.model.atlas.meshes[sid].faces):
            return None  # small enough to draw whole
        mesh, actor = self._meshes[sid], self._actors[sid]
        if sid not in self._lod:
            coarse = vtkPolyData()
            coarse.SetPolys(_cell_array(faces))
            self._lod[sid] = (coarse, vtkPolyDataMapper(), -1, actor.GetMapper())
            self._lod[sid][1].SetInputData(coarse)
        coarse, mapper, synced, full = self._lod[sid]
        if synced != mesh.GetMTime():  # the same points, normals and colours as the full mesh
            coarse.SetPoints(mesh.GetPoints())
            coarse.GetPointData().ShallowCopy(mesh.GetPointData())
            coarse.Modified()
            self._lod[sid] = (coarse, mapper, mesh.GetMTime(), full)
        _copy_colouring(full, mapper)
        return mapper

    # -- queries -------------------------------------------------------------------------------
    def actor(self, sid: str) -> vtkActor:
        return self._actors[sid]

    def polydata(self, sid: str) -> vtkPolyData:
        """The displayed mesh of a structure (shared with its actor; do not modify)."""
        return self._meshes[sid]

    def structure_of_actor(self, actor: Any) -> str | None:
        """Structure id of a picked actor, or None."""
        for sid, candidate in self._actors.items():
            if candidate is actor:
                return sid
        return None

    # -- camera --------------------------------------------------------------------------------
    def set_view(self, name: str) -> None:
        """Point the camera as the preset ``name`` says and frame the visible structures."""
        self._frame_view(name)
        self._render()

    def _frame_view(self, name: str) -> None:
        preset = view_preset(name)
        self.view_name = preset.name
        points = self._visible_points()
        centre = 0.5 * (points.min(axis=0) + points.max(axis=0))
        width, height = self.plotter.render_window.GetSize()
        distance = fit_distance(points, centre, preset, self.settings.view_angle, width / height)
        self._place_camera(Camera(tuple(centre + distance * np.asarray(preset.direction)), tuple(centre),
                                  preset.up, self.settings.view_angle))

    def _visible_points(self) -> np.ndarray:
        ids = self.model.visible_ids() or self.model.atlas.structure_ids
        chunks = [self.model.vertices(sid)[:: max(1, len(self.model.vertices(sid)) // 2000)] for sid in ids]
        return np.concatenate(chunks)

    @property
    def camera(self) -> Camera:
        cam = self.plotter.renderer.GetActiveCamera()
        return Camera(tuple(cam.GetPosition()), tuple(cam.GetFocalPoint()), tuple(cam.GetViewUp()),
                      float(cam.GetViewAngle()))

    def set_camera(self, camera: Camera) -> None:
        self._place_camera(camera)
        self.view_name = None
        self._render()

    def _place_camera(self, camera: Camera) -> None:
        cam = self.plotter.renderer.GetActiveCamera()
        cam.SetFocalPoint(*camera.focal_point)
        cam.SetPosition(*camera.position)
        cam.SetViewUp(*camera.up)
        cam.SetViewAngle(camera.view_angle)
        if hasattr(cam, "is_set"):
            cam.is_set = True  # a PyVista plotter would otherwise re-frame on its first show()
        self.plotter.renderer.ResetCameraClippingRange()

    def world_to_pixels(self, points: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
        """Project (n, 3) mm points to (n, 2) pixel positions (x right, y down) in a picture of ``size``.

        ``size`` defaults to the current window size; the camera is the current one.
        """
        width, height = size or tuple(self.plotter.render_window.GetSize())
        camera = self.plotter.renderer.GetActiveCamera()
        matrix = camera.GetCompositeProjectionTransformMatrix(width / height, -1.0, 1.0)
        m = np.array([[matrix.GetElement(i, j) for j in range(4)] for i in range(4)])
        homogeneous = np.column_stack([np.asarray(points, dtype=float), np.ones(len(points))]) @ m.T
        ndc = homogeneous[:, :2] / homogeneous[:, 3:4]
        return np.column_stack([(ndc[:, 0] + 1.0) * 0.5 * width, (1.0 - ndc[:, 1]) * 0.5 * height])

    # -- pixels --------------------------------------------------------------------------------
    def screenshot(self, size: tuple[int, int], *, transparent: bool = False) -> np.ndarray:
        """Render the scene to an (height, width, 3 or 4) uint8 array of exactly ``size`` (w, h).

        Anti-aliased by rendering ``settings.supersample`` times larger and averaging down; very large
        pictures are rendered in tiles by VTK instead.
        """
        width, height = size
        factor = max(1, int(self.settings.supersample))
        if max(width, height) * factor > MAX_SINGLE_RENDER:
            factor = 1
        big = (width * factor, height * factor)
        tiles = 1
        while max(big) / tiles > MAX_SINGLE_RENDER:
            tiles += 1
        window = (int(np.ceil(big[0] / tiles)), int(np.ceil(big[1] / tiles)))
        # Resize and frame without drawing: the one render is the picture's own.
        self.plotter.render_window.SetSize(*window)
        if self.view_name is not None:
            self._frame_view(self.view_name)
        self.plotter.renderer.ResetCameraClippingRange()
        if tiles == 1:  # a tiled picture is drawn tile by tile as it is read
            self.plotter.render_window.Render()
        return read_pixels(self.plotter.render_window, transparent=transparent, scale=tiles, size=(width, height))


def offscreen_plotter(size: tuple[int, int] = (1200, 900)) -> OffscreenStage:
    """A stage that renders without a display (EGL, or an off-screen X buffer when there is one)."""
    return OffscreenStage(size)


def render_image(model: SceneModel, size: tuple[int, int], *, view: str | None = DEFAULT_VIEW,
                 camera: Camera | None = None, transparent: bool = False,
                 settings: RenderSettings = RenderSettings()) -> np.ndarray:
    """Render ``model`` off-screen at ``size`` (w, h) from a preset ``view`` or an explicit ``camera``."""
    plotter = offscreen_plotter(size)
    renderer = SceneRenderer(plotter, model, replace(settings))
    try:
        if camera is not None:
            renderer.set_camera(camera)
        elif view is not None:
            renderer.set_view(view)
        return renderer.screenshot(size, transparent=transparent)
    finally:
        renderer.close()
        plotter.close()


def notebook_plotter(size: tuple[int, int] = (960, 720)) -> Any:
    """A PyVista plotter for a Jupyter notebook (shown with PyVista's trame backend).

    Off-screen: the kernel renders for the browser (server-side rendering) and may have no display.
    Without multisampling, which costs a CPU renderer about 4x per frame.
    """
    import pyvista as pv

    prefer_headless_vtk()
    theme = pv.themes.DocumentTheme()
    theme.multi_samples = 0
    return pv.Plotter(notebook=True, off_screen=True, window_size=list(size), theme=theme)
