"""``AuditEvent?patient=…&date=…`` and ``Patient/{id}/$access-log?start=…&end=…`` as
queries of the audit store (pure: no I/O, no clock).

The log answers two questions, and these are its parameters: ``patient`` (one Patient,
as ``Patient/{id}``, ``{id}`` or this server's absolute URL of it) and ``date`` (R4's
date prefixes on ``recorded``, repeatable: eq, ge, gt, le, lt, sa, eb), with ``_count``,
``_summary=count`` (the total alone), ``_total`` (always accurate) and the ``_cursor`` of a
next link. Pages run oldest first, so the links of a page stay
right while events are appended. Other parameters are refused (400), as history does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from fhir_server.errors import InvalidSearch
from fhir_server.search.params import date as date_param
from fhir_server.search.params.reference import local_part
from fhir_server.storage.audit import AuditQuery

__all__ = ["AuditSearch", "parse_audit_search", "parse_extract_period", "next_cursor"]

_INSTANT = "%Y-%m-%dT%H:%M:%S.%fZ"
#: no filter in them: the format, and fhirpy's hint with ``.count()`` (``_count=0&_totalMethod=count``)
_IGNORED = frozenset({"_format", "_pretty", "_totalMethod"})


@dataclass(frozen=True)
class AuditSearch:
    query: AuditQuery
    #: the understood parameters, for the links (without ``_cursor``)
    params: tuple[tuple[str, str], ...]


def _shift(instant: str, microseconds: int) -> str:
    moment = datetime.strptime(instant, _INSTANT).replace(tzinfo=timezone.utc)
    try:
        return (moment + timedelta(microseconds=microseconds)).strftime(_INSTANT)
    except OverflowError:
        return instant


def _patient(raw: str) -> str:
    if "," in raw:
        raise InvalidSearch("AuditEvent?patient= takes one Patient (no comma-separated values)")
    _base, rtype, rid = local_part(raw)
    if rtype is None and "/" not in raw and raw:
        return raw
    if rtype != "Patient" or not rid:
        raise InvalidSearch(f"AuditEvent?patient= expects Patient/[id], got {raw!r}")
    return rid


def _date_bounds(values: list[str]) -> tuple[str | None, str | None]:
    """The closed range of ``recorded`` (an instant) that every ``date`` value allows."""
    start = end = None
    for raw in values:
        value = date_param.parse_value(raw, None)
        low, high = value.low, value.high
        if value.prefix in ("ne", "ap"):
            raise InvalidSearch(f"AuditEvent?date= does not take the prefix {value.prefix!r}")
        if value.prefix in ("gt", "sa"):
            low, high = _shift(high, 1), None
        elif value.prefix in ("lt", "eb"):
            low, high = None, _shift(low, -1)
        elif value.prefix == "ge":
            high = None
        elif value.prefix == "le":
            low = None
        if low is not None:
            start = low if start is None else max(start, low)
        if high is not None:
            end = high if end is None else min(end, high)
    return start, end


def _cursor(raw: str) -> tuple[str, int]:
    recorded, _, seq = raw.rpartition("~")
    if not (seq.isascii() and seq.isdigit() and len(seq) <= 18) or date_param.to_range(recorded) is None:
        raise InvalidSearch(f"Invalid AuditEvent page cursor {raw!r}")
    return recorded, int(seq)


def next_cursor(recorded: str, seq: int) -> str:
    return f"{recorded}~{seq}"


def parse_audit_search(params: list[tuple[str, str]], *, default_count: int, max_count: int) -> AuditSearch:
    patient = after = None
    dates: list[str] = []
    count = default_count
    summary_count = False
    keep: list[tuple[str, str]] = []
    for name, raw in params:
        if name == "patient":
            if patient is not None:
                raise InvalidSearch("AuditEvent?patient= may be given once")
            patient = _patient(raw)
        elif name == "date":
            dates.append(raw)
        elif name == "_count":
            if not (raw.isascii() and raw.isdigit() and len(raw) <= 9):
                raise InvalidSearch(f"_count must be a non-negative integer, got {raw!r}")
            count = min(int(raw), max_count)
        elif name == "_summary":  # count: the total alone, as any search gives it
            if raw not in ("count", "false"):
                raise InvalidSearch(f"AuditEvent searches take _summary=count (or false), not {raw!r}")
            summary_count = summary_count or raw == "count"
        elif name == "_total":  # the total is always counted
            if raw not in ("none", "estimate", "accurate"):
                raise InvalidSearch(f"_total must be none, estimate or accurate, got {raw!r}")
        elif name == "_cursor":
            after = _cursor(raw)
            continue
        elif name in _IGNORED:
            continue
        else:
            raise InvalidSearch(f"Unknown AuditEvent search parameter {name!r} (supported: patient, date, _count, "
                                "_summary=count, _total)")
        keep.append((name, raw))
    start, end = _date_bounds(dates)
    return AuditSearch(AuditQuery(patient, start, end, after, 0 if summary_count else count), tuple(keep))


def parse_extract_period(params: list[tuple[str, str]]) -> tuple[str | None, str | None]:
    """``$access-log``'s ``start`` and ``end`` (dates or dateTimes, both ends included: an
    end date covers that whole day)."""
    start = end = None
    for name, raw in params:
        if name not in ("start", "end"):
            continue
        bounds = date_param.to_range(raw)
        if bounds is None:
            raise InvalidSearch(f"$access-log {name} must be a date or dateTime, got {raw!r}")
        if name == "start":
            start = bounds[0]
        else:
            end = bounds[1]
    if start is not None and end is not None and start > end:
        raise InvalidSearch("$access-log: start is after end")
    return start, end
