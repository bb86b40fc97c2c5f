"""Bulk Data kick-off (Bulk Data Access IG 2.0, export.html; the logic in
``fhir_server.reporting``):

  GET|POST [base]/$export                 everything the caller may see
  GET|POST [base]/Patient/$export         the data of every patient it may see
  GET|POST [base]/Group/{id}/$export      the data of the Group's patients

``Prefer: respond-async`` is required (400 without it; the IG lets a server refuse), the
parameters come as a query string or, with POST, a Parameters body. The answer is 202
with ``Content-Location``: the status URL (``api/operations/export_status.py``).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api.base import MOUNT
from fhir_server.api.content import body_of, check_accept, empty_response
from fhir_server.api.deps import base_of, context_of, exports_of, preference_of, query_pairs, settings_of
from fhir_server.errors import BadRequest
from fhir_server.model import parse_json
from fhir_server.reporting import parameters_to_pairs, parse_export_request

__all__ = ["export_system", "export_patients", "export_group", "STATUS_PATH"]

#: where a job's status is polled, under the base (``{base}/$export-status/{job id}``)
STATUS_PATH = "/$export-status"


def export_system(request: Request) -> Response:
    return _kick_off(request, "system")


def export_patients(request: Request) -> Response:
    return _kick_off(request, "patient")


def export_group(request: Request, id: str) -> Response:
    return _kick_off(request, "group", id)


def _kick_off(request: Request, level: str, group_id: str | None = None) -> Response:
    check_accept(request)
    preference = preference_of(request)
    if not preference.respond_async:
        raise BadRequest("$export runs asynchronously: send the header Prefer: respond-async (Bulk Data IG)")
    params = query_pairs(request)
    if request.method == "POST":
        raw = body_of(request)
        if raw:
            params += parameters_to_pairs(parse_json(raw, settings_of(request).max_json_depth))
    base = base_of(request)
    url = base + request.url.path.removeprefix(MOUNT) + (f"?{request.url.query}" if request.url.query else "")
    export = parse_export_request(level, params, group_id=group_id, url=url, lenient=preference.lenient)
    job = exports_of(request).kick_off(context_of(request, preference), export, lenient=preference.lenient)
    return empty_response(202, {"Content-Location": f"{base}{STATUS_PATH}/{job.id}"})
