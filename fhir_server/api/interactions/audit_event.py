"""AuditEvent: read, vread and search served from the audit store, never from the
resource tables; every write refused (domain.md §6; engine/access_log.py says who may
read). The search takes ``patient``, ``date`` and ``_count``; its ``next`` link carries a
cursor, oldest events first."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response

from fhir_server import engine
from fhir_server.api.content import body_of, check_accept, fhir_response
from fhir_server.api.deps import context_of, is_pretty, query_pairs, runtime_of
from fhir_server.api.render import read_response
from fhir_server.audit import next_cursor

_FORM = frozenset({"application/x-www-form-urlencoded"})


def read(request: Request, id: str) -> Response:
    check_accept(request)
    return read_response(engine.read_event(runtime_of(request), context_of(request), id), pretty=is_pretty(request))


def vread(request: Request, id: str, vid: str) -> Response:
    check_accept(request)
    version = engine.read_event(runtime_of(request), context_of(request), id, vid)
    return read_response(version, pretty=is_pretty(request))


def _search(request: Request, params: list[tuple[str, str]]) -> Response:
    check_accept(request)
    ctx = context_of(request)
    page = engine.search_events(runtime_of(request), ctx, params)
    url = f"{ctx.base_url}/AuditEvent"
    kept = list(page.search.params)
    links = [{"relation": "self", "url": f"{url}?{urlencode(kept)}" if kept else url}]
    if page.after is not None:
        links.append({"relation": "next", "url": f"{url}?{urlencode([*kept, ('_cursor', next_cursor(*page.after))])}"})
    bundle: dict = {"resourceType": "Bundle", "type": "searchset", "total": page.total, "link": links}
    if page.versions:
        bundle["entry"] = [
            {"fullUrl": f"{url}/{v.id}", "resource": orjson.Fragment(v.body), "search": {"mode": "match"}}
            for v in page.versions
        ]
    return fhir_response(bundle, pretty=is_pretty(request))


def search(request: Request) -> Response:
    return _search(request, query_pairs(request))


def search_post(request: Request) -> Response:
    form = parse_qsl(body_of(request, allowed=_FORM).decode("utf-8", errors="replace"), keep_blank_values=True)
    return _search(request, [*query_pairs(request), *form])


def refuse(request: Request, **_params) -> Response:
    """Create, update, patch or delete of an AuditEvent: 405 for every caller."""
    engine.refuse_audit_write("AuditEvent")
    raise AssertionError("refuse_audit_write always raises for AuditEvent")
