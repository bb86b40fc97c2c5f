"""patch with JSON Patch, plain and conditional (R4 http.html#patch)."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from fhir_server import engine
from fhir_server.api.content import check_accept, read_body
from fhir_server.api.deps import check_type, context_of, is_pretty, preference_of, runtime_of, settings_of
from fhir_server.api.render import write_response
from fhir_server.errors import BadRequest
from fhir_server.model import check_json_depth

_PATCH_TYPES = frozenset({"application/json-patch+json"})


async def _operations(request: Request) -> object:
    settings = settings_of(request)
    body = await read_body(request, settings.max_body_size, allowed=_PATCH_TYPES)
    try:
        operations = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"Malformed JSON Patch document: {exc}") from None
    check_json_depth(operations, settings.max_json_depth)
    return operations


async def patch(request: Request, resource_type: str, id: str) -> Response:
    check_type(resource_type)
    check_accept(request)
    operations = await _operations(request)
    pref = preference_of(request)
    ctx = context_of(request, pref)
    with runtime_of(request).work(ctx, write=True) as work:
        outcome = engine.patch(work, resource_type, id, operations, if_match=request.headers.get("if-match"))
    return write_response(outcome, ctx.base_url, pref.return_pref, pretty=is_pretty(request))


async def conditional_patch(request: Request, resource_type: str) -> Response:
    check_type(resource_type)
    check_accept(request)
    if not request.url.query:
        raise BadRequest("PATCH to a type needs search criteria (conditional patch) or an id in the URL")
    operations = await _operations(request)
    pref = preference_of(request)
    ctx = context_of(request, pref)
    with runtime_of(request).work(ctx, write=True) as work:
        outcome = engine.conditional_patch(
            work, resource_type, request.url.query, operations, if_match=request.headers.get("if-match")
        )
    return write_response(outcome, ctx.base_url, pref.return_pref, pretty=is_pretty(request))
