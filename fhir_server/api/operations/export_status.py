"""Bulk Data status, cancel and files (Bulk Data Access IG 2.0, export.html):

  GET    [base]/$export-status/{job}          202 + X-Progress, Retry-After while it runs;
                                              200 + the manifest (application/json) when done;
                                              500 + OperationOutcome when it failed
  DELETE [base]/$export-status/{job}          202: cancelled, its files removed (then 404)
  GET    [base]/$export-file/{job}/{name}     a finished job's NDJSON file, streamed

Only the job's owner gets anything but 404 (``reporting.BulkExport``). Files are streamed
from disk in chunks (Starlette's ``FileResponse``), so an answer of any size takes the
same memory; the ``Answers`` middleware passes streamed bodies through uncompressed.
"""

from __future__ import annotations

from email.utils import formatdate

import orjson
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from fhir_server.api.content import empty_response, fhir_response
from fhir_server.api.deps import base_of, context_of, exports_of
from fhir_server.errors import FhirError

__all__ = ["export_status", "export_cancel", "export_file", "FILE_PATH", "NDJSON"]

#: where a job's files are served, under the base (``{base}/$export-file/{job id}/{name}``)
FILE_PATH = "/$export-file"
NDJSON = "application/fhir+ndjson"
#: seconds a client is asked to wait between polls
RETRY_AFTER = "2"


class _JobFailed(FhirError):
    status = 500
    code = "exception"


def export_status(request: Request, job: str) -> Response:
    base = base_of(request)
    status = exports_of(request).status(context_of(request), job, f"{base}{FILE_PATH}/{job}")
    if status.state == "in-progress":
        return empty_response(202, {"X-Progress": status.progress, "Retry-After": RETRY_AFTER})
    if status.state == "failed":
        error = _JobFailed(status.error or "The export failed")
        return fhir_response(error.to_outcome(), error.status)
    headers = {}
    if status.job.expires is not None:
        headers["Expires"] = formatdate(status.job.expires, usegmt=True)
    return Response(orjson.dumps(status.manifest), 200, headers, media_type="application/json")


def export_cancel(request: Request, job: str) -> Response:
    exports_of(request).cancel(context_of(request), job)
    return empty_response(202)


def export_file(request: Request, job: str, name: str) -> Response:
    path = exports_of(request).file(context_of(request), job, name)
    return FileResponse(path, media_type=NDJSON, filename=None)
