"""delete (soft) and conditional delete (R4 http.html#delete, #cdelete)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from fhir_server import engine
from fhir_server.api.deps import check_type, context_of, is_pretty, preference_of, runtime_of
from fhir_server.api.render import write_response
from fhir_server.errors import BadRequest


def delete(request: Request, resource_type: str, id: str) -> Response:
    check_type(resource_type)
    pref = preference_of(request)
    ctx = context_of(request, pref)
    with runtime_of(request).work(ctx, write=True) as work:
        outcome = engine.delete(work, resource_type, id, if_match=request.headers.get("if-match"))
    return write_response(outcome, ctx.base_url, pref.return_pref, pretty=is_pretty(request))


def conditional_delete(request: Request, resource_type: str) -> Response:
    check_type(resource_type)
    if not request.url.query:
        raise BadRequest("DELETE on a type needs search criteria (conditional delete)")
    pref = preference_of(request)
    ctx = context_of(request, pref)
    with runtime_of(request).work(ctx, write=True) as work:
        outcome = engine.conditional_delete(work, resource_type, request.url.query)
    return write_response(outcome, ctx.base_url, pref.return_pref, pretty=is_pretty(request))
