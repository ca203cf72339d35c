"""Composing figures from pixel arrays: grid of panels, captions, title, legend and scale bar.

Everything here works on numpy images and Pillow; nothing renders 3D. Text uses the DejaVu Sans font
shipped in ``viewer/fonts`` so that a figure looks the same on every machine.

The layout is computed first (:func:`figure_layout`, a pure function of the figure's size and text),
so that each panel can be rendered at exactly the size of its cell and pasted without resampling.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT_DIR = Path(__file__).resolve().parent.parent / "fonts"
TEXT_COLOUR = (34, 34, 34)
MUTED_TEXT_COLOUR = (90, 90, 90)
WHITE = (255, 255, 255)


@dataclass(frozen=True)
class Box:
    """A pixel rectangle: left, top, width, height (x right, y down)."""

    left: int
    top: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.left + self.width

    @property
    def bottom(self) -> int:
        return self.top + self.height

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height


@dataclass(frozen=True)
class LegendEntry:
    """One row of a layer legend: a colour swatch and its name."""

    name: str
    colour: str


@dataclass(frozen=True)
class Typography:
    """Font sizes in pixels, scaled to the figure so text reads the same at any export size."""

    title: int
    body: int
    small: int

    @classmethod
    def for_size(cls, size: tuple[int, int]) -> Typography:
        # 2.6% of the shorter side: ~31 px on a 1600x1200 slide, ~12 px on a 320x240 thumbnail.
        body = max(11, round(min(size) * 0.026))
        return cls(title=round(body * 1.35), body=body, small=max(10, round(body * 0.82)))


@dataclass(frozen=True)
class FigureLayout:
    """Where things go in a figure: title, panel picture boxes, panel caption boxes, legend, caption."""

    size: tuple[int, int]
    typography: Typography
    title: Box | None
    panels: tuple[Box, ...]
    panel_captions: tuple[Box | None, ...]
    legend: Box | None
    caption: Box | None
    caption_lines: tuple[str, ...]
    legend_rows: tuple[tuple[LegendEntry, ...], ...]
    title_lines: tuple[str, ...] = ()
    credit: Box | None = None
    credit_lines: tuple[str, ...] = ()


@lru_cache(maxsize=32)
def font(size_px: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """DejaVu Sans (regular or bold) at ``size_px`` pixels."""
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return ImageFont.truetype(str(FONT_DIR / name), size=int(size_px))


def text_width(text: str, typeface: ImageFont.FreeTypeFont) -> int:
    return int(math.ceil(typeface.getlength(text)))


def line_height(typeface: ImageFont.FreeTypeFont) -> int:
    ascent, descent = typeface.getmetrics()
    return int(ascent + descent)


def wrap_text(text: str, typeface: ImageFont.FreeTypeFont, max_width: int) -> tuple[str, ...]:
    """Break ``text`` into lines no wider than ``max_width`` pixels (words longer than that stand alone)."""
    lines: list[str] = []
    for paragraph in str(text).splitlines() or [""]:
        current = ""
        for word in paragraph.split():
            trial = f"{current} {word}".strip()
            if current and text_width(trial, typeface) > max_width:
                lines.append(current)
                current = word
            else:
                current = trial
        lines.append(current)
    return tuple(lines)


def legend_rows(entries: Sequence[LegendEntry], typeface: ImageFont.FreeTypeFont,
                max_width: int) -> tuple[tuple[LegendEntry, ...], ...]:
    """Split legend entries into rows that fit ``max_width`` pixels."""
    rows: list[list[LegendEntry]] = [[]]
    used = 0
    for entry in entries:
        width = legend_entry_width(entry, typeface)
        if rows[-1] and used + width > max_width:
            rows.append([])
            used = 0
        rows[-1].append(entry)
        used += width
    return tuple(tuple(row) for row in rows if row)


def legend_entry_width(entry: LegendEntry, typeface: ImageFont.FreeTypeFont) -> int:
    swatch = line_height(typeface)
    return swatch + swatch // 3 + text_width(entry.name, typeface) + swatch


def credit_size(typography: Typography) -> int:
    """Pixel size of the data credit line: small print, still legible on a projected slide."""
    return max(9, round(typography.small * 0.7))


def figure_layout(size: tuple[int, int], n_panels: int, *, columns: int | None = None, title: str = "",
                  caption: str = "", panel_captions: Sequence[str] = (),
                  legend: Sequence[LegendEntry] = (), credit: str = "") -> FigureLayout:
    """Lay out a figure of ``size`` (w, h) pixels with ``n_panels`` panels in a grid.

    Parameters
    ----------
    columns : panels per row (default: all in one row).
    panel_captions : one caption per panel ("" for none); each gets a band under its panel.
    legend : entries of a layer legend drawn in a band under the panels.
    credit : the data credit, in small type in a band at the very bottom ("" for none).
    """
    width, height = size
    typo = Typography.for_size(size)
    pad = max(4, typo.body // 2)
    columns = max(1, min(columns or n_panels, n_panels))
    rows = math.ceil(n_panels / columns)
    top = pad // 2
    title_box, title_lines = None, ()
    if title:
        title_lines = wrap_text(title, font(typo.title, bold=True), width - 2 * pad)
        title_h = len(title_lines) * line_height(font(typo.title, bold=True)) + pad
        title_box = Box(0, top, width, title_h)
        top += title_h
    bottom = height - pad // 2
    credit_box, credit_lines = None, ()
    if credit:
        credit_lines = wrap_text(credit, font(credit_size(typo)), width - 2 * pad)
        credit_h = len(credit_lines) * line_height(font(credit_size(typo))) + pad // 2
        bottom -= credit_h
        credit_box = Box(0, bottom, width, credit_h)
    caption_box, caption_lines = None, ()
    if caption:
        caption_lines = wrap_text(caption, font(typo.body), width - 2 * pad)
        caption_h = len(caption_lines) * line_height(font(typo.body)) + pad
        bottom -= caption_h
        caption_box = Box(0, bottom, width, caption_h)
    legend_box, rows_of_legend = None, ()
    if legend:
        rows_of_legend = legend_rows(legend, font(typo.small), width - 2 * pad)
        legend_h = len(rows_of_legend) * (line_height(font(typo.small)) + pad // 2) + pad // 2
        bottom -= legend_h
        legend_box = Box(0, bottom, width, legend_h)
    captions = list(panel_captions) + [""] * (n_panels - len(panel_captions))
    band = line_height(font(typo.body, bold=True)) + pad // 2 if any(captions) else 0
    gap = pad if n_panels > 1 else 0
    cell_w = (width - gap * (columns - 1)) // columns
    cell_h = (bottom - top - gap * (rows - 1)) // rows
    if cell_w < 16 or cell_h - band < 16:
        raise ValueError(f"figure of {width}x{height} px is too small for {n_panels} panels and its text")
    panels, caption_boxes = [], []
    for index in range(n_panels):
        row, column = divmod(index, columns)
        left = column * (cell_w + gap)
        cell_top = top + row * (cell_h + gap)
        panels.append(Box(left, cell_top, cell_w, cell_h - band))
        caption_boxes.append(Box(left, cell_top + cell_h - band, cell_w, band) if band else None)
    return FigureLayout(size, typo, title_box, tuple(panels), tuple(caption_boxes), legend_box, caption_box,
                        caption_lines, rows_of_legend, title_lines, credit_box, credit_lines)


def blank_canvas(size: tuple[int, int], transparent: bool) -> Image.Image:
    if transparent:
        return Image.new("RGBA", size, (255, 255, 255, 0))
    return Image.new("RGB", size, WHITE)


def _hex_rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def draw_centred_text(draw: ImageDraw.ImageDraw, box: Box, lines: Sequence[str],
                      typeface: ImageFont.FreeTypeFont, colour: tuple[int, int, int] = TEXT_COLOUR) -> None:
    """Draw ``lines`` centred horizontally in ``box``, from its top, clipped to nothing (caller sized it)."""
    step = line_height(typeface)
    block = step * len(lines)
    y = box.top + max(0, (box.height - block) // 2)
    for line in lines:
        x = box.left + (box.width - text_width(line, typeface)) // 2
        draw.text((x, y), line, font=typeface, fill=colour)
        y += step


def draw_legend(draw: ImageDraw.ImageDraw, layout: FigureLayout) -> None:
    """Draw the legend rows centred in the legend band: a swatch with a thin outline, then the name."""
    if layout.legend is None:
        return
    typeface = font(layout.typography.small)
    step = line_height(typeface)
    pad = max(4, layout.typography.body // 2)
    y = layout.legend.top + pad // 2
    for row in layout.legend_rows:
        total = sum(legend_entry_width(entry, typeface) for entry in row) - step
        x = layout.legend.left + (layout.legend.width - total) // 2
        for entry in row:
            inset = step // 6
            draw.rectangle([x, y + inset, x + step - 2 * inset, y + step - inset], fill=_hex_rgb(entry.colour),
                           outline=MUTED_TEXT_COLOUR)
            x += step + step // 3
            draw.text((x, y), entry.name, font=typeface, fill=TEXT_COLOUR)
            x += text_width(entry.name, typeface) + step
        y += step + pad // 2


def nice_length(max_mm: float) -> float:
    """The largest of 1, 2, 5 x 10^k mm not above ``max_mm`` (a scale bar length that reads well)."""
    if max_mm <= 0:
        raise ValueError("max_mm must be positive")
    power = 10.0 ** math.floor(math.log10(max_mm))
    return max(step * power for step in (1.0, 2.0, 5.0) if step * power <= max_mm)


def draw_scale_bar(image: Image.Image, box: Box, mm_per_pixel: float, typography: Typography) -> None:
    """Draw a scale bar with its length in mm (or cm) in the lower-left corner of ``box``.

    ``mm_per_pixel`` is the picture scale where the bar applies (for a perspective view, the plane
    through the focal point).
    """
    draw = ImageDraw.Draw(image)
    typeface = font(typography.small)
    length_mm = nice_length(0.22 * box.width * mm_per_pixel)
    length_px = round(length_mm / mm_per_pixel)
    label = f"{length_mm / 10:g} cm" if length_mm >= 10 else f"{length_mm:g} mm"
    margin = max(6, typography.body // 2)
    thickness = max(2, typography.small // 5)
    x0 = box.left + margin
    y0 = box.bottom - margin - thickness
    draw.rectangle([x0, y0, x0 + length_px, y0 + thickness], fill=TEXT_COLOUR)
    for x in (x0, x0 + length_px):
        draw.rectangle([x, y0 - 2 * thickness, x + thickness - 1, y0 + thickness], fill=TEXT_COLOUR)
    text_y = y0 - 2 * thickness - line_height(typeface)
    draw.text((x0 + (length_px - text_width(label, typeface)) // 2, text_y), label, font=typeface, fill=TEXT_COLOUR)


def paste_panel(canvas: Image.Image, pixels: np.ndarray, box: Box) -> None:
    """Paste an (h, w, 3|4) uint8 panel into ``box`` (its size must equal the box's)."""
    height, width = pixels.shape[:2]
    if (width, height) != box.size:
        raise ValueError(f"panel is {width}x{height} px but its box is {box.width}x{box.height}")
    mode = "RGBA" if pixels.shape[2] == 4 else "RGB"
    panel = Image.fromarray(np.ascontiguousarray(pixels), mode)
    if canvas.mode == "RGBA":
        canvas.alpha_composite(panel.convert("RGBA"), (box.left, box.top))
    else:
        canvas.paste(panel.convert("RGB"), (box.left, box.top))


def frame_if_cut(canvas: Image.Image, pixels: np.ndarray, box: Box) -> None:
    """Outline ``box`` thinly when the picture in it is cut by its edges (a close-up).

    A body cut off by an invisible edge looks like a mistake; a framed picture looks intended.
    """
    edges = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]]).astype(int)
    drawn = edges[:, 3] > 0 if pixels.shape[2] == 4 else np.any(edges < 250, axis=1)
    if drawn.mean() > 0.02:
        ImageDraw.Draw(canvas).rectangle([box.left, box.top, box.right - 1, box.bottom - 1], outline=(170, 170, 170),
                                         width=max(1, box.height // 500))


def finish_figure(canvas: Image.Image, layout: FigureLayout, *, title: str = "", caption: str = "",
                  panel_captions: Sequence[str] = ()) -> np.ndarray:
    """Draw the title, panel captions, legend and caption of ``layout`` and return the pixels."""
    draw = ImageDraw.Draw(canvas)
    typo = layout.typography
    if layout.title is not None and title:
        draw_centred_text(draw, layout.title, layout.title_lines or [title], font(typo.title, bold=True))
    for box, text in zip(layout.panel_captions, panel_captions):
        if box is not None and text:
            typeface = font(typo.body, bold=True)
            lines = wrap_text(text, typeface, box.width)[:1]
            draw_centred_text(draw, box, [fit_line(lines[0], typeface, box.width)], typeface)
    draw_legend(draw, layout)
    if layout.caption is not None:
        draw_centred_text(draw, layout.caption, layout.caption_lines, font(typo.body), MUTED_TEXT_COLOUR)
    if layout.credit is not None:
        draw_centred_text(draw, layout.credit, layout.credit_lines, font(credit_size(typo)), MUTED_TEXT_COLOUR)
    return np.asarray(canvas)


def fit_line(text: str, typeface: ImageFont.FreeTypeFont, max_width: int) -> str:
    """``text`` shortened with an ellipsis until it fits ``max_width`` pixels."""
    if text_width(text, typeface) <= max_width:
        return text
    while text and text_width(text + "…", typeface) > max_width:
        text = text[:-1]
    return text.rstrip() + "…"
