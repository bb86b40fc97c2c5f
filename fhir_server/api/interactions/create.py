"""create, with conditional create by If-None-Exist (R4 http.html#create, #ccreate)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from fhir_server import engine
from fhir_server.api.content import check_accept, json_body
from fhir_server.api.deps import check_type, context_of, is_pretty, preference_of, runtime_of
from fhir_server.api.render import write_response


def create(request: Request, resource_type: str) -> Response:
    check_type(resource_type)
    check_accept(request)
    resource = json_body(request, validated=True)
    pref = preference_of(request)
    ctx = context_of(request, pref)
    with runtime_of(request).work(ctx, write=True) as work:
        outcome = engine.create(work, resource_type, resource, if_none_exist=request.headers.get("if-none-exist"))
    return write_response(outcome, ctx.base_url, pref.return_pref, pretty=is_pretty(request))
