"""Conditional interactions find their target by search (R4 http.html#cond-update).

Unlike a plain search, an unknown parameter is an error here: ignoring it would
widen the match, and a conditional delete would then delete too much.
"""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import parse_qsl

from fhir_server.engine.work import Work
from fhir_server.errors import BadRequest
from fhir_server.search.plan import parse_search

__all__ = ["find_matches", "parse_query"]


def parse_query(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query.lstrip("?"), keep_blank_values=True)


def find_matches(work: Work, resource_type: str, params: list[tuple[str, str]], *, limit: int = 2) -> list[str]:
    """Ids of up to ``limit`` current resources matching the criteria."""
    plan = parse_search(resource_type, params, work.runtime.registry)
    if plan.unknown:
        names = ", ".join(name for name, _ in plan.unknown)
        raise BadRequest(f"Conditional criteria use unknown or unsupported parameters: {names}")
    if not plan.clauses:
        raise BadRequest(f"A conditional {resource_type} interaction needs search criteria")
    plan = replace(plan, count=limit, offset=0, sort=())
    return work.uow.search(plan, with_total=False).ids
