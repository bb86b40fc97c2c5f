"""Who is asking: the ``Authorization: Bearer`` header of a request, made into a Caller
(domain.md §5), with authentication on (``EVI_AUTH=smart``).

Two kinds of token are accepted, told apart by their signature algorithm:

- HS256: an access token of this server, from its token endpoint (``access_token.py``);
- RS256/RS384/ES256/ES384: a person's token from the region's OpenID Connect provider
  (``oidc.py``), when one is configured.

Anything else, no token, or a token that fails its checks is ``Unauthorized`` (401,
``WWW-Authenticate: Bearer``). A token that passed is remembered with its Caller until it
expires, for at most ``VerifiedTokens.MAX_AGE`` seconds: PyJWT decodes a token in pure
Python (every base64 segment checked character by character), a noticeable share of a
small read's cost, and a client sends the same token with every request of its five
minutes. ``authenticate(..., wait=False)`` never blocks: where it
would have to fetch the provider's keys or look up a care unit's Organization it
answers None, and the caller asks again with ``wait=True`` in a worker thread.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import threading
import time

import jwt

from fhir_server.errors import Unauthorized
from fhir_server.security.access_token import AccessTokens
from fhir_server.security.caller import Caller
from fhir_server.security.clients import Clients, ClientsFileError, load_clients
from fhir_server.security.jwks import KeySetError
from fhir_server.security.oidc import PENDING, PEOPLE_ALGORITHMS, IdentityProvider
from fhir_server.security.organizations import OrganizationCache, OrganizationLookup
from fhir_server.security.token_endpoint import TokenEndpoint
from fhir_server.settings import Settings
from fhir_server.storage.replay import MemoryReplayCache, ReplayCache

__all__ = [
    "Authentication", "AuthConfigError", "build_authentication", "new_token_secret", "bearer_token",
    "unsafe_without_auth", "with_token_secret",
]

#: RFC 6750 §2.1 b64token, bounded
_BEARER = re.compile(r"^[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9\-._~+/]{1,8192}=*) *$")
_MIN_SECRET = 32


class AuthConfigError(ValueError):
    """Authentication cannot be set up as configured: the server must not start."""


def new_token_secret() -> str:
    return secrets.token_urlsafe(48)


def bearer_token(header: str | None) -> str:
    if not header or not header.strip():
        raise Unauthorized("This server needs authentication: send Authorization: Bearer <access token>", error=None)
    if not header.lstrip().lower().startswith("bearer"):
        raise Unauthorized("Only Bearer tokens are accepted (Authorization: Bearer <access token>)", error=None)
    found = _BEARER.match(header.strip())
    if not found:
        raise Unauthorized("The Authorization header is not Bearer followed by a token")
    return found.group(1)


class VerifiedTokens:
    """Tokens verified before, with their Caller: thread-safe, bounded."""

    MAX_AGE = 60.0
    MAX_ENTRIES = 4096

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, Caller]] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> Caller | None:
        found = self._entries.get(token)
        if found is None or found[0] <= time.time():
            return None
        return found[1]

    def put(self, token: str, caller: Caller, expires: float) -> Caller:
        until = min(expires, time.time() + self.MAX_AGE)
        with self._lock:
            if len(self._entries) >= self.MAX_ENTRIES:
                now = time.time()
                self._entries = {t: e for t, e in self._entries.items() if e[0] > now}
                if len(self._entries) >= self.MAX_ENTRIES:
                    self._entries.clear()
            self._entries[token] = (until, caller)
        return caller


class Authentication:
    def __init__(self, clients: Clients, tokens: AccessTokens, provider: IdentityProvider | None, replay: ReplayCache):
        self.clients = clients
        self.tokens = tokens
        self.provider = provider
        self.token_endpoint = TokenEndpoint(clients, tokens, replay)
        self.organizations = OrganizationCache()
        self.verified = VerifiedTokens()

    def authenticate(self, header: str | None, lookup: OrganizationLookup, *, wait: bool) -> Caller | None:
        token = bearer_token(header)
        known = self.verified.get(token)
        if known is not None:
            return known
        try:
            head = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Unauthorized("The bearer token is not a JWT") from None
        alg = head.get("alg")
        if alg == "HS256":
            return self.verified.put(token, *self.tokens.verify(token))
        if alg in PEOPLE_ALGORITHMS and self.provider is not None:
            return self._person(token, alg, head.get("kid"), lookup, wait)
        raise Unauthorized("The bearer token is neither this server's nor the region's identity provider's")

    def _person(self, token: str, alg: str, kid: object, lookup: OrganizationLookup, wait: bool) -> Caller | None:
        claims = self.provider.claims(token, alg, kid, wait=wait)
        if claims is PENDING:
            return None
        unit = self.provider.care_unit(claims)
        organization = None
        if unit is not None:
            organization = self.organizations.get(unit)
            if organization is None and not wait:
                return None
            if organization is None:
                organization = self.organizations.resolve(unit, lookup)
        return self.verified.put(token, self.provider.caller(claims, organization), float(claims["exp"]))


def unsafe_without_auth(settings: Settings, insecure_no_auth: bool = False) -> str | None:
    """Why the server must not start as configured: auth off on an address that is not
    loopback (domain.md §5), unless the operator says something in front authenticates."""
    if settings.auth != "off" or insecure_no_auth or settings.host == "localhost":
        return None
    try:
        if ipaddress.ip_address(settings.host.strip("[]")).is_loopback:
            return None
    except ValueError:
        pass
    return (f"authentication is off and {settings.host} is not a loopback address: anyone who reaches the port "
            "could read and change every record. Use --auth smart (README: \"Running with authentication\"), "
            "listen on 127.0.0.1, or, when something in front of the server authenticates, --insecure-no-auth")


def build_authentication(settings: Settings, replay: ReplayCache) -> Authentication | None:
    """None with auth off; ``AuthConfigError`` for a configuration the server must not
    start with. Without ``EVI_TOKEN_SECRET`` a secret is made up here (see ``new_token_secret``)."""
    if settings.auth == "off":
        return None
    if not settings.clients_file and not settings.oidc_issuer:
        raise AuthConfigError(
            "--auth smart needs registered clients (--clients / EVI_CLIENTS_FILE), the region's identity "
            "provider (EVI_OIDC_ISSUER, EVI_OIDC_JWKS_URL, EVI_OIDC_AUDIENCE), or both"
        )
    secret = settings.token_secret or new_token_secret()
    if len(secret.encode()) < _MIN_SECRET:
        raise AuthConfigError(f"EVI_TOKEN_SECRET must be at least {_MIN_SECRET} bytes long")
    try:
        clients = load_clients(settings.clients_file) if settings.clients_file else Clients()
    except ClientsFileError as exc:
        raise AuthConfigError(str(exc)) from None
    tokens = AccessTokens(secret, settings.token_lifetime, clients)
    return Authentication(clients, tokens, _provider(settings), replay)


def _provider(settings: Settings) -> IdentityProvider | None:
    if not settings.oidc_issuer:
        if settings.oidc_jwks_url or settings.oidc_audience:
            raise AuthConfigError("EVI_OIDC_JWKS_URL and EVI_OIDC_AUDIENCE need EVI_OIDC_ISSUER")
        return None
    missing = [name for name, value in (("EVI_OIDC_JWKS_URL", settings.oidc_jwks_url),
                                        ("EVI_OIDC_AUDIENCE", settings.oidc_audience)) if not value]
    if missing:
        raise AuthConfigError(f"EVI_OIDC_ISSUER needs {' and '.join(missing)} as well")
    try:
        return IdentityProvider(settings.oidc_issuer, settings.oidc_audience, settings.oidc_jwks_url)
    except KeySetError as exc:
        raise AuthConfigError(f"EVI_OIDC_JWKS_URL: {exc}") from None


def with_token_secret(settings: Settings) -> tuple[Settings, bool]:
    """``settings`` checked (``AuthConfigError``) and with a token secret: its own, or
    one made up here (True), which ``serve`` hands to every ``--workers`` process."""
    build_authentication(settings, MemoryReplayCache())
    if settings.token_secret:
        return settings, False
    return settings.model_copy(update={"token_secret": new_token_secret()}), True
