"""The server's own access tokens: what they carry, and what is refused."""

import time

import jwt
import pytest

from fhir_server.errors import Unauthorized
from fhir_server.security import OrganizationRef, Scopes, parse_clients
from fhir_server.security.access_token import AccessTokens
from fhir_server.security.clients import client_table
from tests.support.auth import ClientKey, client_entry, token_secret


@pytest.fixture(scope="module")
def clients():
    key = ClientKey.new("kalmar-soc")
    return parse_clients(client_table(client_entry(key, role="municipality", organization="Organization/kalmar-soc",
                                                   name="Kalmar kommun")))


def test_a_token_stands_for_its_client_role_organisation_and_granted_scopes(clients):
    tokens = AccessTokens(token_secret(), 300, clients)
    token = tokens.issue(clients.get("kalmar-soc"), Scopes.parse("system/*.rs system/Task.cu"),
                         OrganizationRef("Organization/kalmar-soc", "SE2120000829-SOC1"))
    claims = jwt.decode(token, options={"verify_signature": False})
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "at+jwt"}
    assert claims["exp"] - claims["iat"] == 300 and claims["exp"] <= time.time() + 300
    assert {claims["client_id"], claims["sub"]} == {"kalmar-soc"} and claims["jti"]
    caller = tokens.caller(token)
    assert (caller.role, caller.client_id, caller.client_name, caller.user) == ("municipality", "kalmar-soc",
                                                                               "Kalmar kommun", None)
    assert (caller.organization, caller.organization_hsa) == ("Organization/kalmar-soc", "SE2120000829-SOC1")
    assert caller.scopes.allows("Task", "u") and not caller.scopes.allows("Task", "d")


def test_an_organisation_that_could_not_be_resolved_is_none(clients):
    tokens = AccessTokens(token_secret(), 60, clients)
    caller = tokens.caller(tokens.issue(clients.get("kalmar-soc"), Scopes.parse("system/*.rs"), OrganizationRef(None, None)))
    assert caller.organization is None and caller.organization_hsa is None


def _refused(tokens: AccessTokens, token: str) -> str:
    with pytest.raises(Unauthorized) as caught:
        tokens.caller(token)
    assert caught.value.headers["WWW-Authenticate"].startswith('Bearer realm="evi-fhir", error="invalid_token"')
    return caught.value.message


def test_expired_foreign_tampered_and_orphaned_tokens_are_refused(clients):
    secret = token_secret()
    tokens = AccessTokens(secret, 60, clients)
    client = clients.get("kalmar-soc")
    good = tokens.issue(client, Scopes.parse("system/*.rs"), OrganizationRef(None, None))
    claims = jwt.decode(good, options={"verify_signature": False})
    now = int(time.time())
    assert "expired" in _refused(tokens, jwt.encode({**claims, "exp": now - 1}, secret, headers={"typ": "at+jwt"}))
    foreign = AccessTokens(token_secret(), 60, clients).issue(client, Scopes.parse("system/*.rs"), OrganizationRef(None, None))
    assert "not a valid access token" in _refused(tokens, foreign)
    head, body, signature = good.split(".")
    assert "not a valid access token" in _refused(tokens, f"{head}.{body}.{signature[::-1]}")
    assert "not an access token" in _refused(tokens, jwt.encode(claims, secret))  # no typ: not ours
    assert "not a valid" in _refused(tokens, jwt.encode({**claims, "iss": "elsewhere"}, secret, headers={"typ": "at+jwt"}))
    unscoped = {k: v for k, v in claims.items() if k != "scope"}
    assert "not a valid" in _refused(tokens, jwt.encode(unscoped, secret, headers={"typ": "at+jwt"}))
    removed = AccessTokens(secret, 60, parse_clients(""))  # the client was taken out of the file
    assert "not registered" in _refused(removed, good)
