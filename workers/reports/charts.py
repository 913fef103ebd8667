"""SVG charts for the reports: plain SVG inlined in the HTML, no plotting dependency.

The texts are drawn by the reader's browser, so Chinese renders with whatever CJK font the
reader has; the report's stylesheet names the usual ones (``monthly.FONT_FAMILY``). A
chart's words (title, legend, "no data") come from the caller, already in the report's
language.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

_PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#65a30d"]
_TITLE_H = 22  # room above the plot for a title line


def _open(width: int, height: int, title: str) -> list[str]:
    """The ``<svg>`` element, named for screen readers, with its title drawn on top."""
    name = html.escape(title, quote=True)
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
             f"role='img' class='chart'" + (f" aria-label='{name}'>" if title else ">")]
    if title:
        parts.append(f"<title>{name}</title><text x='0' y='15' class='chart-title' "
                     f"font-weight='bold'>{name}</text>")
    return parts


def svg_bars(items: Sequence[tuple[str, float]], *, unit: str = "", width: int = 640,
             max_value: float | None = None, title: str = "", empty: str = "No data.",
             digits: int = 1) -> str:
    """A horizontal bar chart; ``empty`` is said instead when there is nothing to draw."""
    if not items:
        return f"<p class='empty'>{html.escape(empty)}</p>"
    bar_h, label_w, pad = 18, 190, 4
    head = _TITLE_H if title else 0
    top = max_value or max(v for _, v in items) or 1.0
    plot_w = width - label_w - 70
    height = head + len(items) * (bar_h + pad) + pad
    parts = _open(width, height, title)
    for i, (label, value) in enumerate(items):
        y = head + pad + i * (bar_h + pad)
        w = max(1.0, plot_w * value / top)
        parts.append(
            f"<text x='{label_w - 6}' y='{y + 13}' text-anchor='end'>{html.escape(label)}</text>"
            f"<rect x='{label_w}' y='{y}' width='{w:.1f}' height='{bar_h}' fill='#2563eb'/>"
            f"<text x='{label_w + w + 4:.1f}' y='{y + 13}'>{value:.{digits}f}{html.escape(unit)}"
            "</text>")
    parts.append("</svg>")
    return "".join(parts)


def svg_lines(x_labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], *,
              width: int = 640, height: int = 240, percent: bool = False, title: str = "",
              empty: str = "No data.") -> str:
    """A multi-series line chart with a legend."""
    if not x_labels or not series:
        return f"<p class='empty'>{html.escape(empty)}</p>"
    height += _TITLE_H if title else 0
    left, right, top_pad, bottom = 50, 150, 10 + (_TITLE_H if title else 0), 30
    pw, ph = width - left - right, height - top_pad - bottom
    ymax = 1.0 if percent else max(1.0, *(v for _, vs in series for v in vs))
    step = pw / max(1, len(x_labels) - 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return left + i * step, top_pad + ph - ph * v / ymax

    parts = _open(width, height, title)
    parts.append(f"<line x1='{left}' y1='{top_pad + ph}' x2='{left + pw}' y2='{top_pad + ph}' "
                 "stroke='#999'/>")
    for frac in (0.0, 0.5, 1.0):
        y = top_pad + ph - ph * frac
        label = f"{frac:.0%}" if percent else f"{ymax * frac:.0f}"
        parts.append(f"<text x='{left - 6}' y='{y + 4:.1f}' text-anchor='end'>{label}</text>"
                     f"<line x1='{left}' y1='{y:.1f}' x2='{left + pw}' y2='{y:.1f}' "
                     "stroke='#eee'/>")
    every = -(-len(x_labels) // max(1, pw // 64))  # labels ~64 px apart never overlap
    for i, lab in enumerate(x_labels):
        if i % every == 0:
            x, _ = xy(i, 0)
            parts.append(f"<text x='{x:.1f}' y='{height - 8}' text-anchor='middle'>"
                         f"{html.escape(lab)}</text>")
    for k, (name, values) in enumerate(series):
        color = _PALETTE[k % len(_PALETTE)]
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, v) for i, v in
                                                            enumerate(values)))
        parts.append(f"<polyline fill='none' stroke='{color}' stroke-width='2' "
                     f"points='{points}'/>")
        ly = top_pad + 14 + 16 * k
        parts.append(f"<rect x='{left + pw + 10}' y='{ly - 9}' width='10' height='10' "
                     f"fill='{color}'/><text x='{left + pw + 24}' y='{ly}'>"
                     f"{html.escape(name)}</text>")
    parts.append("</svg>")
    return "".join(parts)
