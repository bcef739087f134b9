"""Inline SVG charts for ``etl report``: plain strings, no JavaScript, no fonts to fetch.

Each function returns one ``<svg>`` element that scales to its container
(``viewBox`` + ``width="100%"``), carries a ``<title>`` for screen readers,
and prints every value as text next to its bar, so a chart stays readable
when printed in black and white. Sizes are in SVG user units (about pixels).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

#: Tableau 10: distinguishable, and fine for the common colour-vision deficiencies.
PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
WIDTH = 760
ROW = 22  # height of one bar row
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


def _label_width(labels: Sequence[str]) -> int:
    # About 7.5 units per character at 12px; capped so bars keep most of the width.
    return min(int(max((len(s) for s in labels), default=4) * 7.5) + 14, 330)


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 or value == int(value) else f"{value:,.1f}"


def _svg(height: int, title: str, body: list[str]) -> str:
    return (
        f'<svg viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" role="img" {FONT}><title>{escape(title)}</title>' + "".join(body) + "</svg>"
    )


def _legend(items: Sequence[tuple[str, str]], y: int, x0: int) -> list[str]:
    out, x = [], x0
    for name, color in items:
        out.append(f'<rect x="{x}" y="{y - 10}" width="12" height="12" fill="{color}"/>')
        out.append(f'<text x="{x + 16}" y="{y}">{escape(name)}</text>')
        x += 16 + len(name) * 7 + 18
    return out


def hbars(items: Sequence[tuple[str, float]], *, title: str, color: str = PALETTE[0]) -> str:
    """One horizontal bar per (label, value), value printed at the bar's end."""
    left = _label_width([label for label, _ in items])
    span = WIDTH - left - 80
    top = max((v for _, v in items), default=0) or 1
    body = []
    for i, (label, value) in enumerate(items):
        y = 6 + i * ROW
        w = span * value / top
        body.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">{escape(label)}</text>')
        body.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{ROW - 6}" fill="{color}"/>')
        body.append(f'<text x="{left + w + 4:.1f}" y="{y + 13}">{_fmt(value)}</text>')
    return _svg(12 + len(items) * ROW, title, body)


def grouped_hbars(
    labels: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]], *, title: str
) -> str:
    """For each label, one thin bar per series (a missing value draws no bar, prints "–")."""
    left = _label_width(labels)
    span = WIDTH - left - 80
    top = max((v or 0 for _, values in series for v in values), default=0) or 1
    bar = 10
    group = bar * len(series) + 8
    body = _legend([(name, PALETTE[i]) for i, (name, _) in enumerate(series)], 14, left)
    for i, label in enumerate(labels):
        y0 = 26 + i * group
        mid = y0 + bar * len(series) / 2 + 4
        body.append(f'<text x="{left - 6}" y="{mid:.1f}" text-anchor="end">{escape(label)}</text>')
        for j, (_, values) in enumerate(series):
            value = values[i]
            y = y0 + j * bar
            if value is None:
                body.append(f'<text x="{left + 2}" y="{y + 9}" font-size="10">–</text>')
                continue
            w = span * value / top
            body.append(
                f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar - 2}" fill="{PALETTE[j]}"/>'
            )
            body.append(
                f'<text x="{left + w + 4:.1f}" y="{y + 8}" font-size="10">{_fmt(value)}</text>'
            )
    return _svg(30 + len(labels) * group, title, body)


def stacked_hbars(
    groups: Sequence[tuple[str, Mapping[str, int]]],
    *,
    order: Sequence[str],
    title: str,
    colors: Mapping[str, str] | None = None,
) -> str:
    """One bar per group, split into ``order``'s parts; the total is printed at the end.

    A part gets its colour from ``colors`` (a migration's figure names them), else the palette's.
    """
    colors = colors or {}
    left = _label_width([g for g, _ in groups])
    span = WIDTH - left - 80
    top = max((sum(parts.values()) for _, parts in groups), default=0) or 1
    palette = {k: colors.get(k, PALETTE[i % len(PALETTE)]) for i, k in enumerate(order)}
    body = _legend([(k, palette[k]) for k in order], 14, left)
    for i, (label, parts) in enumerate(groups):
        y = 26 + i * (ROW + 4)
        body.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{escape(label)}</text>')
        x = float(left)
        for key in order:
            n = parts.get(key, 0)
            if not n:
                continue
            w = span * n / top
            body.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{ROW - 2}" '
                f'fill="{palette[key]}"><title>{escape(key)}: {n:,}</title></rect>'
            )
            if w > 34:  # the part's own count, where it fits inside the bar
                body.append(
                    f'<text x="{x + w / 2:.1f}" y="{y + 14}" text-anchor="middle" '
                    f'fill="#fff">{n:,}</text>'
                )
            x += w
        body.append(f'<text x="{x + 4:.1f}" y="{y + 14}">{sum(parts.values()):,}</text>')
    return _svg(32 + len(groups) * (ROW + 4), title, body)


def _nice_step(span: float, ticks: int = 5) -> float:
    raw = span / ticks if span > 0 else 1
    mag = 10.0 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)


def line_chart(
    points: Sequence[tuple[float, float]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    height: int = 260,
) -> str:
    """A polyline with gridlines and labelled axes (x from 0, y from 0)."""
    left, right, top_pad, bottom = 70, 20, 16, 40
    plot_w, plot_h = WIDTH - left - right, height - top_pad - bottom
    xmax = max((x for x, _ in points), default=1) or 1
    ymax = max((y for _, y in points), default=1) or 1
    ystep, xstep = _nice_step(ymax), _nice_step(xmax)
    ymax = math.ceil(ymax / ystep) * ystep
    xmax = math.ceil(xmax / xstep) * xstep

    def sx(x: float) -> float:
        return left + plot_w * x / xmax

    def sy(y: float) -> float:
        return top_pad + plot_h * (1 - y / ymax)

    body = []
    for k in range(round(ymax / ystep) + 1):
        y = sy(k * ystep)
        body.append(
            f'<line x1="{left}" x2="{WIDTH - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
        )
        body.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(k * ystep)}</text>'
        )
    for k in range(round(xmax / xstep) + 1):
        x = sx(k * xstep)
        body.append(
            f'<text x="{x:.1f}" y="{height - bottom + 16}" text-anchor="middle">'
            f"{_fmt(k * xstep)}</text>"
        )
    body.append(
        f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle">'
        f"{escape(x_label)}</text>"
    )
    body.append(
        f'<text x="14" y="{top_pad + plot_h / 2}" text-anchor="middle" '
        f'transform="rotate(-90 14 {top_pad + plot_h / 2})">{escape(y_label)}</text>'
    )
    path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
    body.append(f'<polyline points="{path}" fill="none" stroke="{PALETTE[0]}" stroke-width="2"/>')
    for x, y in points if len(points) <= 60 else ():
        body.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{PALETTE[0]}"/>')
    return _svg(height, title, body)
