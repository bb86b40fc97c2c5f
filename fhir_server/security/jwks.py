"""JSON Web Key Sets (RFC 7517): a registered client's (inline in the clients file, or at
a URL) and the region's identity provider's (``EVI_OIDC_JWKS_URL``), and the key that
verifies a JWT whose header names it by ``kid`` and ``alg``.

Key selection as SMART App Launch 2.x (client-confidential-asymmetric, "signature
verification") says: a key of the set with that ``kid``, whose ``kty`` (and curve) fits
the header's ``alg`` and whose own ``alg``, if it has one, is that one. PyJWT parses the
keys (``PyJWK``) and fetches remote sets (``PyJWKClient``: http(s) only, no redirects).

A remote set is cached for ``lifespan`` seconds and fetched again when a token names a
``kid`` it does not hold (a rotated key), at most once per ``REFRESH_COOLDOWN`` seconds,
so tokens with invented ``kid`` values cannot make the server hammer the provider.
``cached`` answers from memory only (safe on the event loop); ``find`` may fetch.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from jwt import PyJWK, PyJWKClient
from jwt.exceptions import PyJWKClientError, PyJWTError

__all__ = [
    "ALGORITHMS",
    "KeySetError",
    "KeySetUnavailable",
    "StaticKeySet",
    "RemoteKeySet",
    "parse_key_set",
]

log = logging.getLogger(__name__)

#: the asymmetric JWS algorithms this server verifies: alg -> (kty, curve)
ALGORITHMS = {"RS256": ("RSA", None), "RS384": ("RSA", None), "ES256": ("EC", "P-256"), "ES384": ("EC", "P-384")}
#: a JWK carrying any of these is a private key: it has no place in a registration
_PRIVATE = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
#: seconds between two fetches of a remote set caused by an unknown ``kid``
REFRESH_COOLDOWN = 5.0


class KeySetError(ValueError):
    """A key set (or one of its keys) that cannot be used; the message says why."""


class KeySetUnavailable(Exception):
    """A remote key set could not be fetched, and none was fetched before."""


def _fitting_algorithms(jwk: dict, algorithms: tuple[str, ...]) -> list[str]:
    return [
        alg for alg in algorithms
        if (jwk.get("kty"), jwk.get("crv") if ALGORITHMS[alg][1] else None) == ALGORITHMS[alg]
        and jwk.get("alg") in (None, alg)
    ]


def _parse_key(jwk: Any, algorithms: tuple[str, ...]) -> dict[tuple[str, str], Any]:
    if not isinstance(jwk, dict):
        raise KeySetError("a key is not a JSON object")
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not kid:
        raise KeySetError("a key has no 'kid' (tokens name their key by kid)")
    if any(name in jwk for name in _PRIVATE):
        raise KeySetError(f"key {kid!r} holds private key material: register the public key only")
    if jwk.get("use") not in (None, "sig"):
        raise KeySetError(f"key {kid!r} is not for signatures (use={jwk.get('use')!r})")
    fitting = _fitting_algorithms(jwk, algorithms)
    if not fitting:
        raise KeySetError(
            f"key {kid!r} (kty={jwk.get('kty')!r}, crv={jwk.get('crv')!r}, alg={jwk.get('alg')!r}) fits none of "
            f"{', '.join(algorithms)}"
        )
    try:
        return {(kid, alg): PyJWK(jwk, algorithm=alg).key for alg in fitting}
    except PyJWTError as exc:
        raise KeySetError(f"key {kid!r} is not a valid {jwk.get('kty')} key: {exc}") from None


def parse_key_set(data: Any, algorithms: tuple[str, ...], *, strict: bool = True) -> dict[tuple[str, str], Any]:
    """``{(kid, alg): public key}`` for a JWK Set. ``strict`` (a registration): any key that
    does not fit, or a repeated ``kid``, is a ``KeySetError``; otherwise (a provider's
    published set, which may hold encryption keys or other algorithms) such keys are
    left out."""
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise KeySetError("a JWK Set is a JSON object with a 'keys' array")
    found: dict[tuple[str, str], Any] = {}
    for jwk in data["keys"]:
        try:
            parsed = _parse_key(jwk, algorithms)
        except KeySetError as exc:
            if strict:
                raise
            log.debug("key set: left out a key: %s", exc)
            continue
        if strict and any(k in found for k in parsed):
            raise KeySetError(f"two keys have the kid {next(iter(parsed))[0]!r}")
        for name, key in parsed.items():
            found.setdefault(name, key)
    if not found:
        raise KeySetError(f"the set holds no key for {', '.join(algorithms)}")
    return found


class StaticKeySet:
    """A set given inline (a client's ``jwks``): parsed once, never fetched."""

    def __init__(self, data: Any, algorithms: tuple[str, ...]):
        self._keys = parse_key_set(data, algorithms)

    def cached(self, kid: str, alg: str):
        return self._keys.get((kid, alg))

    def find(self, kid: str, alg: str):
        return self._keys.get((kid, alg))


class RemoteKeySet:
    """A set at a URL (a client's ``jwks_url``, the provider's ``EVI_OIDC_JWKS_URL``)."""

    def __init__(self, url: str, algorithms: tuple[str, ...], *, lifespan: float = 300.0, timeout: float = 5.0):
        try:
            self._client = PyJWKClient(url, cache_jwk_set=False, timeout=timeout)
        except PyJWKClientError as exc:
            raise KeySetError(str(exc)) from None
        self.url = url
        self.algorithms = algorithms
        self.lifespan = lifespan
        self._keys: dict[tuple[str, str], Any] | None = None
        self._fetched = 0.0  # monotonic time of the last successful fetch
        self._attempted = float("-inf")  # ... and of the last attempt
        self._error = ""
        self._lock = threading.Lock()

    def cached(self, kid: str, alg: str):
        """The key if the set in memory is fresh and holds it; None: ask ``find``."""
        keys = self._keys
        if keys is None or time.monotonic() - self._fetched > self.lifespan:
            return None
        return keys.get((kid, alg))

    def find(self, kid: str, alg: str):
        """The key, fetching the set when it is stale or lacks ``kid`` (cooldown allowing);
        None when the set does not hold it. ``KeySetUnavailable`` while no set could ever
        be fetched."""
        with self._lock:
            now = time.monotonic()
            fresh = self._keys is not None and now - self._fetched <= self.lifespan
            if fresh and (kid, alg) in self._keys:
                return self._keys[(kid, alg)]
            if now - self._attempted >= REFRESH_COOLDOWN:
                self._fetch(now)
            if self._keys is None:
                raise KeySetUnavailable(f"the JWK Set at {self.url} could not be fetched: {self._error}")
            return self._keys.get((kid, alg))

    def _fetch(self, now: float) -> None:
        self._attempted = now
        try:
            keys = parse_key_set(self._client.fetch_data(), self.algorithms, strict=False)
        except (PyJWTError, ValueError, OSError) as exc:  # unreachable, not JSON, no usable key
            self._error = str(exc)
            if self._keys is not None:
                log.warning("keeping the JWK Set fetched before from %s: fetching it again failed: %s", self.url, exc)
            return
        self._keys, self._fetched = keys, now
