"""Animations for teaching: progressive atrophy, a turntable and a layer peel, as GIF or MP4.

Frames come from one off-screen renderer whose model is changed in place between frames, with a
fixed camera (or one orbiting at a fixed distance), so that only what the animation is about moves.
Movies are written through imageio (GIF, Pillow) and imageio-ffmpeg (MP4, H.264), never a shell.
Frames stream to the encoder as they are rendered: memory does not grow with the number of frames.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from viewer.atlas import credit_lines
from viewer.errors import DorsumError
from viewer.figures import ANIMATION_KINDS, compose
from viewer.figures.figure import displayed_points, framing_camera
from viewer.figures.reveal import wasting_points
from viewer.model import SceneModel
from viewer.output import run_encoder, write_atomically
from viewer.render import Camera, RenderSettings, SceneRenderer, offscreen_plotter
from viewer.views import fit_distance, view_preset



@dataclass(frozen=True)
class AnimationSpec:
    """What to animate: ``kind``, number of frames, frame rate and picture size (w, h) in pixels."""

    kind: str
    frames: int
    fps: float
    size: tuple[int, int]


def check_animation(spec: AnimationSpec, suffix: str) -> None:
    """Raise a :class:`DorsumError` naming what is wrong before any frame is rendered."""
    if spec.kind not in ANIMATION_KINDS:
        raise DorsumError(f"kind: unknown value {spec.kind!r} (allowed: {', '.join(ANIMATION_KINDS)})")
    if not 2 <= spec.frames <= 2000:
        raise DorsumError(f"frames: {spec.frames} is out of range (allowed: 2 to 2000)")
    if not 1 <= spec.fps <= 60:
        raise DorsumError(f"fps: {spec.fps:g} is out of range (allowed: 1 to 60)")
    if suffix == ".mp4" and (spec.size[0] % 2 or spec.size[1] % 2):
        raise DorsumError(f"size: MP4 needs an even width and height, got {spec.size[0]}x{spec.size[1]}")


# -- frame sources ------------------------------------------------------------------------------------
def fixed_camera(model: SceneModel, view: str, size: tuple[int, int], view_angle: float,
                 frame: tuple[str, ...] = ()) -> Camera:
    """A camera from preset ``view`` fitting the structures ``frame`` names (default: all visible)."""
    ids = [sid for name in frame for sid in model.resolve(name)] if frame else model.visible_ids()
    return framing_camera(displayed_points(model, ids), view, size, view_angle)


def atrophy_amounts(final_amount: float, frames: int) -> np.ndarray:
    """CSA loss (percent) of each frame, from 0 to ``final_amount`` in equal steps."""
    return np.linspace(0.0, float(final_amount), frames)


def atrophy_frames(renderer: SceneRenderer, params, spec: AnimationSpec, view: str,
                   frame: tuple[str, ...] = ()) -> Iterator[np.ndarray]:
    """Frames of the muscle wasting from healthy to ``params.amount`` percent, fat rising alike.

    The camera frames the wasting muscle at its wasting levels (both sides, healthy shape) unless
    ``frame`` names other structures.
    """
    from viewer.atrophy import apply_atrophy

    model = renderer.model
    apply_atrophy(model, replace(params, amount=0.0, fat=0.0))
    if frame:
        camera = fixed_camera(model, view, spec.size, renderer.settings.view_angle, frame)
    else:
        camera = framing_camera(wasting_points(model, params), view, spec.size, renderer.settings.view_angle)
    renderer.set_camera(camera)
    for amount in atrophy_amounts(params.amount, spec.frames):
        fraction = amount / params.amount if params.amount else 0.0
        apply_atrophy(model, replace(params, amount=float(amount), fat=float(params.fat * fraction)))
        frame = renderer.screenshot(spec.size)
        yield caption_frame(frame, f"{params.muscle.capitalize()} {params.segments} ({params.side}): "
                                   f"{amount:.0f}% CSA loss")


def scenario_steps(preset, atlas, age: float | None, frames: int) -> list[tuple[object, float, str]]:
    """(wasting, position on the scale 0-1, label) of each frame: healthy to the scenario, or for an
    ageing scenario from its reference age to ``age`` (default: its default age)."""
    from viewer.atrophy import wasting_entries
    from viewer.presets import preset_wasting

    final, _ = preset_wasting(preset, atlas, age)
    muscles = {p.muscle for p in wasting_entries(final)}
    steps = []
    if preset.age is not None:
        start, end = preset.age.reference, preset.age.default if age is None else float(age)
        for fraction in np.linspace(0.0, 1.0, frames):
            years = start + fraction * (end - start)
            entries = tuple(p for p in preset.params(max(years, preset.age.low)) if p.muscle in muscles)
            steps.append((entries, float(fraction), f"age {years:.0f}"))
        return steps
    for fraction in np.linspace(0.0, 1.0, frames):
        entries = tuple(replace(p, amount=round(p.amount * fraction, 3), fat=round(p.fat * fraction, 3))
                        for p in wasting_entries(final))
        steps.append((entries, float(fraction), f"{100 * fraction:.0f}%"))
    return steps


def scenario_frames(renderer: SceneRenderer, preset, age: float | None, spec: AnimationSpec, view: str,
                    frame: tuple[str, ...] = ()) -> Iterator[np.ndarray]:
    """Frames of a scenario developing over time, each with a scale (healthy to scenario, or ages)."""
    from viewer.atrophy import apply_atrophy, wasting_entries

    model = renderer.model
    steps = scenario_steps(preset, model.atlas, age, spec.frames)
    ends = (f"age {preset.age.reference:g}", steps[-1][2]) if preset.age is not None else ("healthy", preset.title)
    first = wasting_entries(steps[-1][0])[0]
    apply_atrophy(model, None)
    if frame:
        camera = fixed_camera(model, view, spec.size, renderer.settings.view_angle, frame)
    else:
        camera = framing_camera(wasting_points(model, first), view, spec.size, renderer.settings.view_angle)
    renderer.set_camera(camera)
    for wasting, fraction, label in steps:
        apply_atrophy(model, wasting if any(p.amount > 0 or p.fat > 0 for p in wasting) else None)
        yield scale_frame(renderer.screenshot(spec.size), fraction, ends, label)


def scale_frame(frame: np.ndarray, fraction: float, ends: tuple[str, str], label: str) -> np.ndarray:
    """``frame`` with a scale along its top: a track from ``ends[0]`` to ``ends[1]`` and a marker at
    ``fraction`` labelled ``label`` (the time a frame shows)."""
    image = Image.fromarray(np.ascontiguousarray(frame[..., :3]))
    width, _ = image.size
    typo = compose.Typography.for_size(image.size)
    typeface = compose.font(typo.small)
    height = compose.line_height(typeface)
    pad = max(4, typo.small // 2)
    band = 2 * height + 3 * pad
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 0, width, band], fill=compose.WHITE)
    left, right = pad + compose.text_width(ends[0], typeface) + pad, width - pad
    track_y = pad + height // 2
    right_text = compose.fit_line(ends[1], typeface, max(20, width // 3))
    right -= compose.text_width(right_text, typeface) + pad
    draw.text((pad, pad), ends[0], font=typeface, fill=compose.TEXT_COLOUR)
    draw.text((right + pad, pad), right_text, font=typeface, fill=compose.TEXT_COLOUR)
    draw.line([(left, track_y), (right, track_y)], fill=compose.MUTED_TEXT_COLOUR, width=max(2, pad // 2))
    marker = left + fraction * (right - left)
    radius = max(4, pad)
    draw.ellipse([marker - radius, track_y - radius, marker + radius, track_y + radius], fill=(30, 110, 220))
    text_x = int(np.clip(marker - compose.text_width(label, typeface) / 2, 0, width - compose.text_width(label, typeface)))
    draw.text((text_x, track_y + radius + pad // 2), label, font=typeface, fill=compose.TEXT_COLOUR)
    return np.asarray(image)


def orbit_cameras(points: np.ndarray, view: str, spec: AnimationSpec, view_angle: float) -> list[Camera]:
    """Cameras circling the body about the vertical (superior) axis, one per frame, at a fixed distance."""
    preset = view_preset(view)
    centre = 0.5 * (points.min(axis=0) + points.max(axis=0))
    aspect = spec.size[0] / spec.size[1]
    up = np.array([0.0, 0.0, 1.0])
    start = np.asarray(preset.direction, dtype=float)
    start = start - (start @ up) * up
    if np.linalg.norm(start) < 1e-6:  # superior/inferior presets: orbit from behind instead
        start = np.array([0.0, -1.0, 0.0])
    start /= np.linalg.norm(start)
    angles = np.linspace(0.0, 2.0 * np.pi, spec.frames, endpoint=False)
    directions = [np.cos(a) * start + np.sin(a) * np.cross(up, start) for a in angles]
    distance = max(fit_distance(points, centre, replace(preset, direction=tuple(d), up=tuple(up)), view_angle, aspect)
                   for d in directions[:: max(1, spec.frames // 12)])
    return [Camera(tuple(centre + distance * d), tuple(centre), tuple(up), view_angle) for d in directions]


def turntable_frames(renderer: SceneRenderer, spec: AnimationSpec, view: str,
                     frame: tuple[str, ...] = ()) -> Iterator[np.ndarray]:
    model = renderer.model
    ids = [sid for name in frame for sid in model.resolve(name)] if frame else model.visible_ids()
    points = displayed_points(model, ids)
    for camera in orbit_cameras(points, view, spec, renderer.settings.view_angle):
        renderer.set_camera(camera)
        yield renderer.screenshot(spec.size)


def peel_opacities(layers: list[str], frames: int) -> list[dict[str, float]]:
    """Opacity of each peeled layer per frame: the layers fade out one after the other, outermost first.

    Each layer gets an equal share of the frames: a short hold, then a fade from 1 to 0.
    """
    per_layer = frames / max(1, len(layers))
    result = []
    for frame in range(frames):
        t = frame / max(1, frames - 1) * len(layers)
        opacities = {}
        for i, layer in enumerate(layers):
            local = np.clip(t - i, 0.0, 1.0)
            fade = np.clip((local - 0.25) / 0.75, 0.0, 1.0) if per_layer > 1 else local
            opacities[layer] = float(1.0 - fade)
        result.append(opacities)
    return result


def peel_frames(renderer: SceneRenderer, spec: AnimationSpec, view: str,
                frame: tuple[str, ...] = ()) -> Iterator[np.ndarray]:
    """Frames peeling the visible muscle layers away from the outside in, down to the deepest one."""
    model = renderer.model
    atlas = model.atlas
    shown = [layer.name for layer in atlas.layers
             if any(atlas.structure(sid).layer == layer.name for sid in model.visible_ids())]
    muscle_layers = [name for name in shown
                     if any(s.kind == "muscle" for s in atlas.structures if s.layer == name)]
    peeled = muscle_layers[:-1]
    if not peeled:
        raise DorsumError("peel: only one muscle layer is shown, nothing to peel away (show two or more layers)")
    renderer.set_camera(fixed_camera(model, view, spec.size, renderer.settings.view_angle, frame))
    for opacities in peel_opacities(peeled, spec.frames):
        with model.batch():
            for layer, value in opacities.items():
                model.set_layer_visible(layer, value > 0.0)
                model.set_opacity(layer, max(value, 0.0))
        yield caption_frame(renderer.screenshot(spec.size), peel_stage(opacities, muscle_layers[-1]))


def peel_stage(opacities: dict[str, float], deepest: str) -> str:
    """What a peel frame shows, in words: all layers, the layer fading away, or the deepest one left."""
    fading = [layer for layer, value in opacities.items() if 0.0 < value < 1.0]
    if fading:
        return f"Removing the {fading[0]} layer"
    if all(value == 1.0 for value in opacities.values()):
        return "All layers"
    remaining = [layer for layer, value in opacities.items() if value == 1.0]
    return f"{(remaining or [deepest])[0].capitalize()} layer"


def caption_frame(frame: np.ndarray, text: str) -> np.ndarray:
    """``frame`` with ``text`` in the lower-left corner on a white band (the state a frame shows)."""
    image = Image.fromarray(np.ascontiguousarray(frame[..., :3]))
    typo = compose.Typography.for_size(image.size)
    typeface = compose.font(typo.small)
    text = compose.fit_line(text, typeface, image.size[0] - typo.small)
    height = compose.line_height(typeface)
    pad = max(3, typo.small // 3)
    top = image.size[1] - height - 2 * pad
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, top, compose.text_width(text, typeface) + 2 * pad, image.size[1]], fill=compose.WHITE)
    draw.text((pad, top + pad), text, font=typeface, fill=compose.TEXT_COLOUR)
    return np.asarray(image)


# -- writing ------------------------------------------------------------------------------------------
def gif_writer(frames: Iterable[np.ndarray], fps: float, credit: str = "") -> Callable[[Path], None]:
    """A writer that encodes each of ``frames`` as it comes and keeps none of them.

    ``credit`` (the data credits) is stored as the GIF's comment.

    Pillow's own animated-GIF save holds every frame until the end; here each frame gets its own
    adaptive palette (what Pillow's save does, so the decoded pixels are the same) and is written
    with Pillow's frame encoder straight away.
    """
    def write(target: Path) -> None:
        from PIL import GifImagePlugin

        with open(target, "wb") as handle:
            for index, frame in enumerate(frames):
                image = Image.fromarray(np.ascontiguousarray(frame[..., :3])).convert("P", palette=Image.Palette.ADAPTIVE)
                if index == 0:
                    header, _ = GifImagePlugin.getheader(image, info={"loop": 0})
                    handle.writelines(header)
                    if credit:
                        handle.write(_gif_comment(credit.encode("utf-8")))
                handle.writelines(GifImagePlugin.getdata(image, duration=1000.0 / fps, include_color_table=True,
                                                         disposal=1))
                handle.flush()  # on disk now: a long animation never waits in memory
            handle.write(b";")  # GIF trailer

    return write


def mp4_writer(frames: Iterable[np.ndarray], fps: float, size: tuple[int, int],
               credit: str = "") -> Callable[[Path], None]:
    """``credit``: the data credits, stored as the MP4's copyright tag."""
    def write(target: Path) -> None:
        # H.264 through the ffmpeg of imageio-ffmpeg, run and checked by viewer.output (a failed or
        # killed encoder is an error, never a "written" file).
        run_encoder(mp4_command(target, fps, size, credit), (np.ascontiguousarray(f[..., :3]) for f in frames),
                    name="MP4")

    return write


def mp4_command(target: Path, fps: float, size: tuple[int, int], credit: str = "") -> list[str]:
    """The ffmpeg command that encodes raw RGB frames of ``size`` (w, h) from stdin to ``target``.

    The settings are imageio-ffmpeg's for quality 8 (CRF 10); the temporary name does not end in
    .mp4, so the container is named explicitly.
    """
    from fractions import Fraction

    import imageio_ffmpeg

    rate = str(Fraction(fps).limit_denominator())
    return [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "rawvideo", "-vcodec", "rawvideo",
            "-s", f"{size[0]}x{size[1]}", "-pix_fmt", "rgb24", "-r", rate, "-i", "-", "-an",
            "-vcodec", "libx264", "-pix_fmt", "yuv420p", "-crf", "10",
            "-f", "mp4", "-movflags", "+faststart", *(["-metadata", f"copyright={credit}"] if credit else []),
            str(target)]


def frame_writer(frames: Iterable[np.ndarray], spec: AnimationSpec, suffix: str,
                 credit: str = "") -> Callable[[Path], None]:
    """The writer for ``suffix`` (.gif or .mp4), consuming ``frames`` lazily; ``credit`` goes in its metadata."""
    return (gif_writer(frames, spec.fps, credit) if suffix == ".gif"
            else mp4_writer(frames, spec.fps, spec.size, credit))


def _gif_comment(text: bytes) -> bytes:
    """A GIF comment extension block holding ``text`` (sub-blocks of at most 255 bytes)."""
    blocks = b"".join(bytes([len(text[i:i + 255])]) + text[i:i + 255] for i in range(0, len(text), 255))
    return b"\x21\xfe" + blocks + b"\x00"


def _reporting(frames: Iterable[np.ndarray], on_frame: Callable[[int], None]) -> Iterator[np.ndarray]:
    for index, frame in enumerate(frames):
        yield frame
        on_frame(index)


def render_animation(model: SceneModel, spec: AnimationSpec, path: str | Path, *, view: str, atrophy=None,
                     frame: tuple[str, ...] = (), overwrite: bool = False, preset=None, age: float | None = None,
                     settings: RenderSettings = RenderSettings(),
                     on_frame: Callable[[int], None] = lambda _: None) -> Path:
    """Render the animation ``spec`` of ``model`` and write it to ``path`` (.gif or .mp4), atomically.

    ``atrophy`` (a :class:`viewer.atrophy.AtrophyParams`) is the final state of an atrophy animation.
    ``frame`` names the structures the camera fits (a close-up); by default all visible ones, or for
    an atrophy animation the wasting muscle at its wasting levels.
    ``on_frame`` is called with the index of each frame once it is rendered (for a progress bar).
    """
    out = Path(path)
    suffix = out.suffix.lower()
    check_animation(spec, suffix)
    if spec.kind == "atrophy" and (atrophy is None or atrophy.amount <= 0):
        raise DorsumError("atrophy animation: give the final CSA loss with --atrophy PERCENT (e.g. --atrophy 40)")
    if spec.kind == "scenario" and preset is None:
        raise DorsumError("scenario animation: give the scenario with --preset NAME ('dorsum preset list')")
    for name in frame:
        model.resolve(name)  # unknown names fail before rendering
    plotter = offscreen_plotter(spec.size)
    renderer = SceneRenderer(plotter, model, settings)
    try:
        if spec.kind == "atrophy":
            source = atrophy_frames(renderer, atrophy, spec, view, frame)
        elif spec.kind == "scenario":
            source = scenario_frames(renderer, preset, age, spec, view, frame)
        elif spec.kind == "turntable":
            source = turntable_frames(renderer, spec, view, frame)
        else:
            source = peel_frames(renderer, spec, view, frame)
        # Each frame is rendered when the encoder asks for it and dropped once encoded.
        credit = "\n".join(credit_lines(model.atlas))
        return write_atomically(out, frame_writer(_reporting(source, on_frame), spec, suffix, credit),
                                overwrite=overwrite)
    finally:
        renderer.close()
        plotter.close()
