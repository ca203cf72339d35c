"""Leader-line labels: anchors on what is visible, labels in the margins, no overlaps.

This is the one label engine of Dorsum: lesson figures, ``dorsum shot --labels``, the viewer's saved
screenshots and its live labels (key N) all decide here which structures get a label and where.
The decisions are pure: they work on a 2D *structure-index image* (which structure the camera sees
at each pixel, -1 for none; :class:`viewer.figures.figure.StructureIndexRenderer` makes it), so an
anchor is always on a pixel where its structure is the visible surface, and a structure hidden
behind another gets no label. Labels sit in margins left and right of the picture, never over the
body, so they cannot cover the muscle they name; on each side they keep the vertical order of their
anchors, so leader lines do not cross one another. Drawing is left to the caller (PIL here, VTK
2D actors in the viewer).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import ImageDraw, ImageFont

from viewer.figures.compose import Box, fit_line, line_height, text_width
from viewer.model import SceneModel

LEADER_COLOUR = (40, 40, 40)
HALO_COLOUR = (255, 255, 255)


@dataclass(frozen=True)
class Anchor:
    """A point on the visible surface of a structure, in pixels, and the visible area around it.

    Attributes
    ----------
    index : structure index in the index image.
    x, y : pixel position (x right, y down) of the point deepest inside the visible region.
    area : visible pixels of the structure.
    """

    index: int
    x: float
    y: float
    area: int


@dataclass(frozen=True)
class PlacedLabel:
    """A label placed in a margin, with its leader line from ``start`` to the anchor."""

    text: str
    anchor: tuple[float, float]
    side: str
    box: Box
    start: tuple[float, float]


@dataclass(frozen=True)
class LabelLayout:
    """Placed labels and the texts that found no place (reported, never dropped silently)."""

    placed: tuple[PlacedLabel, ...]
    unplaced: tuple[str, ...]


def find_anchors(index_image: np.ndarray, indices: Sequence[int], min_area: int = 30,
                 min_depth: float = 2.0) -> dict[int, Anchor]:
    """Anchor of each structure index that shows at least ``min_area`` pixels.

    A structure whose visible part is nowhere ``min_depth`` pixels from its edge (a sliver peeking out
    from under another) gets no anchor: a label on it would point at the wrong muscle.

    Parameters
    ----------
    index_image : (h, w) int array; pixel value = structure index, -1 where nothing is drawn.
    indices : the structure indices to anchor.

    The anchor is the visible pixel farthest from the region's edge, so the leader line ends clearly
    inside the muscle, not on a boundary it shares with a neighbour.
    """
    from scipy import ndimage  # here, not at the top: 0.4 s of the viewer's start, before any label is asked for

    anchors: dict[int, Anchor] = {}
    # Each structure's distance transform runs over its bounding box only (the padded box's border
    # is background, so depths are those of the whole image): the live view does this per camera move.
    boxes = ndimage.find_objects(np.where(index_image >= 0, index_image + 1, 0))
    for index in indices:
        if index >= len(boxes) or boxes[index] is None:
            continue
        rows, cols = boxes[index]
        mask = index_image[rows, cols] == index
        area = int(mask.sum())
        if area < min_area:
            continue
        depth = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
        if depth.max() < min_depth:
            continue
        y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
        anchors[index] = Anchor(index, float(x + cols.start) + 0.5, float(y + rows.start) + 0.5, area)
    return anchors


def label_targets(model: SceneModel, names: Sequence[str] = (), label_all: bool = False,
                  texts_by_id: Mapping[str, str] | None = None) -> dict[str, tuple[str, ...]]:
    """Label text -> ids of the shown structures it names.

    With ``label_all`` every shown muscle is named; otherwise the structures of ``names`` (layers,
    muscles, groups or ids) that are shown. Left and right structures of one muscle share a name,
    so they share one label. ``texts_by_id`` replaces the name of some structures (a quiz handout's
    numbered pointers).
    """
    atlas = model.atlas
    if label_all:
        ids = [sid for sid in model.visible_ids() if atlas.structure(sid).kind == "muscle"]
    else:
        ids = [sid for name in names for sid in model.resolve(name) if model.is_visible(sid)]
    texts: dict[str, list[str]] = {}
    replaced = texts_by_id or {}
    for sid in dict.fromkeys(ids):
        texts.setdefault(replaced.get(sid, atlas.structure(sid).name), []).append(sid)
    return {text: tuple(sids) for text, sids in texts.items()}


def place_visible_labels(index_image: np.ndarray, structure_ids: Sequence[str],
                         targets: Mapping[str, Sequence[str]], view: Box, picture: Box,
                         typeface: ImageFont.FreeTypeFont, margin: int) -> tuple[LabelLayout, tuple[str, ...]]:
    """Labels of ``targets`` anchored where their structures are what the camera sees.

    Parameters
    ----------
    index_image : (h, w) int; index into ``structure_ids`` of the structure seen at each pixel, -1 for none.
    structure_ids : the atlas' structure ids, in index order.
    targets : label text -> structure ids it names (:func:`label_targets`).
    view : where ``index_image`` lies in the output picture (pixels, y down); its size is the image's.
    picture : the part of the output the labels must stay out of; the columns are beside it.
    typeface, margin : label font and column width (pixels).

    Returns
    -------
    The layout (output pixels) and the texts that got no anchor because too little of their
    structures is visible (callers report them; nothing is dropped silently).
    """
    order = {sid: i for i, sid in enumerate(structure_ids)}
    height, width = index_image.shape
    anchors = find_anchors(index_image, [order[sid] for sids in targets.values() for sid in sids],
                           min_area=max(30, int(4e-4 * width * height)),
                           min_depth=max(2.0, 0.004 * min(width, height)))
    columns = np.flatnonzero((index_image >= 0).any(axis=0))
    body = (view.left + float(columns.min()), view.left + float(columns.max())) if len(columns) else None
    candidates = {}
    for text, sids in targets.items():
        found = [anchors[order[sid]] for sid in sids if order[sid] in anchors]
        if found:
            candidates[text] = [Anchor(a.index, a.x + view.left, a.y + view.top, a.area) for a in found]
    hidden = tuple(text for text in targets if text not in candidates)
    chosen = choose_anchors(candidates, picture.left + picture.width / 2)
    return layout_labels(chosen, picture, typeface, margin, body), hidden


def choose_anchors(candidates: Mapping[str, Sequence[Anchor]], centre_x: float) -> list[tuple[str, Anchor, str]]:
    """Pick one anchor per label text and the margin it goes to ("left" or "right").

    ``candidates`` maps a label text (e.g. "Multifidus") to the anchors of its structures (e.g. left and
    right multifidus). Texts with one candidate go to its side; for bilateral ones the side with fewer
    labels so far is taken, which spreads labels evenly over both margins.
    """
    chosen: list[tuple[str, Anchor, str]] = []
    counts = {"left": 0, "right": 0}

    def side_of(anchor: Anchor) -> str:
        return "left" if anchor.x < centre_x else "right"

    single = [(text, list(options)) for text, options in candidates.items() if len(options) == 1]
    several = [(text, list(options)) for text, options in candidates.items() if len(options) > 1]
    for text, options in single:
        side = side_of(options[0])
        chosen.append((text, options[0], side))
        counts[side] += 1
    for text, options in several:
        by_side: dict[str, Anchor] = {}
        for anchor in sorted(options, key=lambda a: -a.area):
            by_side.setdefault(side_of(anchor), anchor)
        side = min(by_side, key=lambda s: (counts[s], -by_side[s].area))
        chosen.append((text, by_side[side], side))
        counts[side] += 1
    return chosen


def stack_positions(desired: Sequence[float], height: float, gap: float, low: float, high: float) -> list[float]:
    """Tops of boxes of ``height``, as near as possible to ``desired`` tops, in order, not overlapping.

    Boxes stay in their given order, ``gap`` apart, within [low, high] when they fit (else they run over
    ``high``, and the caller reports the overflow).
    """
    tops: list[float] = []
    for want in desired:
        top = max(want, low)
        if tops:
            top = max(top, tops[-1] + height + gap)
        tops.append(top)
    for i in range(len(tops) - 1, -1, -1):
        limit = high - height if i == len(tops) - 1 else tops[i + 1] - height - gap
        tops[i] = max(low + i * (height + gap), min(tops[i], limit))
    return tops


def layout_labels(chosen: Sequence[tuple[str, Anchor, str]], picture: Box, typeface: ImageFont.FreeTypeFont,
                  margin: int, body: tuple[float, float] | None = None) -> LabelLayout:
    """Place labels in the ``margin``-pixel columns left and right of ``picture``.

    Labels on each side are sorted by their anchor's height and stacked without overlap; a label that
    does not fit its column's height moves to the other column if there is room, else it is returned
    in ``unplaced``. With ``body`` (the leftmost and rightmost drawn pixel columns) the columns move in
    to just beside the body, where the picture is empty, so leader lines stay short.
    """
    height = line_height(typeface)
    gap = max(2, height // 4)
    capacity = max(0, int((picture.height + gap) // (height + gap)))
    sides: dict[str, list[tuple[str, Anchor]]] = {"left": [], "right": []}
    for text, anchor, side in chosen:
        sides[side].append((text, anchor))
    for side, other in (("left", "right"), ("right", "left")):
        while len(sides[side]) > capacity and len(sides[other]) < capacity:
            centre = picture.left + picture.width / 2
            moved = min(sides[side], key=lambda item: abs(item[1].x - centre))
            sides[side].remove(moved)
            sides[other].append(moved)
    placed: list[PlacedLabel] = []
    unplaced: list[str] = []
    for side, items in sides.items():
        items.sort(key=lambda item: item[1].y)
        unplaced += [text for text, _ in items[capacity:]]
        items = items[:capacity]
        tops = stack_positions([a.y - height / 2 for _, a in items], height, gap, picture.top,
                               picture.bottom)
        texts = [fit_line(text, typeface, margin - 8) for text, _ in items]
        widest = max((text_width(t, typeface) for t in texts), default=0)
        if side == "left":
            column = picture.left - 4.0
            if body is not None:
                column = max(body[0] - height, picture.left - margin + widest + 4.0)
        else:
            column = picture.right + 4.0
            if body is not None:
                column = min(body[1] + height, picture.right + margin - widest - 4.0)
        edge = column + 2 if side == "left" else column - 2
        items = untangle([(edge, top + height / 2) for top in tops], items)
        for (text, anchor), top in zip(items, tops):
            text = fit_line(text, typeface, margin - 8)
            width = text_width(text, typeface)
            left = column - width if side == "left" else column
            start = (edge, top + height / 2)
            box = Box(int(round(left)), int(round(top)), int(width), int(height))
            placed.append(PlacedLabel(text, (anchor.x, anchor.y), side, box, start))
    return LabelLayout(tuple(placed), tuple(unplaced))


def segments_cross(p1: tuple[float, float], p2: tuple[float, float], q1: tuple[float, float],
                   q2: tuple[float, float]) -> bool:
    """Whether the segments p1-p2 and q1-q2 cross (touching ends do not count)."""
    def turn(a, b, c) -> float:
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    d1, d2 = turn(q1, q2, p1), turn(q1, q2, p2)
    d3, d4 = turn(p1, p2, q1), turn(p1, p2, q2)
    return d1 * d2 < 0 and d3 * d4 < 0


def untangle(starts: Sequence[tuple[float, float]], items: list[tuple[str, Anchor]]) -> list[tuple[str, Anchor]]:
    """Reassign labels to the stacked slots ``starts`` so that neighbouring leader lines do not cross.

    Sorting by anchor height alone lets a line to a far anchor cross its neighbour's; swapping such
    neighbours removes the crossing (a few passes of adjacent swaps, like a bubble sort).
    """
    items = list(items)
    for _ in range(len(items)):
        swapped = False
        for i in range(len(items) - 1):
            a, b = items[i][1], items[i + 1][1]
            if segments_cross(starts[i], (a.x, a.y), starts[i + 1], (b.x, b.y)):
                items[i], items[i + 1] = items[i + 1], items[i]
                swapped = True
        if not swapped:
            break
    return items


def margin_width(texts: Sequence[str], typeface: ImageFont.FreeTypeFont, panel_width: int) -> int:
    """Width of each label column: the longest label plus room for the leader line, at most 30% of the panel."""
    if not texts:
        return 0
    longest = max(text_width(t, typeface) for t in texts)
    return int(min(longest + 1.5 * line_height(typeface), 0.3 * panel_width))


def draw_labels(draw: ImageDraw.ImageDraw, layout: LabelLayout, typeface: ImageFont.FreeTypeFont,
                offset: tuple[int, int] = (0, 0)) -> None:
    """Draw leader lines (with a white halo so they read on any muscle), anchor dots and label texts."""
    dx, dy = offset
    width = max(1, typeface.size // 12)
    radius = max(2, typeface.size // 6)
    for label in layout.placed:
        points = [(label.start[0] + dx, label.start[1] + dy), (label.anchor[0] + dx, label.anchor[1] + dy)]
        draw.line(points, fill=HALO_COLOUR, width=width + 2)
        draw.line(points, fill=LEADER_COLOUR, width=width)
        x, y = points[1]
        draw.ellipse([x - radius - 1, y - radius - 1, x + radius + 1, y + radius + 1], fill=HALO_COLOUR)
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=LEADER_COLOUR)
    for label in layout.placed:
        box = label.box
        x = box.left + dx if label.side == "right" else box.right + dx - text_width(label.text, typeface)
        draw.text((x, box.top + dy), label.text, font=typeface, fill=LEADER_COLOUR)
