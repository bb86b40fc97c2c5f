"""The client's authentication JWT at the token endpoint, checked as SMART App Launch 2.x
says (client-confidential-asymmetric, used by Backend Services):

- header: ``alg`` RS384 or ES384 (never ``none``, never HS*), ``kid`` naming a key of
  the client's JWK Set; a ``jku``, if present, must be the client's registered
  ``jwks_url`` (a client with an inline set may not point elsewhere);
- claims: ``iss`` = ``sub`` = a registered client id, ``aud`` = this token endpoint's
  URL, ``exp`` in the future and at most five minutes ahead, ``jti`` never seen before
  within its lifetime (the caller records it once the signature holds);
- any failure: ``invalid_client`` (the spec's SHALL), with a description that says
  which check failed and echoes nothing of the assertion but the client id.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from fhir_server.errors import OAuthError
from fhir_server.security.clients import ASSERTION_ALGORITHMS, Client, Clients
from fhir_server.security.jwks import KeySetUnavailable

__all__ = ["VerifiedAssertion", "verify_assertion", "MAX_LIFETIME", "CLOCK_SKEW"]

#: an assertion's ``exp`` may lie at most this many seconds ahead (SMART: five minutes)
MAX_LIFETIME = 300
#: ... give or take this much difference between the client's clock and ours
CLOCK_SKEW = 5
_MAX_JTI = 255


@dataclass(frozen=True)
class VerifiedAssertion:
    client: Client
    jti: str
    #: seconds until the assertion expires (how long its jti must be remembered)
    remaining: float


def _invalid(description: str) -> OAuthError:
    return OAuthError("invalid_client", description)


def _header(assertion: str) -> tuple[str, str, object]:
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.InvalidTokenError:
        raise _invalid("client_assertion is not a signed JWT") from None
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in ASSERTION_ALGORITHMS:
        raise _invalid(f"client_assertion must be signed with {' or '.join(ASSERTION_ALGORITHMS)}")
    if not isinstance(kid, str) or not kid:
        raise _invalid("client_assertion's header names no kid")
    return alg, kid, header.get("jku")


def _client(assertion: str, clients: Clients) -> Client:
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise _invalid("client_assertion is not a signed JWT") from None
    iss, sub = claims.get("iss"), claims.get("sub")
    if not isinstance(iss, str) or iss != sub:
        raise _invalid("client_assertion's iss and sub must both be the client id")
    client = clients.get(iss)
    if client is None:
        raise _invalid("the client is not registered")
    return client


def verify_assertion(assertion: str, clients: Clients, token_url: str) -> VerifiedAssertion:
    """May fetch the client's JWK Set (``jwks_url``): call it off the event loop."""
    alg, kid, jku = _header(assertion)
    client = _client(assertion, clients)
    if jku is not None and jku != client.jwks_url:
        raise _invalid(f"client_assertion's jku is not the JWK Set URL registered for {client.id}")
    try:
        key = client.keys.find(kid, alg)
    except KeySetUnavailable:
        raise OAuthError("temporarily_unavailable", f"the JWK Set of {client.id} could not be fetched") from None
    if key is None:
        raise _invalid(f"no key {kid!r} for {alg} in the JWK Set of {client.id}")
    try:
        claims = jwt.decode(
            assertion, key, algorithms=[alg], audience=token_url, issuer=client.id, leeway=CLOCK_SKEW,
            options={"require": ["iss", "sub", "aud", "exp", "jti"]},
        )
    except jwt.ExpiredSignatureError:
        raise _invalid("client_assertion has expired") from None
    except jwt.InvalidAudienceError:
        raise _invalid(f"client_assertion's aud must be this token endpoint, {token_url}") from None
    except jwt.MissingRequiredClaimError as exc:
        raise _invalid(f"client_assertion lacks the {exc.claim} claim") from None
    except jwt.InvalidSignatureError:
        raise _invalid("client_assertion's signature does not verify with the client's key") from None
    except jwt.InvalidTokenError as exc:  # PyJWT's messages name the claim, never its value
        raise _invalid(f"client_assertion is not valid: {exc}") from None
    return VerifiedAssertion(client, _jti(claims), _remaining(claims))


def _jti(claims: dict) -> str:
    jti = claims["jti"]
    if not isinstance(jti, str) or not jti or len(jti) > _MAX_JTI:
        raise _invalid(f"client_assertion's jti must be a string of 1 to {_MAX_JTI} characters")
    return jti


def _remaining(claims: dict) -> float:
    remaining = claims["exp"] - time.time()
    if remaining > MAX_LIFETIME + CLOCK_SKEW:
        raise _invalid(f"client_assertion's exp may lie at most {MAX_LIFETIME} seconds ahead")
    return max(remaining, 0.0) + CLOCK_SKEW
