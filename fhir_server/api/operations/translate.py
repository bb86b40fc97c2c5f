"""ConceptMap/$translate and ConceptMap/[id]/$translate (R4 conceptmap-operation-translate.html):
GET with query parameters or POST with a Parameters body; the answer is Parameters."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api.content import fhir_response
from fhir_server.api.deps import context_of, is_pretty, runtime_of
from fhir_server.api.operations.expand import operation_request
from fhir_server.engine import terminology

__all__ = ["translate", "translate_instance"]


def translate(request: Request, id: str | None = None) -> Response:
    inputs = operation_request(request)
    with runtime_of(request).work(context_of(request), write=False) as work:
        result = terminology.translate(work, inputs, id)
    return fhir_response(result, pretty=is_pretty(request))


def translate_instance(request: Request, id: str) -> Response:
    return translate(request, id)
