"""The dashboard's sign-in state, kept in two cookies the browser cannot read or forge.

- ``evi_session``: a signed-in person: the access token the region's identity provider
  gave them (what every page authenticates with, exactly as a bearer token on the FHIR
  API), their display name, and when the sign-in ends.
- ``evi_login``: a sign-in under way: the OAuth ``state``, the OpenID Connect ``nonce``,
  the PKCE ``code_verifier`` and the page to return to; it lives ``LOGIN_SECONDS``.

Both are Fernet tokens (AES-128-CBC + HMAC-SHA-256, from ``cryptography``) under a key
derived from the server's token secret (``EVI_TOKEN_SECRET``, which every ``--workers``
process shares), so any server process can read them and no client can read or alter
them. Server-side session storage would bind a person to one process; this does not.

Cookie attributes: ``HttpOnly``, ``SameSite=Lax`` (the provider's redirect back is a
top-level GET, which Lax lets through), ``Path`` the dashboard's, and ``Secure`` except
when the dashboard is reached over plain http on a loopback address (a developer's own
machine: browsers drop Secure cookies set over http).
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import orjson
from cryptography.fernet import Fernet, InvalidToken

__all__ = ["LOGIN_COOKIE", "LOGIN_SECONDS", "PendingLogin", "SESSION_COOKIE", "SessionCookies", "SignedIn",
           "cookie_header", "is_loopback_http"]

SESSION_COOKIE = "evi_session"
LOGIN_COOKIE = "evi_login"
LOGIN_SECONDS = 600
_MAX_COOKIE = 3800  # browsers keep at most ~4096 bytes per cookie


@dataclass(frozen=True)
class SignedIn:
    access_token: str
    name: str
    #: epoch seconds
    expires: float


@dataclass(frozen=True)
class PendingLogin:
    state: str
    nonce: str
    verifier: str
    #: the dashboard path to return to
    next: str


class SessionCookies:
    def __init__(self, key: bytes):
        import base64

        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, value: SignedIn | PendingLogin) -> str:
        token = self._fernet.encrypt(orjson.dumps(value.__dict__)).decode()
        if len(token) > _MAX_COOKIE:
            raise ValueError("the sign-in does not fit in a cookie (the provider's access token is too long)")
        return token

    def _open(self, raw: str | None, ttl: int | None) -> dict | None:
        if not raw or len(raw) > _MAX_COOKIE:
            return None
        try:
            found = orjson.loads(self._fernet.decrypt(raw.encode(), ttl=ttl))
        except (InvalidToken, orjson.JSONDecodeError, ValueError):
            return None
        return found if isinstance(found, dict) else None

    def signed_in(self, raw: str | None) -> SignedIn | None:
        """The sign-in of a session cookie, None when there is none, it was altered or it has ended."""
        found = self._open(raw, None)
        try:
            session = SignedIn(str(found["access_token"]), str(found["name"]), float(found["expires"]))
        except (TypeError, KeyError, ValueError):
            return None
        return session if session.expires > time.time() else None

    def pending(self, raw: str | None) -> PendingLogin | None:
        found = self._open(raw, LOGIN_SECONDS)
        try:
            return PendingLogin(*(str(found[k]) for k in ("state", "nonce", "verifier", "next")))
        except (TypeError, KeyError):
            return None


def is_loopback_http(url: str) -> bool:
    """The dashboard is reached over plain http on a loopback address."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        return False
    host = (parts.hostname or "").strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cookie_header(name: str, value: str, *, path: str, secure: bool, max_age: int) -> str:
    """A ``Set-Cookie`` value; ``max_age`` 0 removes the cookie."""
    parts = [f"{name}={value}", f"Path={path}", f"Max-Age={max(max_age, 0)}", "HttpOnly", "SameSite=Lax"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)
