"""People's tokens: JWTs from the region's OpenID Connect provider (EVI staff, the
dashboard), domain.md §5.

A token is accepted when it is signed RS256, RS384, ES256 or ES384 by a key of the
provider's JWK Set (``EVI_OIDC_JWKS_URL``: cached, fetched again on an unknown ``kid``,
see ``jwks.py``), its ``iss`` is ``EVI_OIDC_ISSUER``, its ``aud`` names
``EVI_OIDC_AUDIENCE`` and it has not expired (``CLOCK_SKEW`` seconds of difference
between the provider's clock and ours allowed). Its claims make the Caller:

=============  ==========================================================
``hsa_id``     the person (``Caller.user``); required
``role``       one of the roles of domain.md §5; required
``care_unit``  the unit's HSA-id value, resolved by the server to the
               Organization with that identifier (``Caller.organization``)
``scope``      SMART ``user/…`` or ``system/…`` scopes, space-separated
``client_id``  (or ``azp``) the application the token was issued to
=============  ==========================================================
"""

from __future__ import annotations

import hmac

import jwt

from fhir_server.errors import Unauthorized, Unavailable
from fhir_server.security.caller import ROLES, Caller
from fhir_server.security.jwks import KeySetUnavailable, RemoteKeySet
from fhir_server.security.organizations import HSA_SYSTEM, OrganizationRef
from fhir_server.security.scopes import Scopes

__all__ = ["IdentityProvider", "PEOPLE_ALGORITHMS", "CLOCK_SKEW", "PENDING"]

PEOPLE_ALGORITHMS = ("RS256", "RS384", "ES256", "ES384")
CLOCK_SKEW = 30
#: ``claims`` would have to fetch the provider's keys: ask again with ``wait=True``
PENDING = object()


class IdentityProvider:
    def __init__(self, issuer: str, audience: str, jwks_url: str):
        self.issuer = issuer
        self.audience = audience
        self.keys = RemoteKeySet(jwks_url, PEOPLE_ALGORITHMS)

    def claims(self, token: str, alg: str, kid: object, *, wait: bool):
        """The verified claims, ``PENDING`` (only without ``wait``) or ``Unauthorized``."""
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("The bearer token's header names no key (kid)")
        key = self.keys.cached(kid, alg)
        if key is None and not wait:
            return PENDING
        if key is None:
            try:
                key = self.keys.find(kid, alg)
            except KeySetUnavailable:
                raise Unavailable("The region's identity provider did not give its keys; try again later") from None
        if key is None:
            raise Unauthorized("The bearer token is signed with a key the identity provider does not publish")
        try:
            return jwt.decode(
                token, key, algorithms=[alg], audience=self.audience, issuer=self.issuer, leeway=CLOCK_SKEW,
                options={"require": ["iss", "aud", "exp"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("The bearer token has expired") from None
        except jwt.InvalidTokenError:
            raise Unauthorized("The bearer token is not a valid token of the region's identity provider") from None

    def id_token_claims(self, token: str, client_id: str, nonce: str) -> dict:
        """The verified claims of an ID token the provider issued to ``client_id`` (the
        dashboard's sign-in, OpenID Connect Core §3.1.3.7): signed by a key of the same
        JWK Set, ``iss`` the provider, ``aud`` the client, not expired, and carrying the
        ``nonce`` of the sign-in that asked for it. May fetch the keys: a worker thread's."""
        try:
            head = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Unauthorized("The identity provider's ID token is not a JWT") from None
        alg, kid = head.get("alg"), head.get("kid")
        if alg not in PEOPLE_ALGORITHMS:
            raise Unauthorized(f"The ID token is signed {alg!r}, not one of {', '.join(PEOPLE_ALGORITHMS)}")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("The ID token's header names no key (kid)")
        try:
            key = self.keys.find(kid, alg)
        except KeySetUnavailable:
            raise Unavailable("The region's identity provider did not give its keys; try again later") from None
        if key is None:
            raise Unauthorized("The ID token is signed with a key the identity provider does not publish")
        try:
            claims = jwt.decode(
                token, key, algorithms=[alg], audience=client_id, issuer=self.issuer, leeway=CLOCK_SKEW,
                options={"require": ["iss", "aud", "exp", "sub"]},
            )
        except jwt.InvalidTokenError:
            raise Unauthorized("The ID token is not a valid token of the region's identity provider") from None
        if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"], nonce):
            raise Unauthorized("The ID token does not carry the nonce of this sign-in")
        return claims

    @staticmethod
    def care_unit(claims: dict) -> str | None:
        """The organisation to resolve, as ``system|value``, or None."""
        unit = claims.get("care_unit")
        return f"{HSA_SYSTEM}|{unit}" if isinstance(unit, str) and unit and "|" not in unit else None

    @staticmethod
    def caller(claims: dict, organization: OrganizationRef | None) -> Caller:
        user, role = claims.get("hsa_id"), claims.get("role")
        if not isinstance(user, str) or not user:
            raise Unauthorized("The bearer token names no person (hsa_id)")
        if role not in ROLES:
            raise Unauthorized(f"The bearer token's role must be one of {', '.join(ROLES)}")
        scope = claims.get("scope")
        if isinstance(scope, list):
            scope = [s for s in scope if isinstance(s, str)]
        client = claims.get("client_id", claims.get("azp"))
        return Caller(
            role=role,
            scopes=Scopes.parse(scope if isinstance(scope, (str, list)) else None),
            client_id=client if isinstance(client, str) else None,
            user=user,
            organization=organization.literal if organization else None,
            organization_hsa=organization.hsa if organization else None,
        )
