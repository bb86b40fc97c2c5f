"""Charts drawn on the server as SVG: bars (or a line for a share or a median) from a
list of numbers, each chart followed on the page by a table of the same numbers, which
is also what a screen reader reads (the SVG is ``aria-hidden`` beside its table, with a
title naming the chart). No script, no library, no network.

Periods: the last ``COUNT`` ISO weeks (Monday to Sunday) or calendar months up to and
including the one holding ``until``.
"""

from __future__ import annotations

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
    #: "bar" or "line"
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
    top = max((p.value for p in points if p.value is not None), default=0.0)
    if unit == "procent":
        return 100.0
    if top <= 0:
        return 1.0
    step = 10 ** (len(str(int(top))) - 1)
    return float(((int(top) // step) + 1) * step)


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


def svg(chart: Chart) -> Markup:
    """The chart as inline SVG; each bar or dot carries ``data-label`` and ``data-value``."""
    points = chart.points
    top = _scale(points, chart.unit)
    inner_w, inner_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    slot = inner_w / max(len(points), 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" role="img" '
             f'aria-labelledby="{chart.id}-svg-title" focusable="false">',
             f'<title id="{chart.id}-svg-title">{escape(chart.title)} (diagram; värdena i tabellen nedan)</title>',
             *_axis(top, chart)]
    under = len(parts)  # the line goes under the dots
    line = []
    for n, point in enumerate(points):
        x = _LEFT + slot * n
        label = escape(point.label)
        parts.append(f'<text x="{x + slot / 2:.1f}" y="{_H - _BOTTOM + 16}" text-anchor="end" '
                     f'transform="rotate(-35 {x + slot / 2:.1f} {_H - _BOTTOM + 16})">{label}</text>')
        if point.value is None:
            continue
        height = inner_h * min(point.value, top) / top
        y = _TOP + inner_h - height
        data = f'data-label="{label}" data-value="{point.value:g}"'
        if chart.kind == "line":
            line.append(f"{x + slot / 2:.1f},{y:.1f}")
            parts.append(f'<circle class="dot" cx="{x + slot / 2:.1f}" cy="{y:.1f}" r="4" {data}/>')
        else:
            parts.append(f'<rect class="bar" x="{x + slot * 0.15:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" '
                         f'height="{height:.1f}" {data}/>')
    if len(line) > 1:
        parts.insert(under, f'<polyline class="line" points="{" ".join(line)}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))
