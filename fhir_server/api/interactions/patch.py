"""patch, plain and conditional (R4 http.html#patch), with

- JSON Patch (``application/json-patch+json``, a JSON array of operations), and
- JSON Merge Patch (``application/merge-patch+json``, RFC 7386: a partial resource,
  ``null`` removing an element). A JSON object sent as ``application/json`` or
  ``application/fhir+json`` is taken as a merge patch too: that is what fhirpy's
  ``patch()`` and other clients send. FHIRPath Patch (a Parameters body) is refused
  with 415.
"""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from fhir_server import engine
from fhir_server.api.content import body_of, check_accept, media_type_of
from fhir_server.api.deps import check_type, context_of, is_pretty, preference_of, runtime_of, settings_of
from fhir_server.api.render import write_response
from fhir_server.errors import BadRequest, UnsupportedMediaType
from fhir_server.model import MergePatch, check_json_depth

_JSON_PATCH = "application/json-patch+json"
_MERGE_PATCH = "application/merge-patch+json"
_PATCH_TYPES = frozenset({_JSON_PATCH, _MERGE_PATCH, "application/json", "application/fhir+json"})


def _operations(request: Request) -> object:
    body = body_of(request, allowed=_PATCH_TYPES)
    media = media_type_of(request)
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"Malformed patch document: {exc}") from None
    check_json_depth(document, settings_of(request).max_json_depth)
    if media == _JSON_PATCH or (media is None and isinstance(document, list)):
        return document
    if isinstance(document, list):
        raise UnsupportedMediaType(f"A JSON Patch document (a JSON array) must be sent as {_JSON_PATCH}")
    if not isinstance(document, dict):
        raise BadRequest("A JSON Merge Patch document must be a JSON object (a partial resource)")
    if document.get("resourceType") == "Parameters" and media != _MERGE_PATCH:
        raise UnsupportedMediaType(
            "FHIRPath Patch (a Parameters body) is not supported; send JSON Patch "
            f"({_JSON_PATCH}) or JSON Merge Patch ({_MERGE_PATCH})"
        )
    return MergePatch(document)


def patch(request: Request, resource_type: str, id: str) -> Response:
    check_type(resource_type)
    check_accept(request)
    operations = _operations(request)
    pref = preference_of(request)
    ctx = context_of(request, pref)
    with runtime_of(request).work(ctx, write=True) as work:
        outcome = engine.patch(work, resource_type, id, operations, if_match=request.headers.get("if-match"))
    return write_response(outcome, ctx.base_url, pref.return_pref, pretty=is_pretty(request))


def conditional_patch(request: Request, resource_type: str) -> Response:
    check_type(resource_type)
    check_accept(request)
    if not request.url.query:
        raise BadRequest("PATCH to a type needs search criteria (conditional patch) or an id in the URL")
    operations = _operations(request)
    pref = preference_of(request)
    ctx = context_of(request, pref)
    with runtime_of(request).work(ctx, write=True) as work:
        outcome = engine.conditional_patch(
            work, resource_type, request.url.query, operations, if_match=request.headers.get("if-match")
        )
    return write_response(outcome, ctx.base_url, pref.return_pref, pretty=is_pretty(request))
