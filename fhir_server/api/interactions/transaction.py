"""batch and transaction: POST a Bundle to the base (R4 http.html#transaction)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from fhir_server import engine
from fhir_server.api.content import check_accept, fhir_response, json_body
from fhir_server.api.deps import context_of, is_pretty, preference_of, runtime_of


def transaction(request: Request) -> Response:
    check_accept(request)
    bundle = json_body(request)
    pref = preference_of(request)
    ctx = context_of(request, pref)
    result = engine.process_bundle(runtime_of(request), ctx, bundle, return_pref=pref.return_pref)
    return fhir_response(result, pretty=is_pretty(request))
