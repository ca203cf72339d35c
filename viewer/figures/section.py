"""The axial cross-section panel: an MRI-like slice at a disc level, drawn in 2D.

Muscle cut faces are the outlines :func:`viewer.measure.muscle_section_loops` returns, filled in each
muscle's displayed colour; bone outlines are sections of the visible bones by the same plane; the
CSA labels are the numbers :func:`viewer.measure.measure_muscle` (what ``dorsum measure`` reports)
gives for the same model state, so the picture and the measurement cannot disagree.

Radiological convention, as on an axial MRI: seen from the feet, anterior at the top, the patient's
right on the left of the picture.

Fat (:mod:`viewer.fat`): a wasting muscle's section keeps its healthy outline as the fascial boundary
(unless the atrophy is ``retracted``); the space the muscle vacated is fat, and fat patches placed by
the seeded noise field fill the muscle up to the fat fraction ``dorsum measure`` reports, counted
on the section's own pixels.

Two styles: ``"diagram"`` (the muscles in their colours, fat yellow, bone beige, outlines) and
``"mri"``, a T1-weighted look in grey levels: fat bright (subcutaneous, between and inside the
muscles), muscle dark grey, cortical bone dark around lighter marrow, disc and canal in their usual
greys, inside a body outline generated from the atlas (:mod:`viewer.body`).
"""

from __future__ import annotations

from dataclasses import dataclass

import itertools

import numpy as np
from PIL import Image, ImageDraw

from viewer.atrophy import FAT_COLOUR, wasting_of
from viewer.checks import check_option
from viewer.fat import fat_noise, fat_pixels
from viewer.figures import compose
from viewer.figures.compose import Box, Typography
from viewer.figures.labels import (
    Anchor,
    LabelLayout,
    PlacedLabel,
    choose_anchors,
    draw_labels,
    find_anchors,
    layout_labels,
    margin_width,
    segments_cross,
)
from viewer.levels import disc_position
from viewer.measure import SIDE_NAMES, disc_plane, measure_muscle, muscle_section_loops, section_loops
from viewer.model import SceneModel

STYLES = ("diagram", "mri")

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
#: Grey levels (0-255) of a T1-weighted image: fat bright, muscle dark, cortex darker than marrow,
#: CSF dark, disc intermediate, air black.
MRI_GREY = {"air": 6, "skin": 120, "subcutaneous": 226, "wall": 78, "viscera": 104, "intermuscular": 214,
            "muscle": 74, "fat": 222, "cortex": 34, "marrow": 168, "disc": 98, "canal": 52, "fascia": 40}
#: Thickness of the dark cortical rim of bone in the MRI style, mm.
CORTEX_MM = 1.6
#: The MRI field of view reaches this far (mm) beyond the muscles and bones: the skin and fat behind,
#: the flanks beside, a strip of abdomen in front.
MRI_MARGIN_MM = (22.0, 22.0, 45.0)
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
    #: The fascial boundary when it differs from ``loops``: the healthy outline of a wasted muscle.
    boundary: tuple[np.ndarray, ...] = ()
    #: Share of the area inside the boundary that is fat, 0 to 1 (as ``dorsum measure`` reports it).
    fat: float = 0.0

    @property
    def outline(self) -> tuple[np.ndarray, ...]:
        """The loops enclosing the whole part: the boundary if there is one, else the loops."""
        return self.boundary or self.loops


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
    style: str = "diagram"
    #: The plane's origin (3,) and in-plane axes (right, anterior), to place the fat field in 3D.
    origin: np.ndarray | None = None
    axes: tuple[np.ndarray, np.ndarray] | None = None
    #: Skin, deep fascia and abdominal-wall outlines (MRI style), slice coordinates.
    body: object | None = None
    #: A heading drawn over the slice (a lesson panel's caption), so it cannot be read as another's.
    heading: str = ""

    def to_space(self, points: np.ndarray) -> np.ndarray:
        """(k, 2) slice coordinates to (k, 3) points in the atlas frame (mm)."""
        if self.origin is None or self.axes is None:
            return np.column_stack([points, np.zeros(len(points))])
        return self.origin + points[:, :1] * self.axes[0] + points[:, 1:2] * self.axes[1]


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


def csa_text(name: str, csa_cm2: float, fat_percent: float = 0.0) -> str:
    text = f"{name} {csa_cm2:.2f} cm²"
    return f"{text}, fat {fat_percent:.0f}%" if fat_percent >= 0.5 else text


#: Smallest cut (cm²) labelled by default: a muscle whose edge the plane merely grazes is drawn, not named.
MIN_LABELLED_CM2 = 0.3


def section_drawing(model: SceneModel, disc: str, label_muscles: tuple[str, ...] | None = None,
                    style: str = "diagram", heading: str = "") -> SectionDrawing:
    """The parts and CSA labels of the slice at ``disc`` for the model as displayed.

    Muscles: every muscle with a visible structure, per side, with the fascial boundary and fat
    fraction of a wasting one. Bones: visible bones the plane cuts near the muscles. CSA labels: for
    the muscles in ``label_muscles`` (default: all shown). ``style`` ``"mri"`` adds the body outline.
    """
    check_option("style", style, STYLES)
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
        healthy = muscle_section_loops(model, muscle, disc, healthy=True)
        params = wasting_of(model.atrophy, muscle)
        wasting = params is not None
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
            entry = measured.get(side, {})
            fat = float(entry.get("fat_percent", 0.0)) / 100.0 if side in measured else 0.0
            boundary: tuple[np.ndarray, ...] = ()
            if wasting and side in measured and not params.retracted and entry["csa_cm2"] != entry["baseline_cm2"]:
                boundary = tuple(to_slice(loop, origin, axes) for loop in healthy.get(side, []) if len(loop) > 2)
            # A wasting muscle is drawn in its own colour with the fat as fat, not tinted all over.
            colour = shown[0].colour if wasting else model.colour(shown[0].id)
            parts.append(SectionPart(key, shown[0].name, "muscle", colour,
                                     tuple(to_slice(loop, origin, axes) for loop in loops), boundary, fat))
            # A muscle the plane only grazes (its edge, under MIN_LABELLED_CM2) gets no label unless asked for.
            grazed = label_muscles is None and not wasting and csa_by_side[side] < MIN_LABELLED_CM2
            if (label_muscles is None or muscle in label_muscles) and not grazed:
                # The fat is named when it was asked for; fat that only fills the vacated space is
                # what the picture and the lost area already say.
                asked = wasting and params.fat > 0.0 and params.fat_at(disc_position(disc), SIDE_NAMES.index(side)) > 0
                labels.append(CsaLabel(key, muscle, side, csa_by_side[side],
                                       csa_text(shown[0].name, csa_by_side[side], 100.0 * fat if asked else 0.0)))
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
    body = None
    if style == "mri":
        from viewer.body import body_outline  # deferred: only the MRI style draws the body

        body = body_outline(atlas, origin, normal, axes)
    return SectionDrawing(disc, tuple(parts), tuple(labels), tuple(notes), style, origin, axes, body, heading)


def _is_disc(structure) -> bool:
    """An intervertebral disc (kind ``disc``, or a skeletal structure named ``disc_...``)."""
    return structure.kind == "disc" or structure.id.startswith("disc_")


def _fill_mask(loops: tuple[np.ndarray, ...], to_pixels, shape: tuple[int, int]) -> np.ndarray:
    """Even-odd fill of ``loops`` (holes cut out), (h, w) bool."""
    mask = np.zeros(shape, dtype=bool)
    for loop in loops:
        px = to_pixels(loop)
        low = np.clip(np.floor(px.min(axis=0)).astype(int) - 1, 0, None)
        high = np.minimum(np.ceil(px.max(axis=0)).astype(int) + 2, (shape[1], shape[0]))
        if np.any(high <= low):
            continue
        stamp = Image.new("1", (int(high[0] - low[0]), int(high[1] - low[1])), 0)
        ImageDraw.Draw(stamp).polygon([tuple(p) for p in px - low], fill=1)
        mask[low[1] : high[1], low[0] : high[0]] ^= np.asarray(stamp, dtype=bool)
    return mask


def _hex(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def render_section(model: SceneModel, disc: str, size: tuple[int, int], *, typography: Typography | None = None,
                   transparent: bool = False, scale_bar: bool = True, labels: bool = True,
                   style: str = "diagram") -> np.ndarray:
    """The slice at ``disc`` as an (h, w, 3|4) uint8 picture of exactly ``size`` (w, h)."""
    return draw_section(section_drawing(model, disc, style=style), size, typography=typography,
                        transparent=transparent, scale_bar=scale_bar, labels=labels)


def _below_rows(drawing: SectionDrawing, typo: Typography, scale_bar: bool) -> tuple[int, int, int]:
    """Heights (px) of the rows under the slice: the P, the note about the bone cut, the scale bar."""
    letter = compose.line_height(compose.font(typo.body, bold=True))
    note = compose.line_height(_note_font(typo)) if drawing.notes else 0
    bar = compose.line_height(compose.font(typo.small)) + typo.body if scale_bar else 0
    return letter, note, bar


def _label_margin(drawing: SectionDrawing, typeface, width: int) -> int:
    """Width of each label column: as for 3D panels, but up to 34% of the panel so that a CSA with its
    fat fraction is not cut short (a slice is wider than tall, so it loses little height)."""
    texts = [label.text for label in drawing.labels]
    if not texts:
        return 0
    longest = max(compose.text_width(t, typeface) for t in texts)
    return int(min(longest + 1.5 * compose.line_height(typeface), max(0.34 * width, margin_width(texts, typeface, width))))


def _heading_beside(drawing: SectionDrawing, typo: Typography, margin: int) -> bool:
    """Whether the heading fits in the label column left of the slice, on the row of the R, A and L."""
    heading_font = compose.font(typo.body, bold=True)
    return bool(drawing.heading) and compose.text_width(drawing.heading, heading_font) + typo.body <= margin


def _heading_height(drawing: SectionDrawing, typo: Typography) -> int:
    return int(compose.line_height(compose.font(typo.body, bold=True)) * 1.3) if drawing.heading else 0


def _note_font(typo: Typography):
    return compose.font(max(9, typo.small * 4 // 5))


def _slice_frame(drawing: SectionDrawing, size: tuple[int, int], typo: Typography, labels: bool,
                 scale_bar: bool = True) -> tuple[Box, np.ndarray, np.ndarray, float]:
    """Picture box, slice bounds (low, high; mm) and the scale (pixels per mm) that fits them in it."""
    width, height = size
    typeface = compose.font(typo.small)
    margin = _label_margin(drawing, typeface, width) if labels else 0
    letter = compose.line_height(compose.font(typo.body, bold=True))
    top = letter + (0 if _heading_beside(drawing, typo, margin) else _heading_height(drawing, typo))
    picture = Box(margin, top, width - 2 * margin, height - top - sum(_below_rows(drawing, typo, scale_bar)))
    low, high = field_of_view(drawing)
    extent = np.maximum(high - low, 1.0)
    return picture, low, high, float(min(picture.width / extent[0], picture.height / extent[1]))


def field_of_view(drawing: SectionDrawing, margin: float = 0.04) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper corners (mm) of what the slice shows: the muscles, and the bones among them.

    Bones reaching beyond the muscles (the iliac wings at L5-S1) are cut at the edge, as by an MRI
    field of view, so that the muscles stay large enough to read. The MRI style reaches further, to
    the skin behind and beside the muscles and a strip of abdomen in front (:data:`MRI_MARGIN_MM`).
    """
    muscles = [loop for part in drawing.parts if part.kind == "muscle" for loop in part.outline]
    loops = muscles or [loop for part in drawing.parts for loop in part.loops] or [np.zeros((1, 2))]
    points = np.concatenate(loops)
    low, high = points.min(axis=0), points.max(axis=0)
    for part in drawing.parts:
        for loop in part.loops:
            centre = loop.mean(axis=0)
            if part.kind in SKELETAL_KINDS and np.all(centre >= low) and np.all(centre <= high):
                low, high = np.minimum(low, loop.min(axis=0)), np.maximum(high, loop.max(axis=0))
    if drawing.style == "mri":
        side, back, front = MRI_MARGIN_MM
        low, high = low - (side, back), high + (side, front)
        skin = getattr(drawing.body, "skin", None)
        if skin is not None:  # not beyond the body
            low, high = np.maximum(low, skin.min(axis=0) - 4.0), np.minimum(high, skin.max(axis=0) + 4.0)
        return low, high
    pad = margin * np.maximum(high - low, 1.0)
    return low - pad, high + pad


def fit_scale(drawing: SectionDrawing, size: tuple[int, int], *, typography: Typography | None = None,
              labels: bool = True, scale_bar: bool = True) -> float:
    """Pixels per mm at which :func:`draw_section` would fit ``drawing`` in a picture of ``size``.

    Panels showing slices side by side use the smallest of their fit scales, so that their
    centimetres are the same length.
    """
    return _slice_frame(drawing, size, typography or Typography.for_size(size), labels, scale_bar)[3]


class _Canvas:
    """A supersampled RGB float picture of the slice and the mapping from slice mm to its pixels."""

    def __init__(self, drawing: SectionDrawing, size: tuple[int, int], picture: Box, centre: np.ndarray,
                 scale: float, background: tuple[int, int, int]):
        self.drawing = drawing
        self.picture, self.centre, self.scale = picture, centre, scale
        self.shape = (size[1] * SUPERSAMPLE, size[0] * SUPERSAMPLE)
        self.pixels = np.empty((*self.shape, 3), dtype=np.float32)
        self.pixels[:] = background

    def to_pixels(self, loop: np.ndarray, factor: int = SUPERSAMPLE) -> np.ndarray:
        x = self.picture.left + self.picture.width / 2 - (loop[:, 0] - self.centre[0]) * self.scale
        y = self.picture.top + self.picture.height / 2 - (loop[:, 1] - self.centre[1]) * self.scale
        return np.column_stack([x, y]) * factor

    def to_slice(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Slice coordinates (mm) of supersampled pixel centres, (k, 2)."""
        x = self.centre[0] - ((cols + 0.5) / SUPERSAMPLE - self.picture.left - self.picture.width / 2) / self.scale
        y = self.centre[1] - ((rows + 0.5) / SUPERSAMPLE - self.picture.top - self.picture.height / 2) / self.scale
        return np.column_stack([x, y])

    def mask(self, loops: tuple[np.ndarray, ...]) -> np.ndarray:
        return _fill_mask(loops, self.to_pixels, self.shape)

    def paint(self, mask: np.ndarray, colour) -> None:
        self.pixels[mask] = colour


def fat_mask(canvas: _Canvas, part: SectionPart) -> tuple[np.ndarray, np.ndarray]:
    """The region inside a muscle part's boundary and the fat in it, each (H, W) bool (supersampled).

    The vacated space between the boundary and the retracted muscle is all fat; inside the muscle
    the pixels where the fat field is lowest are fat, as many as make the part's fat fraction of
    the whole region exactly (to the pixel).
    """
    region = canvas.mask(part.outline)
    if part.fat <= 0.0 and not part.boundary:
        return region, np.zeros_like(region)
    muscle = canvas.mask(part.loops) & region if part.boundary else region
    fat = region & ~muscle
    extra = int(round(part.fat * region.sum())) - int(fat.sum())
    if extra > 0:
        rows, cols = np.nonzero(muscle)
        values = fat_noise(canvas.drawing.to_space(canvas.to_slice(rows, cols)))
        chosen = fat_pixels(values, extra)
        fat[rows[chosen], cols[chosen]] = True
    return region, fat


def _grey(value: int) -> tuple[int, int, int]:
    return (value, value, value)


def _paint_diagram(canvas: _Canvas, drawing: SectionDrawing) -> list[np.ndarray]:
    """Filled parts in their colours, fat in fat yellow; returns each part's region (supersampled)."""
    regions = []
    fat_rgb = _hex(FAT_COLOUR)
    for part in drawing.parts:
        if part.kind in ("bone", "disc"):
            region = canvas.mask(part.loops)
            canvas.paint(region, BONE_FILL if part.kind == "bone" else DISC_FILL)
        else:
            region, fat = fat_mask(canvas, part)
            canvas.paint(region, _hex(part.colour))
            canvas.paint(fat, fat_rgb)
        regions.append(region)
    return regions


def _paint_mri(canvas: _Canvas, drawing: SectionDrawing) -> list[np.ndarray]:
    """The T1-weighted look (:data:`MRI_GREY`); returns each part's region (supersampled)."""
    grey = MRI_GREY
    body = drawing.body
    if body is not None:
        canvas.paint(canvas.mask((body.skin,)), _grey(grey["subcutaneous"]))
        fascia = canvas.mask((body.fascia,))
        canvas.paint(fascia, _grey(grey["wall"]))
        cavity = canvas.mask((body.cavity,))
        bones = [loop for part in drawing.parts if part.kind in ("bone", "disc") for loop in part.loops
                 if abs(loop.mean(axis=0)[0]) < 40.0]
        front = max((loop[:, 1].max() for loop in bones), default=20.0) + 6.0
        # Retroperitoneal and intermuscular fat behind the front of the spine; bowel and vessels in front.
        canvas.paint(cavity, _grey(grey["intermuscular"]))
        # In front of the spine: bowel and vessels (mottled, mid grey), blending from the
        # retroperitoneal fat over 25 mm.
        rows, cols = np.nonzero(cavity)
        ahead = canvas.to_slice(rows, cols)[:, 1] - front
        keep = ahead > 0.0
        rows, cols, ahead = rows[keep], cols[keep], ahead[keep]
        if len(rows):
            region = np.zeros(canvas.shape, bool)
            region[rows, cols] = True
            blend = np.clip(ahead / 25.0, 0.0, 1.0)[:, None]
            tissue = grey["viscera"] + 14.0 * _texture(canvas, region)
            canvas.pixels[rows, cols] = (1.0 - blend) * grey["intermuscular"] + blend * tissue[:, None]
    regions = []
    for part in drawing.parts:
        if part.kind == "disc":  # annulus a little darker than the nucleus
            region = canvas.mask(part.loops)
            canvas.paint(region, _grey(grey["disc"] - 14))
            canvas.paint(_erode(region, 3.0 * canvas.scale * SUPERSAMPLE), _grey(grey["disc"]))
        elif part.kind == "bone":
            region = canvas.mask(part.loops)
            canvas.paint(region, _grey(grey["cortex"]))
            inner = _erode(region, CORTEX_MM * canvas.scale * SUPERSAMPLE)
            canvas.paint(inner, _grey(grey["marrow"]))
            canvas.paint(_holes(part, canvas), _grey(grey["canal"]))
        else:
            region, fat = fat_mask(canvas, part)
            # Muscle is not flat on MRI: fascicles and thin septa give it a faint grain.
            canvas.pixels[region] = (grey["muscle"] + 4.0 * _texture(canvas, region, 1.4))[:, None]
            canvas.paint(fat, _grey(grey["fat"]))
        regions.append(region)
    return regions


def _texture(canvas: _Canvas, mask: np.ndarray, zoom: float = 0.8) -> np.ndarray:
    """The seeded field under ``mask``, scaled by ``zoom`` (below 1 coarser, above 1 finer), values of its pixels."""
    from scipy import ndimage

    rows, cols = np.nonzero(mask)
    if not len(rows):
        return np.zeros(0)
    step = max(1, int(round(min(4.0, 0.5 * canvas.scale / zoom)))) * SUPERSAMPLE
    r0, c0 = rows.min(), cols.min()
    grid_r = np.arange(r0, rows.max() + step, step)
    grid_c = np.arange(c0, cols.max() + step, step)
    gr, gc = np.meshgrid(grid_r, grid_c, indexing="ij")
    points = canvas.to_slice(gr.ravel(), gc.ravel()) * zoom
    coarse = fat_noise(canvas.drawing.to_space(points)).reshape(gr.shape)
    return ndimage.map_coordinates(coarse, [(rows - r0) / step, (cols - c0) / step], order=1, mode="nearest")


def _erode(mask: np.ndarray, pixels: float) -> np.ndarray:
    from scipy import ndimage

    steps = max(1, int(round(pixels)))
    return ndimage.binary_erosion(mask, iterations=steps)


def _holes(part: SectionPart, canvas: _Canvas) -> np.ndarray:
    """The canal: holes in a bone's section (loops running against its largest loop), (H, W) bool."""
    areas = [_shoelace(loop) for loop in part.loops]
    outer = np.sign(max(areas, key=abs)) if areas else 1.0
    holes = tuple(loop for loop, area in zip(part.loops, areas) if np.sign(area) != outer)
    return canvas.mask(holes) if holes else np.zeros(canvas.shape, bool)


def _shoelace(loop: np.ndarray) -> float:
    x, y = loop[:, 0], loop[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def draw_section(drawing: SectionDrawing, size: tuple[int, int], *, typography: Typography | None = None,
                 transparent: bool = False, scale_bar: bool = True, labels: bool = True,
                 scale: float | None = None, scale_bar_room: bool | None = None) -> np.ndarray:
    """Pixels of a :class:`SectionDrawing`: filled parts, fat, outlines, CSA labels, orientation, scale bar.

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
    centre = 0.5 * (low + high)
    scale = min(fit, scale) if scale else fit  # pixels per mm
    mri = drawing.style == "mri"
    canvas = _Canvas(drawing, size, picture, centre, scale, _grey(MRI_GREY["air"]) if mri else (255, 255, 255))
    regions = (_paint_mri if mri else _paint_diagram)(canvas, drawing)
    image = Image.fromarray(np.clip(canvas.pixels, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    line_width = max(2, SUPERSAMPLE * typo.small // 14)
    for part in drawing.parts:
        if mri:  # the epimysium and fascia: a thin dark line, about 0.5 mm
            edge, loops = _grey(MRI_GREY["fascia"]), (part.outline if part.kind == "muscle" else ())
            line = int(round(0.3 * scale * SUPERSAMPLE))
        else:
            edge, loops, line = (MUSCLE_EDGE if part.kind == "muscle" else BONE_EDGE), part.outline, line_width
        for loop in loops:
            px = canvas.to_pixels(loop)
            draw.line([tuple(p) for p in np.vstack([px, px[:1]])], fill=edge, width=max(1, line), joint="curve")
        if part.boundary and not mri:  # the retracted muscle inside its kept boundary, thinner
            for loop in part.loops:
                px = canvas.to_pixels(loop)
                draw.line([tuple(p) for p in np.vstack([px, px[:1]])], fill=MUSCLE_EDGE,
                          width=max(1, line_width // 2), joint="curve")
    index_image = np.full((height, width), -1, dtype=np.int32)
    for index, region in enumerate(regions):
        index_image[region[SUPERSAMPLE // 2 :: SUPERSAMPLE, SUPERSAMPLE // 2 :: SUPERSAMPLE]] = index
    corners = canvas.to_pixels(np.array([low, high]), 1)
    left, right = max(picture.left, int(corners[:, 0].min())), min(picture.right, int(np.ceil(corners[:, 0].max())))
    top, bottom = max(picture.top, int(corners[:, 1].min())), min(picture.bottom, int(np.ceil(corners[:, 1].max())))
    drawn = Box(left, top, right - left, bottom - top)
    # Only the field of view is shown: bones reaching out of it are cut at its edge.
    image = image.resize(size, Image.Resampling.BOX).crop((drawn.left, drawn.top, drawn.right, drawn.bottom))
    outside = np.ones((height, width), dtype=bool)
    outside[drawn.top : drawn.bottom, drawn.left : drawn.right] = False
    index_image[outside] = -1
    result = Image.new("RGBA", size, (255, 255, 255, 0 if transparent else 255))
    result.paste(image.convert("RGBA"), (drawn.left, drawn.top))
    if transparent and not mri:  # nothing drawn: see-through
        alpha = np.asarray(result).copy()
        blank = np.all(alpha[..., :3] == 255, axis=-1)
        alpha[..., 3] = np.where(blank, 0, 255)
        result = Image.fromarray(alpha, "RGBA")
    image = result if transparent else result.convert("RGB")
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
        placed = layout_labels(chosen, picture, typeface, margin, (drawn.left, drawn.right))
        draw_labels(draw, untangle_section_labels(placed, typeface), typeface)
    _draw_orientation(draw, drawn, size, typo)
    if drawing.heading:  # just over the slice's A, centred on it
        heading_font = compose.font(typo.body, bold=True)
        text = compose.fit_line(drawing.heading, heading_font, width)
        step = compose.line_height(heading_font)
        if _heading_beside(drawing, typo, margin):  # left of the R, on its row
            x, y = max(0, drawn.left - typo.body - compose.text_width(text, heading_font)), max(0, drawn.top - step)
        else:
            x = max(0, drawn.left + drawn.width // 2 - compose.text_width(text, heading_font) // 2)
            y = max(0, drawn.top - step - _heading_height(drawing, typo))
        draw.text((x, y), text, font=heading_font, fill=compose.TEXT_COLOUR)
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


def untangle_section_labels(layout: LabelLayout, typeface) -> LabelLayout:
    """Reassign the labels of each margin to its slots so that no leader line crosses another or
    passes over another label's anchor dot (exhaustive over up to 7 labels per side, else unchanged)."""
    radius = max(3.0, typeface.size / 6 + 2)
    placed: list[PlacedLabel] = []
    for side in ("left", "right"):
        items = [label for label in layout.placed if label.side == side]
        if len(items) < 2 or len(items) > 7:
            placed += items
            continue
        slots = [label.start for label in items]
        best, best_cost = None, None
        for order in itertools.permutations(range(len(items))):
            cost = _tangle_cost([(slots[k], items[i].anchor) for k, i in enumerate(order)], radius)
            cost += 1e-3 * sum(abs(slots[k][1] - items[i].anchor[1]) for k, i in enumerate(order))
            if best_cost is None or cost < best_cost:
                best, best_cost = order, cost
        for k, i in enumerate(best):
            item, slot = items[i], items[k]
            width = compose.text_width(item.text, typeface)
            column = slot.box.right if side == "left" else slot.box.left
            left = column - width if side == "left" else column
            placed.append(PlacedLabel(item.text, item.anchor, side, Box(left, slot.box.top, width, slot.box.height),
                                      slot.start))
    return LabelLayout(tuple(placed), layout.unplaced)


def _tangle_cost(lines: list[tuple[tuple[float, float], tuple[float, float]]], radius: float) -> float:
    """Crossings between leader lines plus lines passing within ``radius`` of another line's anchor."""
    cost = 0.0
    for (a, b), (c, d) in itertools.combinations(lines, 2):
        cost += segments_cross(a, b, c, d)
        cost += _near_segment(d, a, b, radius) + _near_segment(b, c, d, radius)
    return cost


def _near_segment(point, start, end, radius: float) -> bool:
    p, a, b = (np.asarray(v, float) for v in (point, start, end))
    ab = b - a
    t = float(np.clip(np.dot(p - a, ab) / max(np.dot(ab, ab), 1e-9), 0.0, 1.0))
    return bool(np.linalg.norm(a + t * ab - p) < radius)


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


def section_figure(model: SceneModel, disc: str, size: tuple[int, int], *, style: str = "diagram",
                   labels: tuple[str, ...] | None = None, title: str = "", caption: str = "",
                   scale_bar: bool = True, transparent: bool = False) -> np.ndarray:
    """A one-slice figure (``dorsum shot --section``): the slice with an optional title and caption.

    ``labels``: None for no CSA labels, ``()`` for every shown muscle, else the muscles or layers to label.
    """
    label_muscles = None
    if labels:
        label_muscles = tuple(dict.fromkeys(model.atlas.structure(sid).muscle for name in labels
                                            for sid in model.resolve(name)))
    drawing = section_drawing(model, disc, label_muscles, style=style)
    layout = compose.figure_layout(size, 1, title=title, caption=caption)
    box = layout.panels[0]
    canvas = compose.blank_canvas(size, transparent)
    compose.paste_panel(canvas, draw_section(drawing, box.size, typography=layout.typography, transparent=transparent,
                                             scale_bar=scale_bar, labels=labels is not None), box)
    return compose.finish_figure(canvas, layout, title=title, caption=caption)
