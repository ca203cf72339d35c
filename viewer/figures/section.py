"""The axial cross-section panel: an MRI-like slice at a disc level, drawn in 2D.

Muscle cut faces are the outlines :func:`viewer.measure.muscle_section_loops` returns, filled in each
muscle's displayed colour; bone outlines are sections of the visible bones by the same plane; the
CSA labels are the numbers :func:`viewer.measure.measure_muscle` (what ``dorsum measure`` reports)
gives for the same model state, so the picture and the measurement cannot disagree.

Radiological convention, as on an axial MRI: seen from the feet, anterior at the top, the patient's
right on the left of the picture.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from skimage.draw import polygon as polygon_pixels

from viewer.figures import compose
from viewer.figures.compose import Box, Typography
from viewer.figures.labels import Anchor, choose_anchors, draw_labels, find_anchors, layout_labels, margin_width
from viewer.measure import disc_plane, measure_muscle, muscle_section_loops, section_loops
from viewer.model import SceneModel

BONE_FILL = (244, 238, 222)
BONE_EDGE = (120, 104, 80)
MUSCLE_EDGE = (60, 30, 30)
SUPERSAMPLE = 3
# Bone loops farther than this from the disc centre (relative to the muscles' reach) are other
# bones the plane happens to cut (an elbow, the rib cage's lower edge): not part of the slice.
BONE_REACH = 1.35
# The disc is not modelled: when the plane passes between two vertebrae, the vertebra below is cut
# this far (mm) beyond its top (if its top lies within VERTEBRA_SEARCH mm of the plane).
VERTEBRA_CUT_DEPTH = 4.0
VERTEBRA_SEARCH = 20.0
#: Structure kinds drawn as the skeleton of the slice (bones, and discs where the atlas has them).
SKELETAL_KINDS = ("bone", "disc")
DISC_FILL = (196, 214, 226)


@dataclass(frozen=True)
class SectionPart:
    """One filled region of the slice: a muscle on one side, or a bone.

    Attributes
    ----------
    key : e.g. ``"multifidus/left"`` or ``"vertebra_l4"``.
    loops : tuple of (k, 2) float arrays in slice coordinates (mm): x = patient's right, y = anterior.
    """

    key: str
    name: str
    kind: str
    colour: str
    loops: tuple[np.ndarray, ...]


@dataclass(frozen=True)
class CsaLabel:
    """A muscle's cross-sectional area on one side, as :func:`measure_muscle` reports it (cm²)."""

    key: str
    muscle: str
    side: str
    csa_cm2: float
    text: str


@dataclass(frozen=True)
class SectionDrawing:
    """Everything the slice shows, in slice coordinates (mm), before any pixels."""

    disc: str
    parts: tuple[SectionPart, ...]
    labels: tuple[CsaLabel, ...]
    notes: tuple[str, ...] = ()


def slice_axes(normal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit in-plane axes (patient's right, anterior) of a plane with unit ``normal``, each (3,)."""
    n = np.asarray(normal, dtype=float)
    right = np.array([1.0, 0.0, 0.0]) - n[0] * n
    right /= np.linalg.norm(right)
    anterior = np.array([0.0, 1.0, 0.0]) - (n @ [0.0, 1.0, 0.0]) * n - (right @ [0.0, 1.0, 0.0]) * right
    return right, anterior / np.linalg.norm(anterior)


def to_slice(points: np.ndarray, origin: np.ndarray, axes: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(k, 3) points on the plane to (k, 2) slice coordinates (mm)."""
    rel = np.asarray(points, dtype=float) - origin
    return np.column_stack([rel @ axes[0], rel @ axes[1]])


def csa_text(name: str, csa_cm2: float) -> str:
    return f"{name} {csa_cm2:.2f} cm²"


def section_drawing(model: SceneModel, disc: str, label_muscles: tuple[str, ...] | None = None) -> SectionDrawing:
    """The parts and CSA labels of the slice at ``disc`` for the model as displayed.

    Muscles: every muscle with a visible structure, per side. Bones: visible bones the plane cuts
    near the muscles. CSA labels: for the muscles in ``label_muscles`` (default: all shown).
    """
    atlas = model.atlas
    origin, normal = disc_plane(atlas, disc)
    axes = slice_axes(normal)
    parts: list[SectionPart] = []
    labels: list[CsaLabel] = []
    visible = set(model.visible_ids())
    for muscle in atlas.muscles:
        structures = [s for s in atlas.structures_of_muscle(muscle) if s.id in visible]
        if not structures:
            continue
        measured = measure_muscle(model, muscle, [disc])["levels"][disc]
        by_side = muscle_section_loops(model, muscle, disc)
        csa_by_side = {side: float(values["csa_cm2"]) for side, values in measured.items()}
        if all(s.side == "midline" for s in structures):
            # One structure across the midline: one cut face, labelled with both sides' areas together.
            # (Split by side, its outline would be two open halves; cut whole, it is one closed loop.)
            by_side = {"midline": [loop for s in structures for loop in section_loops(
                model.vertices(s.id), atlas.meshes[s.id].faces, origin, normal)]}
            csa_by_side = {"midline": sum(csa_by_side.values())}
        for side, loops in by_side.items():
            shown = [s for s in structures if s.side in (side, "midline")]
            loops = [loop for loop in loops if len(loop) > 2]
            if not loops or not shown:
                continue
            key = f"{muscle}/{side}"
            parts.append(SectionPart(key, shown[0].name, "muscle", model.colour(shown[0].id),
                                     tuple(to_slice(loop, origin, axes) for loop in loops)))
            if label_muscles is None or muscle in label_muscles:
                labels.append(CsaLabel(key, muscle, side, csa_by_side[side],
                                       csa_text(shown[0].name, csa_by_side[side])))
    reach = max((np.abs(loop).max() for part in parts for loop in part.loops), default=150.0) * BONE_REACH
    lower_vertebra = disc.upper().split("-")[1]
    notes: list[str] = []
    skeleton = [s for s in atlas.structures if s.kind in SKELETAL_KINDS and s.id in visible]
    cut = {s.id: section_loops(model.vertices(s.id), atlas.meshes[s.id].faces, origin, normal) for s in skeleton}
    # An atlas that models the discs is cut in the disc plane itself; only without them does the
    # vertebra below stand in for the disc.
    has_disc = any(loops for sid, loops in cut.items() if _is_disc(atlas.structure(sid)))
    for structure in skeleton:
        vertices, faces = model.vertices(structure.id), atlas.meshes[structure.id].faces
        loops = cut[structure.id]
        cut_origin = origin
        if not loops and not has_disc and structure.levels == (lower_vertebra,):
            # The disc itself is not modelled; its outline is close to that of the vertebra below.
            depth = float(((vertices - origin) @ normal).min())
            if 0.0 < depth < VERTEBRA_SEARCH:
                cut_origin = origin + (depth + VERTEBRA_CUT_DEPTH) * normal
                loops = section_loops(vertices, faces, cut_origin, normal)
                notes.append(f"bone: {structure.name}, {depth + VERTEBRA_CUT_DEPTH:.0f} mm below the disc")
        slice_loops = [to_slice(loop, cut_origin, axes) for loop in loops]
        near = tuple(loop for loop in slice_loops if len(loop) > 2 and np.linalg.norm(loop.mean(axis=0)) < reach)
        if near:
            kind = "disc" if _is_disc(structure) else "bone"
            parts.insert(0, SectionPart(structure.id, structure.name, kind, structure.colour, near))
    return SectionDrawing(disc, tuple(parts), tuple(labels), tuple(notes))


def _is_disc(structure) -> bool:
    """An intervertebral disc (kind ``disc``, or a skeletal structure named ``disc_...``)."""
    return structure.kind == "disc" or structure.id.startswith("disc_")


def _fill_mask(loops: tuple[np.ndarray, ...], to_pixels, shape: tuple[int, int]) -> np.ndarray:
    """Even-odd fill of ``loops`` (holes cut out), (h, w) bool."""
    mask = np.zeros(shape, dtype=bool)
    for loop in loops:
        px = to_pixels(loop)
        rows, cols = polygon_pixels(px[:, 1], px[:, 0], shape)
        mask[rows, cols] ^= True
    return mask


def _hex(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def render_section(model: SceneModel, disc: str, size: tuple[int, int], *, typography: Typography | None = None,
                   transparent: bool = False, scale_bar: bool = True, labels: bool = True) -> np.ndarray:
    """The slice at ``disc`` as an (h, w, 3|4) uint8 picture of exactly ``size`` (w, h)."""
    return draw_section(section_drawing(model, disc), size, typography=typography, transparent=transparent,
                        scale_bar=scale_bar, labels=labels)


def _below_rows(drawing: SectionDrawing, typo: Typography, scale_bar: bool) -> tuple[int, int, int]:
    """Heights (px) of the rows under the slice: the P, the note about the bone cut, the scale bar."""
    letter = compose.line_height(compose.font(typo.body, bold=True))
    note = compose.line_height(_note_font(typo)) if drawing.notes else 0
    bar = compose.line_height(compose.font(typo.small)) + typo.body if scale_bar else 0
    return letter, note, bar


def _note_font(typo: Typography):
    return compose.font(max(9, typo.small * 4 // 5))


def _slice_frame(drawing: SectionDrawing, size: tuple[int, int], typo: Typography, labels: bool,
                 scale_bar: bool = True) -> tuple[Box, np.ndarray, np.ndarray, float]:
    """Picture box, slice bounds (low, high; mm) and the scale (pixels per mm) that fits them in it."""
    width, height = size
    typeface = compose.font(typo.small)
    margin = margin_width([label.text for label in drawing.labels], typeface, width) if labels else 0
    letter = compose.line_height(compose.font(typo.body, bold=True))
    picture = Box(margin, letter, width - 2 * margin, height - letter - sum(_below_rows(drawing, typo, scale_bar)))
    low, high = field_of_view(drawing)
    extent = np.maximum(high - low, 1.0)
    return picture, low, high, float(min(picture.width / extent[0], picture.height / extent[1]))


def field_of_view(drawing: SectionDrawing, margin: float = 0.04) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper corners (mm) of what the slice shows: the muscles, and the bones among them.

    Bones reaching beyond the muscles (the iliac wings at L5-S1) are cut at the edge, as by an MRI
    field of view, so that the muscles stay large enough to read.
    """
    muscles = [loop for part in drawing.parts if part.kind == "muscle" for loop in part.loops]
    loops = muscles or [loop for part in drawing.parts for loop in part.loops] or [np.zeros((1, 2))]
    points = np.concatenate(loops)
    low, high = points.min(axis=0), points.max(axis=0)
    for part in drawing.parts:
        for loop in part.loops:
            centre = loop.mean(axis=0)
            if part.kind in SKELETAL_KINDS and np.all(centre >= low) and np.all(centre <= high):
                low, high = np.minimum(low, loop.min(axis=0)), np.maximum(high, loop.max(axis=0))
    pad = margin * np.maximum(high - low, 1.0)
    return low - pad, high + pad


def fit_scale(drawing: SectionDrawing, size: tuple[int, int], *, typography: Typography | None = None,
              labels: bool = True, scale_bar: bool = True) -> float:
    """Pixels per mm at which :func:`draw_section` would fit ``drawing`` in a picture of ``size``.

    Panels showing slices side by side use the smallest of their fit scales, so that their
    centimetres are the same length.
    """
    return _slice_frame(drawing, size, typography or Typography.for_size(size), labels, scale_bar)[3]


def draw_section(drawing: SectionDrawing, size: tuple[int, int], *, typography: Typography | None = None,
                 transparent: bool = False, scale_bar: bool = True, labels: bool = True,
                 scale: float | None = None, scale_bar_room: bool | None = None) -> np.ndarray:
    """Pixels of a :class:`SectionDrawing`: filled parts, outlines, CSA labels, orientation, scale bar.

    ``scale`` (pixels per mm) may only shrink the slice below the scale that fits it.
    ``scale_bar_room`` keeps room for a scale bar without drawing one (default: ``scale_bar``), so
    that slices side by side, of which only one carries the bar, line up.
    """
    room = scale_bar if scale_bar_room is None else scale_bar_room
    typo = typography or Typography.for_size(size)
    typeface = compose.font(typo.small)
    width, height = size
    picture, low, high, fit = _slice_frame(drawing, size, typo, labels, room)
    margin = picture.left
    letter = picture.top
    centre = 0.5 * (low + high)
    scale = min(fit, scale) if scale else fit  # pixels per mm

    def to_pixels(loop: np.ndarray, factor: int = 1) -> np.ndarray:
        x = picture.left + picture.width / 2 - (loop[:, 0] - centre[0]) * scale  # patient's right on the left
        y = picture.top + picture.height / 2 - (loop[:, 1] - centre[1]) * scale  # anterior at the top
        return np.column_stack([x, y]) * factor

    big_size = (width * SUPERSAMPLE, height * SUPERSAMPLE)
    image = Image.new("RGBA", big_size, (255, 255, 255, 0 if transparent else 255))
    draw = ImageDraw.Draw(image)
    index_image = np.full((height, width), -1, dtype=np.int32)
    line_width = max(2, SUPERSAMPLE * typo.small // 14)
    for index, part in enumerate(drawing.parts):
        mask = _fill_mask(part.loops, lambda loop: to_pixels(loop, SUPERSAMPLE), (big_size[1], big_size[0]))
        fill = BONE_FILL if part.kind == "bone" else DISC_FILL if part.kind == "disc" else _hex(part.colour)
        image.paste((*fill, 255), mask=Image.fromarray(mask.astype(np.uint8) * 255, "L"))
        edge = BONE_EDGE if part.kind in SKELETAL_KINDS else MUSCLE_EDGE
        for loop in part.loops:
            px = to_pixels(loop, SUPERSAMPLE)
            draw.line([tuple(p) for p in np.vstack([px, px[:1]])], fill=(*edge, 255), width=line_width, joint="curve")
        index_image[_fill_mask(part.loops, to_pixels, (height, width))] = index
    corners = to_pixels(np.array([low, high]))
    left, right = max(picture.left, int(corners[:, 0].min())), min(picture.right, int(np.ceil(corners[:, 0].max())))
    top, bottom = max(picture.top, int(corners[:, 1].min())), min(picture.bottom, int(np.ceil(corners[:, 1].max())))
    drawn = Box(left, top, right - left, bottom - top)
    # Only the field of view is shown: bones reaching out of it are cut at its edge.
    image = image.resize(size, Image.Resampling.BOX).crop((drawn.left, drawn.top, drawn.right, drawn.bottom))
    outside = np.ones((height, width), dtype=bool)
    outside[drawn.top : drawn.bottom, drawn.left : drawn.right] = False
    index_image[outside] = -1
    canvas = Image.new("RGBA", size, (255, 255, 255, 0 if transparent else 255))
    canvas.paste(image, (drawn.left, drawn.top))
    image = canvas if transparent else canvas.convert("RGB")
    compose.frame_if_cut(image, np.asarray(image)[drawn.top : drawn.bottom, drawn.left : drawn.right], drawn)
    draw = ImageDraw.Draw(image)
    if labels and drawing.labels:
        keys = [part.key for part in drawing.parts]
        anchors = find_anchors(index_image, [keys.index(label.key) for label in drawing.labels], min_area=4)
        candidates: dict[str, list[Anchor]] = {}
        for label in drawing.labels:
            anchor = anchors.get(keys.index(label.key))
            if anchor is not None:
                candidates[label.key] = [anchor]
        texts = {label.key: label.text for label in drawing.labels}
        chosen = [(texts[key], anchor, side)
                  for key, anchor, side in choose_anchors(candidates, picture.left + picture.width / 2)]
        draw_labels(draw, layout_labels(chosen, picture, typeface, margin, (drawn.left, drawn.right)), typeface)
    _draw_orientation(draw, drawn, size, typo)
    letter_h, note_h, _ = _below_rows(drawing, typo, scale_bar)
    below = drawn.bottom + letter_h  # under the P
    if drawing.notes:
        note_font = _note_font(typo)
        note = compose.fit_line("; ".join(drawing.notes), note_font, width)
        draw.text(((width - compose.text_width(note, note_font)) // 2, below), note, font=note_font,
                  fill=compose.MUTED_TEXT_COLOUR)
        below += note_h
    if scale_bar:  # just under the slice, where the eye is, not at the foot of a tall panel
        bar_bottom = min(height, below + compose.line_height(typeface) + typo.body)
        compose.draw_scale_bar(image, Box(drawn.left, 0, drawn.width, bar_bottom), 1.0 / scale, typo)
    return np.asarray(image)


def _draw_orientation(draw: ImageDraw.ImageDraw, drawn: Box, size: tuple[int, int], typo: Typography) -> None:
    """A above the slice, P below it, R and L at its upper corners (radiological view)."""
    typeface = compose.font(typo.body, bold=True)
    step = compose.line_height(typeface)
    colour = compose.MUTED_TEXT_COLOUR
    top = max(0, drawn.top - step)
    bottom = min(size[1] - step, drawn.bottom)
    middle_x = drawn.left + drawn.width // 2
    for letter, x, y in (("A", middle_x - compose.text_width("A", typeface) // 2, top),
                         ("P", middle_x - compose.text_width("P", typeface) // 2, bottom),
                         ("R", drawn.left, top),
                         ("L", drawn.right - compose.text_width("L", typeface), top)):
        draw.text((x, y), letter, font=typeface, fill=colour)
