"""date parameters (R4 search.html#date): values are ranges, prefixes compare ranges.

A partial date is the whole range it names (``2026`` is the year 2026), an
instant a range of one microsecond, a Period its start..end (open ends are
unbounded). Times without a zone are read as UTC. All bounds are fixed-width UTC
strings so that every backend can compare them as plain strings.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from fhir_server.errors import InvalidSearch
from fhir_server.search.index import DateEntry

__all__ = ["DateValue", "MODIFIERS", "PREFIXES", "MIN_INSTANT", "MAX_INSTANT", "parse_value", "extract", "to_range"]

MODIFIERS = frozenset({"missing"})
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
MIN_INSTANT = "0001-01-01T00:00:00.000000Z"
MAX_INSTANT = "9999-12-31T23:59:59.999999Z"

#: R4 datatypes.html#dateTime: zone offsets run from -14:00 to +14:00 ("Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)")
_DATE_RE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d+))?)?"
    r"(?P<tz>Z|[+-](?:(?:0\d|1[0-3]):[0-5]\d|14:00))?)?)?)?\Z",
    re.ASCII,
)


@dataclass(frozen=True, slots=True)
class DateValue:
    prefix: str
    low: str
    high: str


def _fmt(moment: datetime) -> str:
    try:
        m = moment.astimezone(timezone.utc)
        # not strftime: glibc writes year 2 as "2", which sorts after "1999"
        return f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}.{m.microsecond:06d}Z"
    except OverflowError:  # 0001-01-01T00:00+01:00 is before year 1 in UTC, and the like past 9999
        return MIN_INSTANT if moment.year == 1 else MAX_INSTANT


def to_range(text: str) -> tuple[str, str] | None:
    """A FHIR date/dateTime/instant as its closed UTC range, or None if it is not one."""
    m = _DATE_RE.match(text)
    if not m:
        return None
    try:
        year = int(m["y"])
        if m["m"] is None:
            low, high = datetime(year, 1, 1), datetime(year, 12, 31, 23, 59, 59, 999999)
        elif m["d"] is None:
            month = int(m["m"])
            last = calendar.monthrange(year, month)[1]
            low, high = datetime(year, month, 1), datetime(year, month, last, 23, 59, 59, 999999)
        elif m["H"] is None:
            day = datetime(year, int(m["m"]), int(m["d"]))
            low, high = day, day.replace(hour=23, minute=59, second=59, microsecond=999999)
        else:
            base = datetime(year, int(m["m"]), int(m["d"]), int(m["H"]), int(m["M"]))
            if m["S"] is None:
                low, high = base, base + timedelta(seconds=59, microseconds=999999)
            elif m["f"] is None:
                low = base.replace(second=int(m["S"]))
                high = low + timedelta(microseconds=999999)
            else:
                digits = m["f"][:6]
                low = base.replace(second=int(m["S"]), microsecond=int(digits.ljust(6, "0")))
                # the precision given is the range: .1 covers .100000-.199999
                high = low + timedelta(microseconds=10 ** (6 - len(digits)) - 1)
    except ValueError:
        return None
    tz = m["tz"]
    offset = timezone.utc
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        offset = timezone(sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6])))
    return _fmt(low.replace(tzinfo=offset)), _fmt(high.replace(tzinfo=offset))


def parse_value(raw: str, modifier: str | None, definition=None) -> DateValue:
    prefix = "eq"
    if raw[:2] in PREFIXES:
        prefix, raw = raw[:2], raw[2:]
    bounds = to_range(raw)
    if bounds is None:
        raise InvalidSearch(f"Invalid date search value {raw!r}: expected [prefix]YYYY[-MM[-DD[Thh:mm[:ss[.fff]][zone]]]]")
    return DateValue(prefix, *bounds)


def extract(definition, nodes: list) -> list[DateEntry]:
    code = definition if isinstance(definition, str) else definition.code
    out: list[DateEntry] = []
    for node in nodes:
        if isinstance(node, str):
            bounds = to_range(node)
            if bounds:
                out.append(DateEntry(code, *bounds))
        elif isinstance(node, dict):
            if "event" in node or "repeat" in node:  # Timing: from the first to the last event
                out.extend(_timing(code, node))
            elif "start" in node or "end" in node:  # Period: open ends are unbounded
                start = to_range(node["start"]) if isinstance(node.get("start"), str) else None
                end = to_range(node["end"]) if isinstance(node.get("end"), str) else None
                out.append(DateEntry(code, start[0] if start else MIN_INSTANT, end[1] if end else MAX_INSTANT))
    return out


def _timing(code: str, timing: dict) -> list[DateEntry]:
    ranges = [to_range(e) for e in timing.get("event") or () if isinstance(e, str)]
    bounds = (timing.get("repeat") or {}).get("boundsPeriod")
    if isinstance(bounds, dict):
        start = to_range(bounds["start"]) if isinstance(bounds.get("start"), str) else None
        end = to_range(bounds["end"]) if isinstance(bounds.get("end"), str) else None
        ranges.append((start[0] if start else MIN_INSTANT, end[1] if end else MAX_INSTANT))
    ranges = [r for r in ranges if r]
    if not ranges:
        return []
    return [DateEntry(code, min(r[0] for r in ranges), max(r[1] for r in ranges))]


def matches(value: DateValue, low: str, high: str, now: datetime | None = None) -> bool:
    """In-memory match of a stored range against a search value (the SQL compilers mirror this)."""
    p, s_low, s_high = value.prefix, value.low, value.high
    eq = low >= s_low and high <= s_high
    if p == "eq":
        return eq
    if p == "ne":
        return not eq
    if p == "gt":
        return high > s_high
    if p == "lt":
        return low < s_low
    if p == "ge":
        return high > s_high or eq
    if p == "le":
        return low < s_low or eq
    if p == "sa":
        return low > s_high
    if p == "eb":
        return high < s_low
    a_low, a_high = approximate_bounds(value, now)
    return low <= a_high and high >= a_low


def approximate_bounds(value: DateValue, now: datetime | None = None) -> tuple[str, str]:
    """``ap``: widen the search range by 10% of its distance from now (the spec's suggestion)."""
    now = now or datetime.now(timezone.utc)
    low = datetime.strptime(value.low, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    high = datetime.strptime(value.high, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    gap = max(abs(now - low), abs(now - high)) * 0.1
    try:
        return _fmt(low - gap), _fmt(high + gap)
    except OverflowError:
        return MIN_INSTANT, MAX_INSTANT
