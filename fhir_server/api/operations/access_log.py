"""``GET [base]/Patient/{id}/$access-log?start=…&end=…`` (domain.md §6): the patient's log
extract, for the admin and evi roles, as a ``collection`` Bundle (FHIR JSON, the default)
or as CSV (``Accept: text/csv`` or ``_format=csv``). The rules and the CSV's columns are
``engine/access_log.py`` and ``audit/extract.py``; this module only speaks HTTP."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from fhir_server import engine
from fhir_server.api.content import check_accept, fhir_response
from fhir_server.api.deps import context_of, is_pretty, query_pairs, runtime_of
from fhir_server.audit import extract_bundle, extract_csv

_CSV_FORMATS = frozenset({"csv", "text/csv"})


def wants_csv(request: Request) -> bool:
    """``_format=csv`` (or text/csv); else an Accept that names text/csv before any JSON."""
    fmt = request.query_params.get("_format")
    if fmt is not None:
        return fmt.lower().split(";")[0].strip() in _CSV_FORMATS
    for part in (request.headers.get("accept") or "").split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media == "text/csv":
            return True
        if media.endswith("json") or media in ("*/*", "application/*"):
            return False
    return False


def access_log(request: Request, id: str) -> Response:
    csv = wants_csv(request)
    if not csv:
        check_accept(request)
    ctx = context_of(request)
    params = [(k, v) for k, v in query_pairs(request) if k not in ("_format", "_pretty")]
    rows = engine.access_log(runtime_of(request), ctx, id, params)
    if csv:
        return Response(extract_csv(rows), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="access-log-Patient-{id}.csv"'})
    return fhir_response(extract_bundle(ctx.base_url, rows), pretty=is_pretty(request))
