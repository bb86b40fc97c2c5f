"""history at instance, type and system level (R4 http.html#history)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from fhir_server import engine
from fhir_server.api.content import check_accept, fhir_response
from fhir_server.api.deps import check_type, context_of, is_pretty, query_pairs, runtime_of


def _history(request: Request, resource_type: str | None, id: str | None) -> Response:
    check_accept(request)
    runtime = runtime_of(request)
    ctx = context_of(request)
    hreq = engine.parse_history_params(
        resource_type, id, query_pairs(request),
        default_count=runtime.default_page_size, max_count=runtime.max_page_size,
    )
    with runtime.work(ctx, write=False) as work:
        page = engine.history(work, hreq)
    url = "/".join(p for p in (ctx.base_url, resource_type, id, "_history") if p)
    return fhir_response(engine.history_bundle(ctx.base_url, url, list(hreq.params), page), pretty=is_pretty(request))


def history_instance(request: Request, resource_type: str, id: str) -> Response:
    check_type(resource_type)
    return _history(request, resource_type, id)


def history_type(request: Request, resource_type: str) -> Response:
    check_type(resource_type)
    return _history(request, resource_type, None)


def history_system(request: Request) -> Response:
    return _history(request, None, None)
