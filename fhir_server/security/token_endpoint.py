"""``POST [base]/auth/token``: SMART Backend Services' client-credentials grant (SMART App
Launch 2.x, backend-services.html), answered as OAuth 2.0 (RFC 6749 §5).

The request (form-encoded) carries ``grant_type=client_credentials``, ``scope``,
``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`` and
the ``client_assertion`` (checked in ``client_assertion.py``). The answer is an access
token of this server (``access_token.py``) for what was asked, cut down to what the
client may have: a requested scope the registration covers is granted as written
(``system/*.read`` stays v1), one it covers in part is granted in part (v2 form,
``system/*.rs`` of ``system/*.cruds``), one it does not cover at all is left out, and
when nothing is left the answer is ``invalid_scope``.

Errors: a parameter missing or given twice ``invalid_request``, another grant type
``unsupported_grant_type``, another assertion type ``invalid_request``, anything
wrong with the assertion ``invalid_client`` (401), its ``jti`` used before
``invalid_client``.
"""

from __future__ import annotations

from fhir_server.errors import OAuthError
from fhir_server.security.access_token import AccessTokens
from fhir_server.security.client_assertion import verify_assertion
from fhir_server.security.clients import Clients
from fhir_server.security.organizations import OrganizationLookup
from fhir_server.security.scopes import Scopes, parse_scope
from fhir_server.storage.replay import ReplayCache

__all__ = ["TokenEndpoint", "JWT_BEARER", "granted_scopes"]

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_PARAMETERS = ("grant_type", "scope", "client_assertion_type", "client_assertion", "client_id")


class TokenEndpoint:
    def __init__(self, clients: Clients, tokens: AccessTokens, replay: ReplayCache):
        self._clients = clients
        self._tokens = tokens
        self._replay = replay

    def answer(self, params: list[tuple[str, str]], token_url: str, lookup: OrganizationLookup) -> dict:
        """The token answer for the form's ``params``; ``OAuthError`` otherwise. Blocks
        (the client's JWK Set, the replay cache, the organisation): not on the event loop."""
        form = _form(params)
        verified = verify_assertion(form["client_assertion"], self._clients, token_url)
        client = verified.client
        if form.get("client_id", client.id) != client.id:
            raise OAuthError("invalid_client", "client_id is not the client the assertion is from")
        if not self._replay.once(f"jti|{client.id}|{verified.jti}", verified.remaining):
            raise OAuthError("invalid_client", "client_assertion's jti was used before: sign a new assertion")
        scope = granted_scopes(client.scopes, form["scope"])
        if not scope:
            raise OAuthError("invalid_scope", f"none of the scopes asked for is registered for {client.id}")
        token = self._tokens.issue(client, Scopes.parse(scope), lookup(client.organization))
        return {"access_token": token, "token_type": "bearer", "expires_in": self._tokens.lifetime, "scope": scope}


def _form(params: list[tuple[str, str]]) -> dict[str, str]:
    form: dict[str, str] = {}
    for name, value in params:
        if name in form and name in _PARAMETERS:
            raise OAuthError("invalid_request", f"{name} is given more than once")
        form[name] = value
    if "grant_type" not in form:
        raise OAuthError("invalid_request", "grant_type is missing (client_credentials)")
    if form["grant_type"] != "client_credentials":
        raise OAuthError("unsupported_grant_type", "this server grants client_credentials only")
    if form.get("client_assertion_type") != JWT_BEARER:
        raise OAuthError("invalid_request", f"client_assertion_type must be {JWT_BEARER}")
    if not form.get("client_assertion"):
        raise OAuthError("invalid_request", "client_assertion is missing: sign one with the client's key")
    if "scope" not in form:
        raise OAuthError("invalid_request", "scope is missing: name the SMART scopes wanted, e.g. system/*.rs")
    return form


def granted_scopes(allowed: Scopes, requested: str) -> str:
    """The space-separated scopes granted of ``requested`` (see the module doc)."""
    granted: list[str] = []
    for text in requested.split():
        wanted = parse_scope(text)
        if wanted is None:
            continue
        cut = allowed.grant(Scopes((wanted,)))
        if not cut:
            continue
        if len(cut.permissions) == 1 and cut.permissions[0] == wanted:
            granted.append(text)  # granted as asked: in the client's own words
        else:
            granted.extend(p.text() for p in cut.permissions)
    return " ".join(dict.fromkeys(granted))
