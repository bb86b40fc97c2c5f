"""CodeSystem/$lookup (R4 codesystem-operation-lookup.html): details of a code —
display, designations, properties — as Parameters."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api.content import fhir_response
from fhir_server.api.deps import context_of, is_pretty, runtime_of
from fhir_server.api.operations.expand import operation_request
from fhir_server.engine import terminology

__all__ = ["lookup"]


def lookup(request: Request) -> Response:
    inputs = operation_request(request)
    with runtime_of(request).work(context_of(request), write=False) as work:
        result = terminology.lookup(work, inputs)
    return fhir_response(result, pretty=is_pretty(request))
