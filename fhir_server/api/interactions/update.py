"""update (update-as-create allowed) and conditional update (R4 http.html#update, #cond-update)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from fhir_server import engine
from fhir_server.api.content import check_accept, json_body
from fhir_server.api.deps import check_type, context_of, is_pretty, preference_of, runtime_of
from fhir_server.api.render import write_response
from fhir_server.errors import BadRequest


def update(request: Request, resource_type: str, id: str) -> Response:
    check_type(resource_type)
    check_accept(request)
    resource = json_body(request, validated=True)
    pref = preference_of(request)
    ctx = context_of(request, pref)
    with runtime_of(request).work(ctx, write=True) as work:
        outcome = engine.update(work, resource_type, id, resource, if_match=request.headers.get("if-match"))
    return write_response(outcome, ctx.base_url, pref.return_pref, pretty=is_pretty(request))


def conditional_update(request: Request, resource_type: str) -> Response:
    check_type(resource_type)
    check_accept(request)
    query = request.url.query
    if not query:
        raise BadRequest("PUT to a type needs search criteria (conditional update) or an id in the URL")
    resource = json_body(request, validated=True)
    pref = preference_of(request)
    ctx = context_of(request, pref)
    with runtime_of(request).work(ctx, write=True) as work:
        outcome = engine.conditional_update(work, resource_type, query, resource, if_match=request.headers.get("if-match"))
    return write_response(outcome, ctx.base_url, pref.return_pref, pretty=is_pretty(request))
