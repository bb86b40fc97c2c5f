"""The server's own access tokens: what ``POST [base]/auth/token`` hands a registered
client, and what it brings on every request after.

A JWT (RFC 9068 shape: header ``typ: at+jwt``) signed HS256 with the server's secret
(``EVI_TOKEN_SECRET``; shared by every process of one deployment), carrying the client,
its role and organisation, the granted scopes and an expiry at most 300 seconds ahead
(``EVI_TOKEN_LIFETIME``). Verifying one needs no I/O, so it runs on the event loop.
A token of a client no longer registered (removed from the clients file, server
restarted) is refused even before it expires.
"""

from __future__ import annotations

import time
import uuid

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from fhir_server.errors import Unauthorized
from fhir_server.security.caller import Caller
from fhir_server.security.clients import Client, Clients
from fhir_server.security.organizations import OrganizationRef
from fhir_server.security.scopes import Scopes

__all__ = ["AccessTokens", "ISSUER"]

#: the ``iss`` of the server's own tokens
ISSUER = "evi-fhir"
_TYPE = "at+jwt"
_REQUIRED = ["exp", "iat", "jti", "iss", "sub", "client_id", "role", "scope"]


class AccessTokens:
    def __init__(self, secret: str, lifetime: int, clients: Clients):
        self._secret = secret.encode()
        self.lifetime = lifetime
        self._clients = clients

    def derived_key(self, purpose: str) -> bytes:
        """32 bytes for another use of the server's secret (the dashboard's session
        cookies), derived with HKDF-SHA-256 so that neither use reveals the other's key."""
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(self._secret)

    def issue(self, client: Client, scopes: Scopes, organization: OrganizationRef) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": client.id,
            "client_id": client.id,
            "role": client.role,
            "scope": scopes.text(),
            "iat": now,
            "exp": now + self.lifetime,
            "jti": uuid.uuid4().hex,
        }
        if organization.literal:
            claims["organization"] = organization.literal
        if organization.hsa:
            claims["organization_hsa"] = organization.hsa
        return jwt.encode(claims, self._secret, algorithm="HS256", headers={"typ": _TYPE})

    def caller(self, token: str) -> Caller:
        """The Caller a token stands for; ``Unauthorized`` unless it is one of ours, unexpired."""
        return self.verify(token)[0]

    def verify(self, token: str) -> tuple[Caller, float]:
        """(the Caller, when the token expires)."""
        try:
            decoded = jwt.api_jwt.decode_complete(
                token, self._secret, algorithms=["HS256"], issuer=ISSUER, options={"require": _REQUIRED}
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("The access token has expired: get a new one from the token endpoint") from None
        except jwt.InvalidTokenError:
            raise Unauthorized("The bearer token is not a valid access token of this server") from None
        if decoded["header"].get("typ") != _TYPE:
            raise Unauthorized("The bearer token is not an access token of this server")
        claims = decoded["payload"]
        client = self._clients.get(claims["client_id"])
        if client is None or not isinstance(claims["scope"], str):
            raise Unauthorized("The access token's client is not registered (any more)")
        return Caller(
            role=client.role,
            scopes=Scopes.parse(claims["scope"]),
            client_id=client.id,
            client_name=client.name,
            organization=_text(claims.get("organization")),
            organization_hsa=_text(claims.get("organization_hsa")),
        ), float(claims["exp"])


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
