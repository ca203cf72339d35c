"""The Python interface: a :class:`Scene` to show, waste, measure and picture the back in a few lines.

>>> import viewer as dorsum
>>> scene = dorsum.Scene()                                   # the built-in atlas
>>> scene.hide("superficial").atrophy(30, segments="L4-S1", side="right", fat=20)
>>> table = scene.measure(levels=["L4-L5", "L5-S1"])
>>> scene.screenshot("fig.png", view="posterolateral_right", size=(1920, 1080), labels=True)
>>> scene.section("L4-L5").save("slice.png")

The ``dorsum`` commands are thin wrappers over this module: ``dorsum shot`` builds a :class:`Scene`
from its options and calls :meth:`Scene.render` and :meth:`Picture.save`, ``dorsum measure`` calls
:meth:`Scene.measure`, ``dorsum export`` :meth:`Scene.export`, ``dorsum animate``
:meth:`Scene.animate`, ``dorsum view`` :meth:`Scene.open_window` and ``dorsum lesson``
:func:`render_lesson`. Errors are :class:`viewer.errors.DorsumError` with the same one-line messages
the commands print.

VTK is imported only when a picture is made; Qt only by :meth:`Scene.show` outside a notebook.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from viewer import __version__
from viewer.atlas import Atlas, credit_lines, load_atlas
from viewer.atlases import resolve_atlas
from viewer.atrophy import DEFAULT_MUSCLE, DEFAULT_SEGMENTS, AtrophyParams, apply_atrophy
from viewer.checks import check_dpi, check_option, check_range
from viewer.errors import DorsumError
from viewer.levels import LUMBAR_DISCS, disc_position
from viewer.model import SceneModel
from viewer.notebook import NOTEBOOK_SIZE
from viewer.scene_options import SceneOptions, apply_scene_options
from viewer.views import DEFAULT_VIEW, VIEWS

if TYPE_CHECKING:
    from viewer.figures.lesson import FigureSpec, Lesson
    from viewer.notebook import NotebookView
    from viewer.render import Camera
    from viewer.session import Session

#: Picture size (w, h) in pixels when none is given.
DEFAULT_SIZE = (1600, 1200)
SECTION_STYLES = ("diagram", "mri")
MAX_SIZE = (7680, 4320)


@dataclass(frozen=True, eq=False)
class Picture:
    """A rendered picture: pixels plus the parameters that made it (stored in the PNG on save).

    Attributes
    ----------
    pixels : (h, w, 3) or (h, w, 4) uint8 ndarray
    parameters : mapping of parameter name to plain value (JSON-serialisable)
    credits : the attribution lines of the atlas's data sources (stored in the PNG on save)
    """

    pixels: np.ndarray
    parameters: Mapping[str, Any] = field(default_factory=dict)
    credits: tuple[str, ...] = ()

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.pixels.shape[1]), int(self.pixels.shape[0])

    def save(self, path: str | Path, *, overwrite: bool = False, dpi: float | None = None) -> Path:
        """Write the picture as PNG, atomically, never replacing a file unless ``overwrite``."""
        from viewer.output import save_png

        return save_png(path, self.pixels, parameters=dict(self.parameters), overwrite=overwrite, dpi=dpi,
                        credits=self.credits)

    def _repr_png_(self) -> bytes:
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(self.pixels).save(buffer, format="PNG")
        return buffer.getvalue()


def open_atlas(atlas: str | Path | Atlas | None = None) -> Atlas:
    """An atlas by name (``"bodyparts3d"``, ``"builtin"``), folder, or the default when None."""
    if isinstance(atlas, Atlas):
        return atlas
    return load_atlas(resolve_atlas(atlas))


class Scene:
    """The back as shown: which structures, how opaque, how wasted, from where.

    Parameters
    ----------
    atlas : str, Path, Atlas or None
        An installed atlas's name, an atlas folder, a loaded :class:`~viewer.atlas.Atlas`, or None
        for the default atlas.

    Methods that change the scene return the scene, so calls chain:
    ``Scene().hide("superficial").opacity("intermediate", 0.3)``.
    """

    def __init__(self, atlas: str | Path | Atlas | None = None):
        self.model = SceneModel(open_atlas(atlas))
        self.view: str = DEFAULT_VIEW
        self.camera: Camera | None = None
        self.notes: list[str] = []
        self._options = SceneOptions()
        self._notebook: NotebookView | None = None

    @classmethod
    def of_model(cls, model: SceneModel, options: SceneOptions | None = None,
                 camera: Camera | None = None) -> Scene:
        """A scene around a model already put into the state ``options`` describe (the commands' path).

        With ``camera`` the pictures use it instead of the view preset (a saved state's framing).
        """
        scene = cls.__new__(cls)
        scene.model = model
        scene._options = options or SceneOptions()
        scene.view = scene._options.view or DEFAULT_VIEW
        scene.camera = camera
        scene.notes = []
        scene._notebook = None
        return scene

    # -- what is shown -------------------------------------------------------------------------
    @property
    def atlas(self) -> Atlas:
        return self.model.atlas

    def apply(self, options: SceneOptions) -> Scene:
        """Apply a whole set of scene options in one batch (unknown names raise)."""
        self.notes = list(apply_scene_options(self.model, options))
        if options.view is not None:
            self.set_view(options.view)
        preset = options.preset if options.preset is not None or options.atrophy is not None else self._options.preset
        self._options = SceneOptions(view=self.view, hide=(*self._options.hide, *options.hide),
                                     only=options.only or self._options.only,
                                     opacity={**self._options.opacity, **options.opacity},
                                     atrophy=self.model.atrophy, preset=preset,
                                     age=options.age if preset == options.preset else self._options.age)
        return self

    def preset(self, name: str, *, age: float | None = None) -> Scene:
        """Show a clinical or ageing scenario (``dorsum preset list``; or a scenario .toml file).

        The scenario's wasting replaces any atrophy, and it peels what covers the wasting muscles.
        Muscles this atlas cannot show stay healthy; :attr:`notes` says which.
        """
        return self.apply(SceneOptions(view=None, preset=name, age=age))  # type: ignore[arg-type]

    def hide(self, *names: str) -> Scene:
        """Hide layers, muscles, groups or structures, e.g. ``hide("superficial", "trapezius")``."""
        return self.apply(SceneOptions(view=None, hide=_names(names)))  # type: ignore[arg-type]

    def unhide(self, *names: str) -> Scene:
        """Show hidden layers, muscles, groups or structures again."""
        with self.model.batch():
            for name in _names(names):
                self.model.set_visible(name, True)
        return self

    def only(self, *names: str) -> Scene:
        """Show only the named layers, muscles, groups or structures."""
        return self.apply(SceneOptions(view=None, only=_names(names)))  # type: ignore[arg-type]

    def show_all(self) -> Scene:
        """Every structure visible again."""
        self.model.show_all()
        self._options = SceneOptions(view=self.view, opacity=self._options.opacity, atrophy=self._options.atrophy)
        return self

    def opacity(self, name: str, value: float) -> Scene:
        """Opacity from 0 (invisible) to 1 (opaque) of a layer, muscle, group or structure."""
        value = check_range(f"opacity of {name}", value, 0.0, 1.0)
        return self.apply(SceneOptions(view=None, opacity={name: value}))  # type: ignore[arg-type]

    def atrophy(self, amount: float, *, segments: str = DEFAULT_SEGMENTS, side: str = "both", fat: float = 0.0,
                muscle: str = DEFAULT_MUSCLE, retracted: bool = False) -> Scene:
        """Waste ``muscle`` by ``amount`` percent of its CSA at the disc levels of ``segments``.

        Parameters
        ----------
        amount : float
            Cross-sectional area lost, percent (0 to 80).
        segments : str
            Vertebral range that wastes, e.g. ``"L4-S1"``.
        side : {"left", "right", "both"}
        fat : float
            Fatty infiltration of the wasting muscle, percent (0 to 100).
        muscle : str
            The muscle to waste (default: multifidus).
        retracted : bool
            Sections show the retracted muscle alone instead of the healthy outline with the vacated
            space fat (see ``docs/atrophy.md``).
        """
        params = AtrophyParams(amount=amount, segments=segments, side=side, fat=fat, muscle=muscle,
                               retracted=retracted)
        apply_atrophy(self.model, params)
        self._options = SceneOptions(view=self.view, hide=self._options.hide, only=self._options.only,
                                     opacity=self._options.opacity, atrophy=params)
        return self

    def healthy(self) -> Scene:
        """Undo any atrophy."""
        apply_atrophy(self.model, None)
        self._options = SceneOptions(view=self.view, hide=self._options.hide, only=self._options.only,
                                     opacity=self._options.opacity, skin=self._options.skin)
        return self

    def set_view(self, view: str) -> Scene:
        """Camera preset: posterior, anterior, left, right, superior, inferior, posterolateral_left/right."""
        self.view = check_option("view", view, VIEWS)
        self.camera = None
        return self

    @property
    def options(self) -> SceneOptions:
        """What this scene shows, as plain data (what a session or lesson file holds)."""
        return self._options

    # -- numbers -------------------------------------------------------------------------------
    def measure(self, muscle: str = DEFAULT_MUSCLE, levels: str | Sequence[str] = LUMBAR_DISCS) -> dict[str, Any]:
        """CSA per level and side (cm²), baseline and change, and volume, of ``muscle`` as shown.

        The same dictionary ``dorsum measure --json`` prints.
        """
        from viewer.measure import measure_muscle

        text = levels if isinstance(levels, str) else ",".join(levels)
        return measure_muscle(self.model, muscle, text)

    # -- pictures ------------------------------------------------------------------------------
    def render(self, size: tuple[int, int] = DEFAULT_SIZE, *, view: str | None = None,
               labels: bool | Iterable[str] = False, legend: bool = False, title: str = "", caption: str = "",
               scale_bar: bool = False, transparent: bool = False) -> Picture:
        """The scene as a picture of exactly ``size`` (w, h) pixels.

        ``labels`` is True for every visible muscle, or the layers/muscles to label.
        """
        size = _check_size(size)
        if view is not None:
            self.set_view(view)
        label_names, label_all = _label_request(labels)
        annotated = bool(label_all or label_names or legend or title or caption or scale_bar)
        view_name = None if self.camera is not None else self.view
        notes: list[str] = []
        if annotated:
            pixels, notes = self._render_annotated(size, view_name, label_names, label_all, legend, title, caption,
                                                   scale_bar, transparent)
        else:
            from viewer.render import render_image

            pixels = render_image(self.model, size, view=view_name, camera=self.camera, transparent=transparent)
        parameters: dict[str, Any] = {"dorsum": __version__, "atlas": f"{self.atlas.name} {self.atlas.version}",
                                      **self._options.as_dict(), "view": view_name, "size": list(size),
                                      "transparent": bool(transparent)}
        if annotated:
            # As on the command line: [] labels every visible muscle, None labels nothing.
            recorded = [] if label_all else (list(label_names) or None)
            parameters.update(labels=recorded, legend=legend, title=title,
                              caption=caption, scale_bar=scale_bar)
        if self.camera is not None:
            parameters["camera"] = self.camera.as_dict()
        self.notes = notes
        return Picture(pixels, parameters, credit_lines(self.atlas))

    def _render_annotated(self, size, view, label_names, label_all, legend, title, caption, scale_bar, transparent):
        from viewer.figures.figure import FigureRenderer

        for name in label_names:
            self.model.resolve(name)  # unknown names fail before rendering
        with FigureRenderer(self.atlas, model=self.model, transparent=transparent) as renderer:
            pixels = renderer.render_current(size, view=view, camera=self.camera, title=title, caption=caption,
                                             legend=legend, labels=label_names, label_all=label_all,
                                             scale_bar=scale_bar)
            return pixels, list(renderer.notes)

    def screenshot(self, path: str | Path, size: tuple[int, int] = DEFAULT_SIZE, *, overwrite: bool = False,
                   dpi: float | None = None, **picture: Any) -> Picture:
        """Render (see :meth:`render` for the options) and save as PNG; returns the picture."""
        from viewer.output import check_output_path

        check_output_path(path, overwrite=overwrite, suffixes=(".png",))  # before the render, not after
        dpi = check_dpi(dpi) if dpi is not None else None
        result = self.render(size, **picture)
        result.save(path, overwrite=overwrite, dpi=dpi)
        return result

    def section(self, level: str = "L4-L5", *, style: str = "diagram", size: tuple[int, int] = (1200, 900),
                labels: bool = True, scale_bar: bool = True) -> Picture:
        """The axial slice at a disc level (e.g. ``"L4-L5"``) with the muscles' CSA, as a picture."""
        from viewer.figures.section import render_section

        disc_position(level)
        style = check_option("style", style, SECTION_STYLES)
        size = _check_size(size)
        kwargs = {"style": style} if style != "diagram" else {}
        pixels = render_section(self.model, level.upper(), size, labels=labels, scale_bar=scale_bar, **kwargs)
        return Picture(pixels, {"dorsum": __version__, "atlas": f"{self.atlas.name} {self.atlas.version}",
                                "section": level.upper(), "style": style, **self._options.as_dict(),
                                "size": list(size)}, credit_lines(self.atlas))

    def export(self, path: str | Path, *, title: str = "Dorsum", overwrite: bool = False) -> Path:
        """Write the visible structures as GLB (slides, web viewers) or a self-contained HTML page."""
        from viewer.output import check_output_path

        out = check_output_path(path, overwrite=overwrite, suffixes=(".glb", ".html"))
        if out.suffix.lower() == ".html":
            from viewer.figures.html import export_html

            return export_html(self.model, out, title=title, overwrite=overwrite)
        from viewer.figures.gltf import export_glb

        return export_glb(self.model, out, overwrite=overwrite)

    def animate(self, path: str | Path, kind: str = "turntable", *, frames: int = 36, fps: float = 12.0,
                size: tuple[int, int] = (800, 600), frame: Sequence[str] = (), overwrite: bool = False,
                on_frame: Callable[[int], None] | None = None) -> Path:
        """Write an animation of this scene as GIF or MP4 (what ``dorsum animate`` writes).

        Parameters
        ----------
        path : str or Path
            Output file, ``.gif`` or ``.mp4``; never replaced unless ``overwrite``.
        kind : {"turntable", "peel", "atrophy", "scenario"}
            ``"turntable"``: the camera circles the body; ``"peel"``: the visible muscle layers fade
            away, outermost first; ``"atrophy"``: the muscle of :meth:`atrophy` wastes from healthy
            to the amount set; ``"scenario"``: the scenario of :meth:`preset` develops (healthy to it,
            or age 30 to its age).
        frames : int
            Number of frames, 2 to 2000.
        fps : float
            Frames per second, 1 to 60.
        size : (int, int)
            Frame width and height, pixels (even for MP4).
        frame : sequence of str
            Layers, muscles or structures the camera fits (a close-up); by default everything shown,
            or for ``"atrophy"`` the wasting muscle at its wasting levels.
        on_frame : callable, optional
            Called with each frame's index once it is rendered (a progress bar).

        Returns
        -------
        Path
            The file written.
        """
        from viewer.figures import ANIMATION_SUFFIXES
        from viewer.figures.animation import AnimationSpec, check_animation, render_animation
        from viewer.output import check_output_path

        spec = AnimationSpec(kind, int(frames), check_range("fps", fps, 1, 60), _check_size(size))
        out = check_output_path(path, overwrite=overwrite, suffixes=ANIMATION_SUFFIXES)
        check_animation(spec, out.suffix.lower())
        preset = None
        if self._options.preset is not None:
            from viewer.presets import load_preset

            preset = load_preset(self._options.preset)
        # A scenario's wasting is its own; an atrophy animation needs an atrophy() of the scene.
        atrophy = self._options.atrophy if self._options.preset is None else None
        return render_animation(self.model, spec, out, view=self.view, atrophy=atrophy, frame=tuple(frame),
                                overwrite=overwrite, preset=preset, age=self._options.age,
                                on_frame=on_frame or (lambda _: None))

    # -- interactive -----------------------------------------------------------------------------
    def show(self, *, mode: str = "trame", size: tuple[int, int] = NOTEBOOK_SIZE) -> Any:
        """Show the scene interactively: inline in a Jupyter notebook, else in the desktop viewer.

        Parameters
        ----------
        mode : {"trame", "server", "client", "html", "static"}
            In a notebook, how the view is drawn (see :mod:`viewer.notebook`): the interactive modes
            need PyVista's notebook backend (``pip install 'dorsum[notebook]'``); without it, or with
            ``"static"``, the cell shows a picture. Ignored outside a notebook.
        size : (int, int)
            Width and height of the notebook view, pixels.

        Returns
        -------
        widget, IPython.display.Image or int
            In a notebook, what the cell shows: the trame widget (an ``ipywidgets`` widget whose
            ``viewer.plotter`` holds one actor per structure, named by its id) or a picture. Outside a
            notebook, the desktop viewer's exit code once its window closes.
        """
        from viewer.notebook import in_notebook

        if in_notebook():
            return self.notebook_view(mode=mode, size=size)
        return self.open_window()

    def notebook_view(self, *, mode: str = "trame", size: tuple[int, int] = NOTEBOOK_SIZE) -> Any:
        """The notebook view :meth:`show` returns in Jupyter.

        A served view (``"trame"``, ``"server"``, ``"client"``) follows later changes of this scene;
        a new call replaces it (the earlier cell keeps its last picture).
        """
        from viewer.notebook import NOTEBOOK_MODES, NotebookView, interactive_available

        mode = check_option("mode", mode, NOTEBOOK_MODES)
        size = _check_size(size)
        if self._notebook is not None:
            self._notebook.close()
            self._notebook = None
        if mode == "static" or not interactive_available():
            from IPython.display import Image  # a picture when no interactive backend is installed

            return Image(data=self.render(size)._repr_png_(), width=size[0], height=size[1])
        self._notebook = NotebookView(self.model, view=self.view if self.camera is None else None,
                                      camera=self.camera, size=size, mode=mode)
        return self._notebook.widget

    def open_window(self, *, state: Session | None = None, state_path: str | Path | None = None) -> int:
        """Open the desktop viewer on this scene and wait until its window closes; the exit code.

        ``dorsum view`` comes here too. ``state`` is a loaded state file (its camera and labels are
        kept unless the scene names a view), ``state_path`` where File > Save writes it back.

        Raises
        ------
        NoDisplayError
            When no window can be opened on this machine (one line saying what to do instead).
        """
        from viewer.display import require_display

        require_display()
        from viewer.app import run_scene  # Qt is imported only when a window is really wanted

        if state is not None:
            # The state's own camera unless a view was asked for on top of it.
            return run_scene(self.model, view=self._options.view, session=state,
                             state_path=None if state_path is None else Path(state_path))
        return run_scene(self.model, view=self.view if self.camera is None else None, camera=self.camera)

    def _repr_png_(self) -> bytes:
        return self.render((960, 720))._repr_png_()

    def __repr__(self) -> str:
        shown = len(self.model.visible_ids())
        wasted = "" if self._options.atrophy is None else f", atrophy {self._options.atrophy.as_dict()}"
        return (f"<Scene atlas={self.atlas.name!r}: {shown} of {len(self.atlas.structures)} structures shown, "
                f"view {self.view}{wasted}>")


def _names(names: Sequence[str]) -> tuple[str, ...]:
    if not names:
        raise DorsumError("give one or more layer, muscle or structure names, e.g. 'superficial'")
    return tuple(str(n) for n in names)


def _label_request(labels: bool | Iterable[str]) -> tuple[tuple[str, ...], bool]:
    if labels is True:
        return (), True
    if labels is False or labels is None:
        return (), False
    if isinstance(labels, str):
        return (labels,), False
    return tuple(labels), False


def _check_size(size: Sequence[int]) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError):
        raise DorsumError(f"size: {size!r} is not (width, height) in pixels, e.g. (1920, 1080)") from None
    if not (16 <= width <= MAX_SIZE[0] and 16 <= height <= MAX_SIZE[1]):
        raise DorsumError(f"size: {width}x{height} is out of range (width 16 to {MAX_SIZE[0]}, "
                          f"height 16 to {MAX_SIZE[1]})")
    return width, height


def render_lesson(lesson_file: str | Path, out: str | Path, *, atlas: str | Path | None = None,
                  overwrite: bool = False, jobs: int = 1,
                  on_start: Callable[[Lesson], None] | None = None,
                  on_figure: Callable[[FigureSpec, Path, list[str]], None] | None = None) -> list[Path]:
    """Render every figure of a lesson file (``docs/lessons.md``) into the folder ``out``.

    What ``dorsum lesson`` does. The whole file is checked first, every problem reported at once in
    one :class:`~viewer.figures.lesson.LessonError`, and nothing is written until it is valid. One
    :class:`~viewer.figures.figure.FigureRenderer` (one plotter, one model) renders every figure of a
    process, putting the model into each panel's state with the functions :class:`Scene` uses
    (:func:`~viewer.scene_options.apply_scene_options`, :func:`~viewer.atrophy.apply_atrophy`).

    Parameters
    ----------
    lesson_file : str or Path
        The lesson (.toml).
    out : str or Path
        Folder for the figures, created if missing.
    atlas : str, Path or None
        An installed atlas's name, an atlas folder, or None for the default atlas.
    overwrite : bool
        Replace figures that already exist in ``out``.
    jobs : int
        Processes rendering at once (1 to 16).
    on_start : callable, optional
        Called with the validated :class:`~viewer.figures.lesson.Lesson` before the first figure.
    on_figure : callable, optional
        Called with each figure's spec, its written path and the notes on what it could not show as
        asked (e.g. a label on a hidden muscle), as each is done.

    Returns
    -------
    list of Path
        The figures written, in the lesson's order.
    """
    from viewer.figures.lesson import check_lesson_atrophy, check_lesson_outputs, load_lesson

    jobs = check_jobs(jobs)
    atlas_dir = resolve_atlas(atlas)
    loaded = load_atlas(atlas_dir)
    lesson = load_lesson(lesson_file, loaded)
    check_lesson_atrophy(lesson, loaded)
    folder = check_lesson_outputs(lesson, out, overwrite=overwrite)
    job = LessonFiles(folder, overwrite, f"{loaded.name} {loaded.version}", credit_lines(loaded))
    report = on_figure or (lambda *_: None)
    if on_start is not None:
        on_start(lesson)
    if jobs > 1 and len(lesson.figures) > 1:
        from viewer.figures.parallel import LessonJob, render_lesson_parallel

        parallel = LessonJob(atlas_dir, Path(lesson_file), folder, overwrite, job.atlas_label, job.save)
        return render_lesson_parallel(loaded, lesson, parallel, jobs, report)
    from viewer.figures.figure import render_figures

    written: list[Path] = []

    def save(figure: FigureSpec, pixels: np.ndarray, notes: list[str]) -> None:
        written.append(job.save(lesson, figure, pixels))
        report(figure, written[-1], notes)

    render_figures(loaded, lesson.figures, lighting=lesson.lighting, transparent=lesson.background == "transparent",
                   on_figure=save)
    return written


#: Most processes ``render_lesson(jobs=...)`` and ``dorsum lesson --jobs`` start.
MAX_JOBS = 16


def check_jobs(value: int | str) -> int:
    """``value`` as a number of processes from 1 to :data:`MAX_JOBS`, or a one-line error."""
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_JOBS:
        raise DorsumError(f"jobs: {value!r} is not a whole number from 1 to {MAX_JOBS}")
    return int(text)


@dataclass(frozen=True)
class LessonFiles:
    """Where and how the figures of one lesson are written (the same in every process)."""

    folder: Path
    overwrite: bool
    atlas_label: str
    credits: tuple[str, ...]

    def save(self, lesson: Lesson, figure: FigureSpec, pixels: np.ndarray, *_: Any) -> Path:
        """Write one figure with the parameters that trace it back to its lesson entry and the data credits."""
        from viewer.output import save_png

        return save_png(self.folder / figure.output, pixels, parameters=lesson_figure_parameters(
            lesson, figure, self.atlas_label), overwrite=self.overwrite, dpi=lesson.dpi, credits=self.credits)


def lesson_figure_parameters(lesson: Lesson, figure: FigureSpec, atlas_label: str) -> dict[str, Any]:
    """What is stored in each lesson PNG so that a figure can be traced back to its lesson entry."""
    return {"command": "lesson", "dorsum": __version__, "atlas": atlas_label, "lesson": lesson.source.name,
            "background": lesson.background, "lighting": lesson.lighting, **figure.as_dict()}
