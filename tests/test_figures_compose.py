"""Figure layout: panels, captions, title, legend and caption fit the figure and never overlap."""

from __future__ import annotations

import itertools

import pytest

from viewer.figures import compose
from viewer.figures.compose import LegendEntry, figure_layout, nice_length


def boxes_of(layout):
    boxes = [layout.title, layout.legend, layout.caption, *layout.panels, *layout.panel_captions]
    return [b for b in boxes if b is not None]


@pytest.mark.parametrize("size,n,columns", [((1600, 1200), 1, None), ((2400, 900), 3, None), ((1600, 1600), 3, 1),
                                            ((800, 800), 4, 2), ((320, 240), 2, None)])
def test_layout_boxes_fit_and_do_not_overlap(size, n, columns):
    legend = [LegendEntry(name, "#888888") for name in ("Superficial", "Intermediate", "Deep", "Skeleton")]
    layout = figure_layout(size, n, columns=columns, title="A title that is long enough to need two lines " * 4,
                           caption="A caption " * 12, panel_captions=[f"Panel {i}" for i in range(n)],
                           legend=legend)
    for box in boxes_of(layout):
        assert 0 <= box.left and box.right <= size[0] and 0 <= box.top and box.bottom <= size[1]
    for a, b in itertools.combinations(boxes_of(layout), 2):
        assert not (a.left < b.right and b.left < a.right and a.top < b.bottom and b.top < a.bottom), (a, b)
    title_font = compose.font(layout.typography.title, bold=True)
    assert len(layout.title_lines) >= 2
    assert all(compose.text_width(line, title_font) <= size[0] for line in layout.title_lines)
    body = compose.font(layout.typography.body)
    assert all(compose.text_width(line, body) <= size[0] for line in layout.caption_lines)


def test_too_small_a_figure_is_refused():
    with pytest.raises(ValueError, match="too small"):
        figure_layout((40, 40), 3, title="Title", caption="Caption")


def test_scale_bar_lengths_read_well():
    assert nice_length(37.0) == 20.0
    assert nice_length(99.0) == 50.0
    assert nice_length(100.0) == 100.0
    assert nice_length(0.7) == 0.5
