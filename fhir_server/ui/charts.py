"""Charts drawn on the server as SVG: bars (or a line for a share or a median) from a
list of numbers, each chart followed on the page by a table of the same numbers, which
is also what a screen reader reads (the SVG is ``aria-hidden`` beside its table, with a
title naming the chart). No script, no library, no network.

Periods: the last ``COUNT`` ISO weeks (Monday to Sunday) or calendar months up to and
including the one holding ``until``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

from markupsafe import Markup, escape

__all__ = ["COUNT", "Chart", "Period", "Point", "periods", "svg"]

COUNT = 12
_W, _H = 720, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 16, 16, 56


@dataclass(frozen=True)
class Period:
    label: str
    start: date
    end: date  # inclusive


@dataclass(frozen=True)
class Point:
    label: str
    #: None: nothing to measure in that period (no referral, no visit): drawn as a gap
    value: float | None


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    #: what the values are: "antal", "procent", "dagar"
    unit: str
    points: list[Point]
    #: "bar", "line", or "hbar" (horizontal bars, for long category names)
    kind: str = "bar"
    note: str = ""

    def shown(self, value: float | None) -> str:
        if value is None:
            return "–"
        if self.unit == "procent":
            return f"{value:.0f} %"
        if self.unit == "dagar":
            return f"{value:g}".replace(".", ",")
        return f"{value:.0f}"


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _add_months(day: date, months: int) -> date:
    total = day.year * 12 + day.month - 1 + months
    return date(total // 12, total % 12 + 1, 1)


_MONTHS = ("jan", "feb", "mar", "apr", "maj", "jun", "jul", "aug", "sep", "okt", "nov", "dec")


def periods(kind: str, until: date, count: int = COUNT) -> list[Period]:
    """``kind`` "vecka" or "manad": the ``count`` periods ending with the one holding ``until``, oldest first."""
    out = []
    if kind == "vecka":
        monday = until - timedelta(days=until.weekday())
        for n in range(count - 1, -1, -1):
            start = monday - timedelta(weeks=n)
            year, week, _ = start.isocalendar()
            out.append(Period(f"v{week} {year}", start, start + timedelta(days=6)))
        return out
    first = _month_start(until)
    for n in range(count - 1, -1, -1):
        start = _add_months(first, -n)
        out.append(Period(f"{_MONTHS[start.month - 1]} {start.year}", start, _add_months(start, 1) - timedelta(days=1)))
    return out


def _scale(points: list[Point], unit: str) -> float:
    """The axis' top: 100 for shares; else four equal steps of 1, 2 or 5 × 10^k, so the
    tick labels are whole numbers."""
    top = max((p.value for p in points if p.value is not None), default=0.0)
    if unit == "procent":
        return 100.0
    step = max(top, 1.0) / 4
    if unit == "antal":  # counts: whole steps
        step = max(step, 1.0)
    magnitude = 10 ** math.floor(math.log10(step))
    nice = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= step)
    return float(nice * 4)


def _axis(top: float, chart: Chart) -> list[str]:
    parts = []
    inner_h = _H - _TOP - _BOTTOM
    for i in range(5):
        value = top * i / 4
        y = _TOP + inner_h - inner_h * i / 4
        parts.append(f'<line class="grid" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(chart.shown(value))}</text>')
    parts.append(f'<line class="axis" x1="{_LEFT}" x2="{_LEFT}" y1="{_TOP}" y2="{_H - _BOTTOM}"/>')
    parts.append(f'<line class="axis" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{_H - _BOTTOM}" y2="{_H - _BOTTOM}"/>')
    return parts


def _hbar(chart: Chart) -> Markup:
    """Horizontal bars, for categories with long names (channels, teams)."""
    points, top = chart.points, _scale(chart.points, chart.unit)
    left, row = 380, 28
    height = _TOP + row * max(len(points), 1) + 24
    width = _W - left - _RIGHT
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {height}" role="img" '
             f'aria-labelledby="{chart.id}-svg-title" focusable="false">',
             f'<title id="{chart.id}-svg-title">{escape(chart.title)} (diagram; värdena i tabellen nedan)</title>']
    for i in range(5):
        x = left + width * i / 4
        parts.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{_TOP}" y2="{height - 24}"/>')
        parts.append(f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle">{escape(chart.shown(top * i / 4))}</text>')
    for n, point in enumerate(points):
        y = _TOP + row * n
        label = escape(point.label)
        parts.append(f'<text x="{left - 8}" y="{y + row / 2 + 4:.1f}" text-anchor="end">{label}</text>')
        if point.value is None:
            continue
        length = width * min(point.value, top) / top
        parts.append(f'<rect class="bar" x="{left}" y="{y + 4:.1f}" width="{length:.1f}" height="{row - 8}" '
                     f'data-label="{label}" data-value="{point.value:g}"/>')
    parts.append(f'<line class="axis" x1="{left}" x2="{left}" y1="{_TOP}" y2="{height - 24}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def svg(chart: Chart) -> Markup:
    """The chart as inline SVG; each bar or dot carries ``data-label`` and ``data-value``."""
    if chart.kind == "hbar":
        return _hbar(chart)
    points = chart.points
    top = _scale(points, chart.unit)
    inner_w, inner_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    slot = inner_w / max(len(points), 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" role="img" '
             f'aria-labelledby="{chart.id}-svg-title" focusable="false">',
             f'<title id="{chart.id}-svg-title">{escape(chart.title)} (diagram; värdena i tabellen nedan)</title>',
             *_axis(top, chart)]
    under = len(parts)  # the line goes under the dots
    runs: list[list[str]] = [[]]  # a period without a value breaks the line
    for n, point in enumerate(points):
        x = _LEFT + slot * n
        label = escape(point.label)
        parts.append(f'<text x="{x + slot / 2:.1f}" y="{_H - _BOTTOM + 16}" text-anchor="end" '
                     f'transform="rotate(-35 {x + slot / 2:.1f} {_H - _BOTTOM + 16})">{label}</text>')
        if point.value is None:
            runs.append([])
            continue
        height = inner_h * min(point.value, top) / top
        y = _TOP + inner_h - height
        data = f'data-label="{label}" data-value="{point.value:g}"'
        if chart.kind == "line":
            runs[-1].append(f"{x + slot / 2:.1f},{y:.1f}")
            parts.append(f'<circle class="dot" cx="{x + slot / 2:.1f}" cy="{y:.1f}" r="4" {data}/>')
        else:
            parts.append(f'<rect class="bar" x="{x + slot * 0.15:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" '
                         f'height="{height:.1f}" {data}/>')
    for run in runs:
        if len(run) > 1:
            parts.insert(under, f'<polyline class="line" points="{" ".join(run)}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))
