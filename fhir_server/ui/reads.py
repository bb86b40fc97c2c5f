"""How the dashboard reads: only through the engine, with the signed-in person's
RequestContext, so the access policy, redaction and (through the engine) the PDL log
apply to every page exactly as to the FHIR API. Nothing here touches the store."""

from __future__ import annotations

import orjson

from fhir_server.engine import Work, history, parse_history_params, plan_search, read, search
from fhir_server.errors import Gone, NotFound

__all__ = ["read_json", "search_json", "history_json", "by_reference"]


def read_json(work: Work, resource_type: str, rid: str) -> dict | None:
    """The resource as the caller may see it; None when it is unknown, deleted or hidden."""
    try:
        return orjson.loads(read(work, resource_type, rid).body)
    except (NotFound, Gone):
        return None


def search_json(work: Work, resource_type: str, params: list[tuple[str, str]]) -> list[dict]:
    """The first page of a search (``_count`` in ``params`` sets its size)."""
    plan = plan_search(work, resource_type, params)
    found = search(work, plan, params)
    return [orjson.loads(v.body) for v in found.matches]


def by_reference(work: Work, resource_type: str, ids: list[str]) -> dict[str, dict]:
    """``{"Type/id": resource}`` for the given ids that the caller may see (one search)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    found = search_json(work, resource_type, [("_id", ",".join(wanted)), ("_count", str(len(wanted)))])
    return {f"{resource_type}/{r['id']}": r for r in found}


def history_json(work: Work, resource_type: str, rid: str, count: int = 100) -> list[tuple[dict, str, str]]:
    """(resource, version id, last updated) of an instance's history, newest first."""
    request = parse_history_params(resource_type, rid, [("_count", str(count))], default_count=count, max_count=count)
    page = history(work, request)
    return [(orjson.loads(v.body), str(v.version_id), v.last_updated) for v in page.versions if v.body]
