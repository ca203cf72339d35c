"""Rendering figures: 3D panels with linked cameras, labels, legend, scale bar, cross-sections.

A :class:`FigureRenderer` holds one off-screen plotter and one scene model for a whole lesson; each
panel puts the model into the panel's state (visibility, opacity, atrophy) and takes a screenshot, so
nothing is reloaded between figures and the same lesson always produces the same pixels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from PIL import ImageDraw

from viewer.atlas import Atlas, printed_credit_lines
from viewer.atrophy import AtrophyParams, Wasting, apply_atrophy, wasting_entries
from viewer.errors import DorsumError
from viewer.figures import compose
from viewer.figures.compose import Box, FigureLayout, LegendEntry, Typography
from viewer.figures.labels import LabelLayout, draw_labels, label_targets, margin_width, place_visible_labels
from viewer.figures.lesson import FigureSpec, PanelSpec
from viewer.model import SceneModel
from viewer.render import Camera, RenderSettings, SceneRenderer, offscreen_plotter
from viewer.scene_options import SceneOptions, apply_scene_options
from viewer.views import fit_distance, view_preset

# Structure-index colours for the label pass: a 6x6x6 grid of dark-to-mid greys and hues, far from
# white so that the background never reads as a structure.
_CODE_LEVELS = np.arange(6) * 40 + 20


@dataclass(frozen=True)
class PanelPicture:
    """A rendered 3D panel with what the figure needs around it."""

    pixels: np.ndarray
    camera: Camera
    labels: LabelLayout | None
    picture: Box


def reset_model(model: SceneModel) -> None:
    """Everything visible, opaque, in its atlas colour and shape (the state before a panel's settings)."""
    atlas = model.atlas
    with model.batch():
        model.show_all()
        model.set_skin(False)
        for layer in atlas.layer_names:
            if model.layer_opacity(layer) != 1.0:
                model.set_opacity(layer, 1.0)
        for structure in atlas.structures:
            if model.structure_opacity(structure.id) != 1.0:
                model.set_opacity(structure.id, 1.0)
            if model.colour(structure.id) != structure.colour:
                model.set_colour(structure.id, structure.colour)
            model.set_vertex_colours(structure.id, None)
            if model.vertices(structure.id) is not atlas.meshes[structure.id].vertices:
                model.set_vertices(structure.id, atlas.meshes[structure.id].vertices)
    if model.atrophy is not None:
        model.set_atrophy(None)


def apply_panel_atrophy(model: SceneModel, params: Wasting) -> None:
    """Deform the model as ``params`` say (one muscle, a scenario, or nothing), with :mod:`viewer.atrophy`."""
    if any(p.amount > 0 or p.fat > 0 for p in wasting_entries(params)):
        apply_atrophy(model, params)


def set_panel_state(model: SceneModel, scene: SceneOptions, atrophy: Wasting) -> None:
    """Put ``model`` into a panel's state: reset, then visibility/opacity, then atrophy."""
    reset_model(model)
    apply_scene_options(model, scene)
    apply_panel_atrophy(model, atrophy)


def displayed_points(model: SceneModel, ids: Sequence[str], step_target: int = 2000) -> np.ndarray:
    """A subsample of the displayed vertices of ``ids``, (n, 3) mm, for framing the camera."""
    chunks = []
    for sid in ids:
        vertices = model.vertices(sid)
        chunks.append(vertices[:: max(1, len(vertices) // step_target)])
    return np.concatenate(chunks)


def framing_camera(points: np.ndarray, view: str, size: tuple[int, int], view_angle: float) -> Camera:
    """A camera looking from preset ``view`` that fits ``points`` (mm) in a picture of ``size`` (w, h)."""
    preset = view_preset(view)
    centre = 0.5 * (points.min(axis=0) + points.max(axis=0))
    distance = fit_distance(points, centre, preset, view_angle, size[0] / size[1])
    position = centre + distance * np.asarray(preset.direction)
    return Camera(tuple(float(c) for c in position), tuple(float(c) for c in centre),
                  tuple(float(c) for c in preset.up), float(view_angle))


def mm_per_pixel(camera: Camera, picture_height: int) -> float:
    """Picture scale in the plane through the focal point (mm per pixel)."""
    distance = float(np.linalg.norm(np.subtract(camera.position, camera.focal_point)))
    return 2.0 * distance * np.tan(np.radians(camera.view_angle) / 2.0) / picture_height


def structure_code_colours(n: int) -> list[str]:
    """``n`` distinct colours for the structure-index pass."""
    if n > len(_CODE_LEVELS) ** 3:
        raise ValueError(f"too many structures ({n}) for the label pass")
    codes = []
    for i in range(n):
        r, g, b = (_CODE_LEVELS[(i // 6**k) % 6] for k in range(3))
        codes.append(f"#{r:02x}{g:02x}{b:02x}")
    return codes


def decode_index_image(pixels: np.ndarray, n: int) -> np.ndarray:
    """(h, w) structure indices from a flat-lit code render; -1 for background and blended edges."""
    rgb = pixels[..., :3].astype(np.int32)
    steps = np.rint((rgb - 20) / 40.0).astype(np.int32)
    exact = np.all(np.abs(rgb - (steps * 40 + 20)) <= 2, axis=-1) & np.all((steps >= 0) & (steps < 6), axis=-1)
    index = steps[..., 0] + 6 * steps[..., 1] + 36 * steps[..., 2]
    return np.where(exact & (index < n), index, -1)


class StructureIndexRenderer:
    """Which structure the camera sees at each pixel: the depth-buffer test behind every label anchor.

    Renders a copy of a model's state flat-lit, one code colour per structure, with its own small
    off-screen plotter; structures less than half opaque count as see-through, so the labels go to
    the ones behind them, which the viewer sees through them.
    """

    def __init__(self, atlas: Atlas):
        self.atlas = atlas
        self._codes = structure_code_colours(len(atlas.structures))
        self._model: SceneModel | None = None
        self._plotter = None
        self._renderer: SceneRenderer | None = None

    def index_image(self, model: SceneModel, camera: Camera, size: tuple[int, int]) -> np.ndarray:
        """(h, w) index into ``atlas.structures`` of the structure seen at each pixel of a ``size`` (w, h)
        picture taken by ``camera``, -1 for none."""
        if self._model is None:
            self._model = SceneModel(self.atlas)
            self._plotter = offscreen_plotter((64, 64))
            self._renderer = SceneRenderer(self._plotter, self._model, RenderSettings(lighting="flat", supersample=1))
        code = self._model
        shown = [sid for sid in model.visible_ids() if model.opacity(sid) >= 0.5]
        with code.batch():
            code.show_only(shown or model.visible_ids())
            for sid, colour in zip(self.atlas.structure_ids, self._codes):
                if code.colour(sid) != colour:
                    code.set_colour(sid, colour)
                if model.vertices(sid) is not code.vertices(sid):
                    code.set_vertices(sid, model.vertices(sid))
        self._renderer.set_camera(camera)
        return decode_index_image(self._renderer.screenshot(size), len(self.atlas.structures))

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._plotter.close()
            self._renderer = None


class FigureRenderer:
    """Renders lesson figures with one plotter and model (plus a small flat-lit one for label anchors)."""

    def __init__(self, atlas: Atlas, *, lighting: str = "studio", transparent: bool = False,
                 settings: RenderSettings = RenderSettings(), model: SceneModel | None = None):
        self.atlas = atlas
        self.transparent = transparent
        self.settings = replace(settings, lighting=lighting)
        self.model = model if model is not None else SceneModel(atlas)
        self._plotter = offscreen_plotter((64, 64))
        self._renderer = SceneRenderer(self._plotter, self.model, self.settings)
        self.index = StructureIndexRenderer(atlas)
        #: What the last rendered figure could not show as asked (e.g. a label on a hidden muscle).
        self.notes: list[str] = []
        #: Label text per structure id instead of its name (a quiz handout's numbered pointers).
        self.label_overrides: dict[str, str] = {}

    def close(self) -> None:
        self._renderer.close()
        self._plotter.close()
        self.index.close()

    def __enter__(self) -> FigureRenderer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- figures -------------------------------------------------------------------------------
    def render_figure(self, figure: FigureSpec) -> np.ndarray:
        """Pixels (h, w, 3 or 4) of ``figure``, exactly ``figure.size``; see :attr:`notes` afterwards."""
        self.notes = []
        legend = self.legend_entries(figure) if figure.legend else ()
        credit = " · ".join(printed_credit_lines(self.atlas)) if figure.credit else ""
        layout = compose.figure_layout(figure.size, len(figure.panels), columns=figure.columns, title=figure.title,
                                       caption=figure.caption, panel_captions=panel_captions(figure),
                                       legend=legend, credit=credit)
        canvas = compose.blank_canvas(figure.size, self.transparent)
        label_margin = self.label_margin(figure, layout)
        cameras = self.linked_cameras(figure, layout, label_margin)
        sections = self.section_drawings(figure, layout)
        for index, (panel, box) in enumerate(zip(figure.panels, layout.panels)):
            if panel.kind == "section":
                from viewer.figures.section import draw_section

                drawing, scale = sections[index]
                # Slices share one scale, so one scale bar (under the last) serves them all.
                bar = figure.scale_bar and index == max(sections)
                compose.paste_panel(canvas, draw_section(drawing, box.size, typography=layout.typography,
                                                         transparent=self.transparent, scale_bar=bar,
                                                         scale=scale, scale_bar_room=figure.scale_bar), box)
                continue
            picture = Box(box.left + label_margin, box.top, box.width - 2 * label_margin, box.height)
            result = self.render_panel(panel, picture, cameras[index], layout.typography, label_margin)
            compose.paste_panel(canvas, result.pixels, picture)
            compose.frame_if_cut(canvas, result.pixels, picture)
            if result.labels is not None:
                draw_labels(ImageDraw.Draw(canvas), result.labels, compose.font(layout.typography.small))
                if result.labels.unplaced:
                    raise DorsumError(f"{figure.output}: no room for the labels {', '.join(result.labels.unplaced)}; "
                                     "make the figure taller or label fewer structures")
            if figure.scale_bar:
                compose.draw_scale_bar(canvas, box, mm_per_pixel(result.camera, picture.height), layout.typography)
        return compose.finish_figure(canvas, layout, title=figure.title, caption=figure.caption,
                                     panel_captions=panel_captions(figure))

    def label_margin(self, figure: FigureSpec, layout: FigureLayout) -> int:
        """Width of the label columns beside each 3D picture (the same for all panels, so cameras link)."""
        typeface = compose.font(layout.typography.small)
        texts: list[str] = []
        for panel in figure.panels:
            if panel.kind == "3d" and (panel.labels or panel.label_all):
                set_panel_state(self.model, panel.scene, None)
                texts += list(self.label_texts(panel))
        width = min(box.width for box in layout.panels)
        return margin_width(texts, typeface, width)

    def linked_cameras(self, figure: FigureSpec, layout: FigureLayout, margin: int) -> list[Camera | None]:
        """One camera per panel; 3D panels with the same view share one that frames all of them.

    A panel frames its visible structures, or only those its ``frame`` names (a close-up).
    """
        points_by_view: dict[str, list[np.ndarray]] = {}
        for panel in figure.panels:
            if panel.kind == "3d":
                set_panel_state(self.model, panel.scene, panel.atrophy)
                framed = ([sid for name in panel.frame for sid in self.model.resolve(name)] if panel.frame
                          else self.model.visible_ids())
                points_by_view.setdefault(panel.scene.view, []).append(displayed_points(self.model, framed))
        cameras: list[Camera | None] = []
        for panel, box in zip(figure.panels, layout.panels):
            if panel.kind != "3d":
                cameras.append(None)
                continue
            size = (box.width - 2 * margin, box.height)
            points = np.concatenate(points_by_view[panel.scene.view])
            cameras.append(framing_camera(points, panel.scene.view, size, self.settings.view_angle))
        return cameras

    # -- 3D panels -----------------------------------------------------------------------------
    def render_panel(self, panel: PanelSpec, picture: Box, camera: Camera, typography: Typography,
                     label_margin: int = 0) -> PanelPicture:
        set_panel_state(self.model, panel.scene, panel.atrophy)
        self._renderer.set_camera(camera)
        pixels = self._renderer.screenshot(picture.size, transparent=self.transparent)
        labels = None
        if panel.labels or panel.label_all:
            labels = self.place_labels(panel, picture, camera, typography, label_margin)
        return PanelPicture(pixels, camera, labels, picture)

    def label_texts(self, panel: PanelSpec) -> dict[str, tuple[str, ...]]:
        """Label text -> structure ids it names, for the labels a panel asks for (visible ones only)."""
        if not panel.label_all:
            for name in panel.labels:  # asked for, but hidden: say so rather than drop it (docs/lessons.md)
                if not any(self.model.is_visible(sid) for sid in self.model.resolve(name)):
                    self.notes.append(f"no label for {name}: it is hidden in this figure")
        return label_targets(self.model, panel.labels, panel.label_all, self.label_overrides)

    def place_labels(self, panel: PanelSpec, picture: Box, camera: Camera, typography: Typography,
                     margin: int) -> LabelLayout:
        index_image = self.index.index_image(self.model, camera, picture.size)
        layout, hidden = place_visible_labels(index_image, self.atlas.structure_ids, self.label_texts(panel),
                                              picture, picture, compose.font(typography.small), margin)
        if hidden:
            self.notes.append(f"no label for {', '.join(hidden)}: too little of it is visible in this view")
        return layout

    def structure_index_image(self, camera: Camera, size: tuple[int, int]) -> np.ndarray:
        """(h, w) index into ``atlas.structures`` of the structure seen at each pixel, -1 for none."""
        return self.index.index_image(self.model, camera, size)

    # -- legend and sections -------------------------------------------------------------------
    def legend_entries(self, figure: FigureSpec) -> tuple[LegendEntry, ...]:
        """The layers shown in any 3D panel of ``figure``, outermost first, in their displayed colours."""
        shown: set[str] = set()
        for panel in figure.panels:
            set_panel_state(self.model, panel.scene, None)
            shown.update(self.atlas.structure(sid).layer for sid in self.model.visible_ids())
        return layer_legend(self.atlas, shown)

    def render_current(self, size: tuple[int, int], *, view: str | None, camera: Camera | None = None,
                       title: str = "", caption: str = "", legend: bool = False, labels: tuple[str, ...] = (),
                       label_all: bool = False, scale_bar: bool = False) -> np.ndarray:
        """The model as it is now (not reset), annotated like a one-panel lesson figure.

        ``camera`` wins over ``view``; with a view the camera frames the visible structures in the
        space the labels leave.
        """
        self.notes = []
        panel = PanelSpec(labels=labels, label_all=label_all)
        entries = layer_legend(self.atlas, {self.atlas.structure(s).layer for s in self.model.visible_ids()})
        layout = compose.figure_layout(size, 1, title=title, caption=caption, legend=entries if legend else ())
        box = layout.panels[0]
        typeface = compose.font(layout.typography.small)
        margin = margin_width(list(self.label_texts(panel)), typeface, box.width) if labels or label_all else 0
        picture = Box(box.left + margin, box.top, box.width - 2 * margin, box.height)
        if camera is None:
            camera = framing_camera(displayed_points(self.model, self.model.visible_ids()), view or "posterior",
                                    picture.size, self.settings.view_angle)
        canvas = compose.blank_canvas(size, self.transparent)
        self._renderer.set_camera(camera)
        pixels = self._renderer.screenshot(picture.size, transparent=self.transparent)
        compose.paste_panel(canvas, pixels, picture)
        compose.frame_if_cut(canvas, pixels, picture)
        if labels or label_all:
            placed = self.place_labels(panel, picture, camera, layout.typography, margin)
            draw_labels(ImageDraw.Draw(canvas), placed, typeface)
            if placed.unplaced:
                self.notes.append(f"no room for the labels {', '.join(placed.unplaced)}")
        if scale_bar:
            compose.draw_scale_bar(canvas, box, mm_per_pixel(camera, picture.height), layout.typography)
        return compose.finish_figure(canvas, layout, title=title, caption=caption)

    def section_drawings(self, figure: FigureSpec, layout: FigureLayout) -> dict[int, tuple[object, float]]:
        """The slice of each section panel, and one scale (pixels per mm) shared by all of them."""
        from viewer.figures.section import fit_scale, section_drawing

        drawings = {}
        for index, panel in enumerate(figure.panels):
            if panel.kind == "section":
                set_panel_state(self.model, panel.scene, panel.atrophy)
                muscles = None
                if panel.labels and not panel.label_all:
                    muscles = tuple(dict.fromkeys(self.atlas.structure(sid).muscle for name in panel.labels
                                                  for sid in self.model.resolve(name)))
                drawings[index] = section_drawing(self.model, panel.level, muscles, style=panel.style,
                                                  heading=panel.caption)
        if not drawings:
            return {}
        scale = min(fit_scale(drawing, layout.panels[i].size, typography=layout.typography,
                              scale_bar=figure.scale_bar) for i, drawing in drawings.items())
        return {i: (drawing, scale) for i, drawing in drawings.items()}


def panel_captions(figure: FigureSpec) -> list[str]:
    """Captions under the panels; a section panel carries its caption as a heading over its own slice."""
    return [p.caption if p.kind != "section" else "" for p in figure.panels]


def layer_legend(atlas: Atlas, layers: set[str]) -> tuple[LegendEntry, ...]:
    """Legend entries of ``layers``, outermost first, in the atlas' layer colours."""
    return tuple(LegendEntry(layer.name.capitalize(), layer.colour) for layer in atlas.layers if layer.name in layers)


def render_figures(atlas: Atlas, figures: Sequence[FigureSpec], *, lighting: str = "studio", transparent: bool = False,
                   on_figure: Callable[[FigureSpec, np.ndarray, list[str]], None]) -> None:
    """Render each figure in order and hand its pixels and notes to ``on_figure`` (e.g. to save it)."""
    with FigureRenderer(atlas, lighting=lighting, transparent=transparent) as renderer:
        for figure in figures:
            pixels = renderer.render_figure(figure)
            on_figure(figure, pixels, list(renderer.notes))
