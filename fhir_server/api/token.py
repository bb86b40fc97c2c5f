"""``POST [base]/auth/token``: SMART Backend Services' token endpoint (open; the grant
itself is ``security.token_endpoint``). Form-encoded in, OAuth 2.0 JSON out, never
cached (RFC 6749 §5.1); with auth off there is no token endpoint (404)."""

from __future__ import annotations

from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api.authentication import authentication_of, organization_lookup
from fhir_server.api.content import media_type_of
from fhir_server.api.deps import base_of, state_of
from fhir_server.errors import MethodNotAllowed, NotFound, OAuthError
from fhir_server.security import TOKEN_PATH

__all__ = ["token"]

_FORM = "application/x-www-form-urlencoded"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
#: a token request has five parameters and a JWT of a few kilobytes; more is no token request
#: (and an assertion of megabytes would cost PyJWT seconds to decode)
_MAX_FIELDS = 20
_MAX_BODY = 64 * 1024


def token(request: Request) -> Response:
    authentication = authentication_of(request)
    if authentication is None:
        raise NotFound("Authentication is off on this server (EVI_AUTH=off): there is no token endpoint")
    if request.method != "POST":
        raise MethodNotAllowed("The token endpoint takes POST, form-encoded (RFC 6749 §3.2)")
    try:
        params = _form(request)
        answer = authentication.token_endpoint.answer(params, base_of(request) + TOKEN_PATH, organization_lookup(request))
    except OAuthError as exc:
        return Response(orjson.dumps(exc.to_json()), exc.status, headers=_NO_STORE, media_type="application/json")
    return Response(orjson.dumps(answer), headers=_NO_STORE, media_type="application/json")


def _form(request: Request) -> list[tuple[str, str]]:
    if media_type_of(request) != _FORM:
        raise OAuthError("invalid_request", f"the token request must be {_FORM}")
    body = state_of(request).get("body", b"")
    if len(body) > _MAX_BODY:
        raise OAuthError("invalid_request", f"a token request is at most {_MAX_BODY} bytes")
    try:
        text = body.decode("ascii")
        return parse_qsl(text, keep_blank_values=True, max_num_fields=_MAX_FIELDS, errors="strict")
    except ValueError:  # not ASCII, not UTF-8 once unquoted, too many fields
        raise OAuthError("invalid_request", "the form could not be read") from None
