"""Content negotiation, bounded body reading and FHIR JSON responses."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from fhir_server.errors import NotAcceptable, PayloadTooLarge, UnsupportedMediaType
from fhir_server.model import parse_json

__all__ = ["FHIR_JSON", "JSON_TYPES", "receive_body", "body_of", "json_body", "media_type_of", "check_accept", "fhir_response", "empty_response"]

FHIR_JSON = "application/fhir+json; charset=utf-8"
JSON_TYPES = _JSON_TYPES = frozenset({"application/fhir+json", "application/json", "application/json+fhir", "text/json"})
_FORMAT_JSON = frozenset({"json", "application/json", "application/fhir+json", "application/json+fhir", "text/json"})
_XML = ("xml",)


def _media_type(header: str) -> str:
    return header.split(";", 1)[0].strip().lower()


async def receive_body(request: Request, max_size: int) -> bytes:
    """Read the request body on the event loop, refusing oversized bodies without
    reading them whole; the handler (in a worker thread) takes it with ``body_of``."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_size:
        raise PayloadTooLarge(f"The request body ({declared} bytes) exceeds the limit of {max_size} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_size:
            raise PayloadTooLarge(f"The request body exceeds the limit of {max_size} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def media_type_of(request: Request) -> str | None:
    content_type = request.headers.get("content-type")
    return _media_type(content_type) if content_type else None


def body_of(request: Request, *, allowed: frozenset[str] = _JSON_TYPES) -> bytes:
    """The body ``receive_body`` read, if its media type is one of ``allowed`` (else 415)."""
    media = media_type_of(request)
    if media is not None and media not in allowed:
        if any(x in media for x in _XML):
            raise UnsupportedMediaType(f"{media} is not supported: this server speaks FHIR JSON (application/fhir+json)")
        raise UnsupportedMediaType(f"Content-Type {media} is not supported here; use {' or '.join(sorted(allowed))}")
    return request.scope.get("state", {}).get("body", b"")


def json_body(request: Request, *, validated: bool = False) -> dict:
    """The body as a JSON object, no deeper than ``EVI_MAX_JSON_DEPTH``. ``validated``: the
    engine validates it as a resource before anything walks it, and checks the depth then."""
    return parse_json(body_of(request), None if validated else request.app.state.settings.max_json_depth)


def check_accept(request: Request) -> None:
    """406 unless the client can take JSON (``_format`` wins over Accept, R4 http.html#mime-type)."""
    fmt = request.query_params.get("_format")
    if fmt is not None:
        if fmt.lower().split(";")[0].strip() not in _FORMAT_JSON:
            raise NotAcceptable(f"_format={fmt} is not supported: this server returns FHIR JSON only")
        return
    accept = request.headers.get("accept")
    if not accept:
        return
    for part in accept.split(","):
        media = _media_type(part)
        if media in _JSON_TYPES or media in ("*/*", "application/*", "text/*") or media.endswith("+json"):
            return
    raise NotAcceptable(f"Cannot answer in {accept}: this server returns FHIR JSON (application/fhir+json)")


def fhir_response(payload: dict | bytes, status: int = 200, headers: dict | None = None, *, pretty: bool = False) -> Response:
    if isinstance(payload, bytes) and not pretty:
        body = payload
    else:
        if isinstance(payload, bytes):
            payload = orjson.loads(payload)
        body = orjson.dumps(payload, option=orjson.OPT_INDENT_2 if pretty else 0)
    return Response(body, status_code=status, headers=headers, media_type=FHIR_JSON)


def empty_response(status: int, headers: dict | None = None) -> Response:
    return Response(None, status_code=status, headers=headers)
