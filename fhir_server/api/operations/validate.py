"""$validate (R4 resource-operation-validate): type level with a resource or a
Parameters body (resource, mode, profile), instance level on the body or the stored
resource. The answer is always an OperationOutcome with status 200."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from fhir_server import engine
from fhir_server.api.content import check_accept, fhir_response, body_of
from fhir_server.api.deps import check_type, context_of, runtime_of, settings_of
from fhir_server.engine.profiles import validate_operation
from fhir_server.errors import BadRequest
from fhir_server.model import parse_json

_MODES = frozenset({"create", "update", "delete"})


def _arguments(body: dict | None, request: Request) -> tuple[dict | None, str | None, str | None]:
    profile = request.query_params.get("profile")
    mode = request.query_params.get("mode")
    if body is not None and body.get("resourceType") == "Parameters":
        resource = None
        parameters = body.get("parameter") or []
        if not isinstance(parameters, list) or not all(isinstance(p, dict) for p in parameters):
            raise BadRequest("Parameters.parameter must be a list of objects", expression="Parameters.parameter")
        for p in parameters:
            name = p.get("name")
            if name == "resource":
                resource = p.get("resource")
            elif name == "profile":
                profile = p.get("valueUri") or p.get("valueCanonical") or profile
            elif name == "mode":
                mode = p.get("valueCode") or mode
        if not all(isinstance(v, str) for v in (mode, profile) if v is not None):
            raise BadRequest("The parameters mode and profile must be strings", expression="Parameters.parameter")
        return resource, mode, profile
    return body, mode, profile


def _outcome(issues) -> dict:
    if not issues:
        return {"resourceType": "OperationOutcome", "issue": [
            {"severity": "information", "code": "informational", "diagnostics": "No issues found"}]}
    return {"resourceType": "OperationOutcome", "issue": [i.to_fhir("processing") for i in issues]}


def validate_type(request: Request, resource_type: str, id: str | None = None) -> Response:
    check_type(resource_type)
    check_accept(request)
    raw = body_of(request)
    resource, mode, profile = _arguments(parse_json(raw, settings_of(request).max_json_depth) if raw else None, request)
    if mode is not None and mode not in _MODES:
        raise BadRequest(f"mode must be create, update or delete; got {mode!r}")
    runtime = runtime_of(request)
    if resource is None:
        if id is None:
            raise BadRequest("$validate needs a resource (the body, or a Parameters 'resource')")
        with runtime.work(context_of(request), write=False) as work:
            version = engine.read(work, resource_type, id)
        if mode == "delete":  # R4: can the resource be deleted? nothing here forbids it
            return fhir_response(_outcome([]))
        resource = orjson.loads(version.body)
    if not isinstance(resource, dict):
        raise BadRequest("$validate: the resource must be a JSON object")
    return fhir_response(_outcome(validate_operation(runtime, resource, resource_type, profile)))


def validate_instance(request: Request, resource_type: str, id: str) -> Response:
    return validate_type(request, resource_type, id)
