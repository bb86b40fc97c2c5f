"""Signing people in to the dashboard with the region's OpenID Connect provider:
the authorization code flow with PKCE (OpenID Connect Core §3.1, RFC 7636 ``S256``).

1. ``GET /ui/logga-in?next=…``: a fresh ``state``, ``nonce`` and code verifier go into
   the ``evi_login`` cookie (``session.py``); the browser is sent to the provider's
   ``authorization_endpoint`` (from its discovery document,
   ``{EVI_OIDC_ISSUER}/.well-known/openid-configuration``) with ``response_type=code``,
   ``client_id`` (``EVI_UI_CLIENT_ID``), ``redirect_uri`` ``…/ui/inloggad``, ``scope``,
   ``state``, ``nonce``, ``code_challenge`` and ``code_challenge_method=S256``.
2. ``GET /ui/inloggad?code=…&state=…``: the state must equal the cookie's (a callback
   the browser did not start is refused); the code is exchanged at the
   ``token_endpoint`` with the verifier (and the client secret, if the provider gave
   one); the ID token is verified (signature by the provider's published keys, issuer,
   audience = the dashboard's client id, expiry, nonce: ``IdentityProvider.id_token_claims``);
   the access token is checked as any bearer token of a person (``security``) and kept
   in the ``evi_session`` cookie. Every page then authenticates with it.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from urllib.error import URLError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import orjson

from fhir_server.errors import Unauthorized, Unavailable

__all__ = ["Discovery", "ProviderEndpoints", "code_challenge", "new_pending_values", "exchange_code"]

_TIMEOUT = 10.0
_MAX_ANSWER = 256 * 1024


def code_challenge(verifier: str) -> str:
    """RFC 7636 §4.2, S256."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_pending_values() -> tuple[str, str, str]:
    """(state, nonce, code verifier): unguessable, the verifier 43+ characters (RFC 7636 §4.1)."""
    return secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)


@dataclass(frozen=True)
class ProviderEndpoints:
    authorization: str
    token: str
    end_session: str | None = None


def _fetch_json(request: Request | str) -> dict:
    try:
        with urlopen(request, timeout=_TIMEOUT) as answer:  # noqa: S310 (the configured provider, http(s))
            body = answer.read(_MAX_ANSWER + 1)
    except (URLError, OSError) as exc:
        raise Unavailable(f"The region's identity provider did not answer: {exc}") from None
    if len(body) > _MAX_ANSWER:
        raise Unavailable("The region's identity provider answered with more than a discovery or token answer holds")
    try:
        found = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Unavailable("The region's identity provider did not answer with JSON") from None
    if not isinstance(found, dict):
        raise Unavailable("The region's identity provider did not answer with a JSON object")
    return found


class Discovery:
    """The provider's endpoints from its discovery document, fetched on first use and
    kept for ``lifespan`` seconds (thread-safe)."""

    def __init__(self, issuer: str, lifespan: float = 3600.0):
        self.url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        self.issuer = issuer
        self.lifespan = lifespan
        self._found: tuple[float, ProviderEndpoints] | None = None
        self._lock = threading.Lock()

    def endpoints(self) -> ProviderEndpoints:
        with self._lock:
            if self._found is not None and time.monotonic() - self._found[0] < self.lifespan:
                return self._found[1]
            document = _fetch_json(self.url)
            if document.get("issuer") != self.issuer:  # OpenID Connect Discovery §4.3
                raise Unavailable("The identity provider's discovery document names another issuer")
            auth, token = document.get("authorization_endpoint"), document.get("token_endpoint")
            if not all(isinstance(u, str) and u.startswith(("https://", "http://")) for u in (auth, token)):
                raise Unavailable("The identity provider's discovery document lacks its endpoints")
            end = document.get("end_session_endpoint")
            endpoints = ProviderEndpoints(auth, token, end if isinstance(end, str) else None)
            self._found = (time.monotonic(), endpoints)
            return endpoints


def exchange_code(
    token_url: str, code: str, verifier: str, redirect_uri: str, client_id: str, client_secret: str | None
) -> dict:
    """The provider's token answer for an authorization code (RFC 6749 §4.1.3 with the
    PKCE verifier); it must hold an ``id_token`` and an ``access_token``."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": verifier, "client_id": client_id}
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    if client_secret:  # client_secret_basic (RFC 6749 §2.3.1)
        pair = f"{client_id}:{client_secret}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    request = Request(token_url, data=urlencode(form).encode(), headers=headers, method="POST")
    try:
        answer = _fetch_json(request)
    except Unavailable as exc:
        raise Unauthorized(f"The identity provider refused the sign-in: {exc}") from None
    if not isinstance(answer.get("id_token"), str) or not isinstance(answer.get("access_token"), str):
        raise Unauthorized("The identity provider's answer holds no ID token and access token")
    return answer
