"""capabilities: GET [base]/metadata (R4 http.html#capabilities), with ``mode``
(full, normative, terminology) and ``_summary=true``; gzip-compressed when the client
accepts it."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api.content import FHIR_JSON, check_accept, fhir_response
from fhir_server.api.deps import context_of, is_pretty, runtime_of
from fhir_server.api.middleware import accepts_gzip
from fhir_server.engine.capabilities import Answer


def capabilities(request: Request) -> Response:
    check_accept(request)
    params = request.query_params
    with runtime_of(request).work(context_of(request), write=False) as work:
        answer = request.app.state.capabilities.answer(work, params.get("mode"), params.get("_summary"))
    if not isinstance(answer, Answer):
        return fhir_response(answer, pretty=is_pretty(request))
    if is_pretty(request):
        return fhir_response(answer.body, pretty=True)
    headers = {"Vary": "Accept-Encoding"}
    if accepts_gzip(request.headers.get("accept-encoding", "")):
        headers["Content-Encoding"] = "gzip"
        return Response(answer.gzipped, headers=headers, media_type=FHIR_JSON)
    return Response(answer.body, headers=headers, media_type=FHIR_JSON)

