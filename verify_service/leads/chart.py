"""Small bar charts rendered on the server as inline SVG (no script, no inline style: the CSP allows neither).

The chart is a picture of numbers that the page also gives as a table: the
SVG is ``role="img"`` with a title and a description that point to the
table, and each bar carries a ``<title>`` with its label and value (a
tooltip for mouse users).
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

BAR_FILL = "#0b6b00"    # site.css --accent
AXIS = "#4d5566"        # site.css --muted
EMPTY = "#d0d5dd"       # site.css --line: a stub where the value is zero or missing


def _fmt(value: float) -> str:
    return f"{value:g}" if value == int(value) else f"{value:.1f}"


def bar_chart(points: Sequence[tuple[str, float | None]], *, chart_id: str, title: str, description: str,
              unit: str = "", width: int = 640, height: int = 160) -> Markup:
    """An SVG bar chart of ``points`` (label, value; None means no data), scaled to the largest value.

    ``chart_id`` makes the ids of the title and description unique on the page.
    """
    top, bottom, left = 18, 22, 4
    plot_height = height - top - bottom
    largest = max((v for _, v in points if v), default=0) or 1
    slot = (width - left) / max(len(points), 1)
    bar_width = max(slot * 0.7, 1)
    ident = escape(chart_id)
    parts = [
        (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
         f'role="img" aria-labelledby="{ident}-title {ident}-desc" focusable="false">'),
        f'<title id="{ident}-title">{escape(title)}</title>',
        f'<desc id="{ident}-desc">{escape(description)}</desc>',
        (f'<text x="{left}" y="12" font-size="11" fill="{AXIS}">max {escape(_fmt(largest))}'
         f'{" " + escape(unit) if unit else ""}</text>'),
    ]
    for i, (label, value) in enumerate(points):
        x = left + i * slot + (slot - bar_width) / 2
        bar = (value or 0) / largest * plot_height
        shown = "no data" if value is None else f"{_fmt(value)}{' ' + unit if unit else ''}"
        parts.append(
            f'<rect x="{x:.1f}" y="{top + plot_height - max(bar, 1):.1f}" width="{bar_width:.1f}" '
            f'height="{max(bar, 1):.1f}" fill="{BAR_FILL if value else EMPTY}">'
            f'<title>{escape(label)}: {escape(shown)}</title></rect>')
    baseline = top + plot_height
    parts.append(f'<line x1="{left}" y1="{baseline + 0.5}" x2="{width}" y2="{baseline + 0.5}" stroke="{AXIS}"/>')
    if points:
        parts.append(f'<text x="{left}" y="{height - 6}" font-size="11" fill="{AXIS}">{escape(points[0][0])}</text>')
        parts.append(f'<text x="{width}" y="{height - 6}" font-size="11" fill="{AXIS}" text-anchor="end">'
                     f'{escape(points[-1][0])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
