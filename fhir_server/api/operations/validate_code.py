"""$validate-code on ValueSet and CodeSystem, type and instance level (R4
valueset-operation-validate-code.html, codesystem-operation-validate-code.html):
Parameters with ``result``, ``message`` and ``display``. An invalid code is a
200 with ``result`` false; only a bad request or an unknown target is an error."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api.content import fhir_response
from fhir_server.api.deps import context_of, is_pretty, runtime_of
from fhir_server.api.operations.expand import operation_request
from fhir_server.engine import terminology

__all__ = ["value_set", "value_set_instance", "code_system", "code_system_instance"]


def _validate(request: Request, resource_type: str, id: str | None) -> Response:
    inputs = operation_request(request)
    with runtime_of(request).work(context_of(request), write=False) as work:
        result = terminology.validate_code(work, resource_type, inputs, id)
    return fhir_response(result, pretty=is_pretty(request))


def value_set(request: Request) -> Response:
    return _validate(request, "ValueSet", None)


def value_set_instance(request: Request, id: str) -> Response:
    return _validate(request, "ValueSet", id)


def code_system(request: Request) -> Response:
    return _validate(request, "CodeSystem", None)


def code_system_instance(request: Request, id: str) -> Response:
    return _validate(request, "CodeSystem", id)
