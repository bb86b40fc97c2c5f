"""capabilities: GET [base]/metadata (R4 http.html#capabilities)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api.content import check_accept, fhir_response
from fhir_server.api.deps import is_pretty


async def capabilities(request: Request) -> Response:
    check_accept(request)
    return fhir_response(request.app.state.capability_statement, pretty=is_pretty(request))
