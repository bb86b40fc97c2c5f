"""``GET [base]/.well-known/smart-configuration`` (SMART App Launch 2.x): open to
everyone with auth on; with auth off there is no token endpoint to describe (404)."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api.authentication import authentication_of
from fhir_server.api.deps import base_of
from fhir_server.errors import NotFound
from fhir_server.security import smart_configuration as document

__all__ = ["smart_configuration"]


def smart_configuration(request: Request) -> Response:
    if authentication_of(request) is None:
        raise NotFound("Authentication is off on this server (EVI_AUTH=off): there is no SMART configuration")
    return Response(orjson.dumps(document(base_of(request))), media_type="application/json")
