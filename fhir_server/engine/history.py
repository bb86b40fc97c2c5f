"""history interactions: instance, type and system (R4 http.html#history)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from fhir_server.engine import access
from fhir_server.engine.access_log import refuse_audit_listing
from fhir_server.engine.audit import covers_patient_data, record_listed
from fhir_server.engine.instance import _check_id, _may_see
from fhir_server.engine.work import Work
from fhir_server.errors import InvalidSearch, NotFound
from fhir_server.search.params.date import to_range
from fhir_server.search.plan import SearchPlan
from fhir_server.storage.base import HistoryPage, HistoryQuery

__all__ = ["HistoryRequest", "parse_history_params", "history"]


@dataclass(frozen=True)
class HistoryRequest:
    query: HistoryQuery
    #: the parameters to repeat in paging links
    params: tuple[tuple[str, str], ...]


def parse_history_params(
    resource_type: str | None, rid: str | None, params: list[tuple[str, str]], *, default_count: int, max_count: int
) -> HistoryRequest:
    since = at = cursor = None
    count = default_count
    keep: list[tuple[str, str]] = []
    for name, raw in params:
        if name == "_since":
            bounds = to_range(raw)
            if bounds is None or "T" not in raw:
                raise InvalidSearch(f"_since must be an instant (e.g. 2026-03-01T00:00:00Z), got {raw!r}")
            since = bounds[0]
            keep.append((name, raw))
        elif name == "_at":
            bounds = to_range(raw)
            if bounds is None:
                raise InvalidSearch(f"_at must be a date or dateTime, got {raw!r}")
            at = bounds
            keep.append((name, raw))
        elif name == "_count":
            if not _is_number(raw, 30):
                raise InvalidSearch(f"_count must be a non-negative integer, got {raw!r}")
            count = min(int(raw), max_count)
            keep.append((name, raw))
        elif name == "_cursor":
            if not _is_number(raw, 18):  # a row number: SQLite integers are 64-bit
                raise InvalidSearch(f"Invalid history page cursor {raw!r}")
            cursor = int(raw)
        elif name in ("_format", "_pretty"):
            continue
        else:
            raise InvalidSearch(f"Unknown history parameter {name!r} (supported: _since, _at, _count)")
    query = HistoryQuery(resource_type, rid, since, at, cursor, count)
    return HistoryRequest(query, tuple(keep))


def _is_number(raw: str, max_digits: int) -> bool:
    return raw.isascii() and raw.isdigit() and len(raw) <= max_digits


def history(work: Work, request: HistoryRequest) -> HistoryPage:
    """A history page of what the caller may see (scope s; the access policy on the
    resources' current versions), protected identity redacted."""
    q = request.query
    refuse_audit_listing(q.resource_type, "history")
    if q.id is not None:
        _check_id(q.resource_type, q.id)
        access.require_scope(work, q.resource_type, "s")
        current = work.uow.current(q.resource_type, q.id)
        if current is None or not _may_see(work, current):
            raise NotFound(f"{q.resource_type}/{q.id} is not known")
    elif work.ctx.caller is not None:
        visible = access.restrict(work, SearchPlan(q.resource_type))
        if visible.clauses or visible.types:
            q = dataclasses.replace(q, visible=visible)
    page = work.uow.history(q)
    page = dataclasses.replace(page, versions=access.shown_all(work, page.versions))
    interaction = "history-instance" if q.id is not None else "history-type" if q.resource_type else "history-system"
    patient = q.id if q.resource_type == "Patient" and q.id is not None else None
    record_listed(work, interaction, page.versions, patient=patient, covers=covers_patient_data(q.resource_type))
    return page
