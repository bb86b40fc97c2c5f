"""ValueSet/$expand and ValueSet/[id]/$expand (R4 valueset-operation-expand.html):
GET with query parameters or POST with a Parameters body; the answer is the
expanded ValueSet itself (the operation's single ``return`` output)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api.content import check_accept, fhir_response, body_of
from fhir_server.api.deps import context_of, is_pretty, query_pairs, runtime_of, settings_of
from fhir_server.conformance.parameters import Inputs, operation_inputs
from fhir_server.engine import terminology
from fhir_server.model import parse_json

__all__ = ["operation_request", "expand", "expand_instance"]


def operation_request(request: Request) -> Inputs:
    """The operation's inputs: the query string, plus a Parameters body on POST (R4 operations.html#request)."""
    check_accept(request)
    body = None
    if request.method == "POST":
        raw = body_of(request)
        body = parse_json(raw, settings_of(request).max_json_depth) if raw.strip() else None
    return operation_inputs(query_pairs(request), body)


def expand(request: Request, id: str | None = None) -> Response:
    inputs = operation_request(request)
    with runtime_of(request).work(context_of(request), write=False) as work:
        result = terminology.expand(work, inputs, id)
    return fhir_response(result, pretty=is_pretty(request))


def expand_instance(request: Request, id: str) -> Response:
    return expand(request, id)
