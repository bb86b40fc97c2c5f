"""Patient/[id]/$everything (R4 patient-operation-everything.html): the patient and
every resource in its compartment, as a paged searchset."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from fhir_server import engine
from fhir_server.api.deps import check_type, context_of, query_pairs, runtime_of
from fhir_server.api.interactions.search_type import run_search

_ALLOWED = frozenset({"_count", "_type", "_since", "_format", "_pretty", "_getpages", "_getpagesoffset", "_elements", "_summary"})


def everything(request: Request, resource_type: str, id: str) -> Response:
    check_type(resource_type)
    with runtime_of(request).work(context_of(request), write=False) as work:
        engine.read(work, resource_type, id)  # 404 / 410 for an unknown or deleted patient
    params = []
    for k, v in query_pairs(request):
        if k not in _ALLOWED:
            continue
        # _since: resources updated since then (the operation's own parameter)
        params.append(("_lastUpdated", f"ge{v}") if k == "_since" else (k, v))
    kept = tuple((k, v) for k, v in params if k not in engine.PAGING_PARAMS)
    origin = engine.SearchOrigin(None, kept, (resource_type, id), everything=True)
    return run_search(request, None, params, origin=origin, self_path=f"/{resource_type}/{id}/$everything")
