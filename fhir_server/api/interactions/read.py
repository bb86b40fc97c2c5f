"""read and vread (R4 http.html#read, #vread), with If-None-Match for conditional read."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from fhir_server import engine
from fhir_server.api.content import check_accept, empty_response
from fhir_server.api.deps import check_type, context_of, is_pretty, runtime_of
from fhir_server.api.render import read_response, version_headers


def read(request: Request, resource_type: str, id: str) -> Response:
    check_type(resource_type)
    check_accept(request)
    with runtime_of(request).work(context_of(request), write=False) as work:
        version = engine.read(work, resource_type, id)
    if_none_match = request.headers.get("if-none-match")
    if if_none_match and if_none_match.strip().removeprefix("W/").strip('"') == str(version.version_id):
        return empty_response(304, version_headers(version))
    return read_response(version, pretty=is_pretty(request))


def vread(request: Request, resource_type: str, id: str, vid: str) -> Response:
    check_type(resource_type)
    check_accept(request)
    with runtime_of(request).work(context_of(request), write=False) as work:
        version = engine.vread(work, resource_type, id, vid)
    return read_response(version, pretty=is_pretty(request))
