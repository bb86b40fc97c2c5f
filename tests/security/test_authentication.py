"""Authentication as a whole: the Authorization header, the two kinds of token, what
never blocks, and the configurations the server refuses to start with."""

import pytest

from fhir_server.errors import Unauthorized
from fhir_server.security import (
    HSA_SYSTEM,
    AuthConfigError,
    OrganizationRef,
    bearer_token,
    build_authentication,
    unsafe_without_auth,
    with_token_secret,
)
from fhir_server.security.organizations import OrganizationCache
from fhir_server.settings import Settings
from fhir_server.storage.replay import MemoryReplayCache
from tests.support.auth import ClientKey, IdentityProvider, client_entry, token_secret, write_clients


@pytest.mark.parametrize("header, error", [
    (None, None), ("", None), ("   ", None), ("Basic dXNlcjpwYXNz", None), ("Digest x", None),
    ("Bearer", "invalid_token"), ("Bearer ", "invalid_token"), ("Bearer a b", "invalid_token"),
    ("Bearer ä", "invalid_token"), ("Bearer " + "a" * 9000, "invalid_token"), ("Bearertoken", "invalid_token"),
])
def test_no_or_a_malformed_authorization_header_is_401_with_a_bearer_challenge(header, error):
    with pytest.raises(Unauthorized) as caught:
        bearer_token(header)
    challenge = caught.value.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="evi-fhir"')
    assert ('error="invalid_token"' in challenge) == (error is not None)
    assert caught.value.status == 401 and caught.value.to_outcome()["issue"][0]["code"] == "login"


def test_a_bearer_token_is_taken_as_rfc_6750_writes_it():
    assert bearer_token("Bearer abc.DEF-_~+/ghi==") == "abc.DEF-_~+/ghi=="
    assert bearer_token("bearer  abc ") == "abc"


def _settings(tmp_path, **changes) -> Settings:
    clients = write_clients(tmp_path / "clients.toml", [client_entry(ClientKey.new("c1"))])
    return Settings(**{"auth": "smart", "clients_file": str(clients), "token_secret": token_secret(), **changes})


def test_auth_off_builds_nothing_and_smart_needs_clients_or_a_provider(tmp_path):
    assert build_authentication(Settings(auth="off"), MemoryReplayCache()) is None
    with pytest.raises(AuthConfigError, match="needs registered clients .* or both"):
        build_authentication(Settings(auth="smart"), MemoryReplayCache())
    built = build_authentication(_settings(tmp_path), MemoryReplayCache())
    assert [c.id for c in built.clients] == ["c1"] and built.provider is None


@pytest.mark.parametrize("changes, message", [
    ({"token_secret": "too short"}, "EVI_TOKEN_SECRET must be at least 32 bytes"),
    ({"clients_file": "/nonexistent/clients.toml"}, "cannot be read"),
    ({"oidc_issuer": "https://idp.example"}, "EVI_OIDC_ISSUER needs EVI_OIDC_JWKS_URL and EVI_OIDC_AUDIENCE"),
    ({"oidc_issuer": "https://idp.example", "oidc_jwks_url": "https://idp.example/jwks"}, "needs EVI_OIDC_AUDIENCE"),
    ({"oidc_audience": "evi"}, "need EVI_OIDC_ISSUER"),
    ({"oidc_issuer": "i", "oidc_audience": "a", "oidc_jwks_url": "ftp://idp/jwks"}, "EVI_OIDC_JWKS_URL"),
])
def test_a_setup_that_cannot_work_is_refused_without_echoing_the_secret(tmp_path, changes, message):
    with pytest.raises(AuthConfigError, match=message) as caught:
        build_authentication(_settings(tmp_path, **changes), MemoryReplayCache())
    assert "too short" not in str(caught.value)


def test_a_bad_clients_file_is_refused_naming_the_client(tmp_path):
    bad = write_clients(tmp_path / "bad.toml", [{**client_entry(ClientKey.new("c9")), "role": "root"}])
    with pytest.raises(AuthConfigError, match="client 'c9': key 'role'"):
        build_authentication(_settings(tmp_path, clients_file=str(bad)), MemoryReplayCache())


def test_a_secret_is_made_up_once_when_none_is_given(tmp_path):
    given = _settings(tmp_path)
    assert with_token_secret(given) == (given, False)
    made, made_up = with_token_secret(_settings(tmp_path, token_secret=None))
    assert made_up and len(made.token_secret) >= 32 and made.token_secret != with_token_secret(
        _settings(tmp_path, token_secret=None))[0].token_secret


@pytest.mark.parametrize("host, auth, insecure, refused", [
    ("127.0.0.1", "off", False, False), ("127.0.0.2", "off", False, False), ("::1", "off", False, False),
    ("[::1]", "off", False, False), ("localhost", "off", False, False),
    ("0.0.0.0", "off", False, True), ("::", "off", False, True), ("192.168.1.10", "off", False, True),
    ("evi.example", "off", False, True),
    ("0.0.0.0", "off", True, False), ("0.0.0.0", "smart", False, False),
])
def test_auth_off_is_for_loopback_only(host, auth, insecure, refused):
    why = unsafe_without_auth(Settings(host=host, auth=auth), insecure)
    assert (why is not None) == refused
    if refused:
        assert host in why and "--insecure-no-auth" in why and "--auth smart" in why


def test_the_event_loop_never_waits_for_keys_or_a_care_unit(tmp_path):
    with IdentityProvider(tmp_path) as idp:
        auth = build_authentication(_settings(tmp_path, **idp.settings()), MemoryReplayCache())
        looked_up: list[str] = []

        def lookup(spec):
            looked_up.append(spec)
            return OrganizationRef("Organization/evi-vgr", spec.split("|")[1])

        header = "Bearer " + idp.mint(hsa_id="U1", role="evi", care_unit="SE-EVI1", scope="user/*.rs")
        assert auth.authenticate(header, lookup, wait=False) is None  # keys not fetched yet
        caller = auth.authenticate(header, lookup, wait=True)
        assert (caller.user, caller.organization, caller.organization_hsa) == ("U1", "Organization/evi-vgr", "SE-EVI1")
        assert looked_up == [f"{HSA_SYSTEM}|SE-EVI1"]
        assert auth.authenticate(header, lookup, wait=False) == caller  # keys and unit in memory now
        other_unit = "Bearer " + idp.mint(hsa_id="U2", role="care-unit", care_unit="SE-BUP2")
        assert auth.authenticate(other_unit, lookup, wait=False) is None  # a unit not looked up yet
        assert auth.authenticate(other_unit, lookup, wait=True).organization_hsa == "SE-BUP2"
        assert len(looked_up) == 2


def test_tokens_of_no_one_we_trust_are_refused(tmp_path):
    auth = build_authentication(_settings(tmp_path), MemoryReplayCache())  # no identity provider
    person = ClientKey.new("someone", "RS256").sign({"hsa_id": "U1", "role": "evi"})
    for header, why in [("Bearer not-a-jwt", "not a JWT"), (f"Bearer {person}", "neither this server's"),
                        ("Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "neither this server's")]:
        with pytest.raises(Unauthorized, match=why):
            auth.authenticate(header, lambda spec: None, wait=False)


def test_resolved_organisations_are_kept_for_a_while(monkeypatch):
    cache = OrganizationCache()
    calls = []
    ref = cache.resolve("s|v", lambda spec: calls.append(spec) or OrganizationRef(None, "v"))
    assert cache.resolve("s|v", lambda spec: calls.append(spec)) == ref and calls == ["s|v"]
    monkeypatch.setattr(OrganizationCache, "TTL", -1.0)
    cache.resolve("s|w", lambda spec: OrganizationRef("Organization/w", "w"))
    assert cache.get("s|w") is None  # expired at once


def test_a_verified_token_is_remembered_until_it_expires(tmp_path, monkeypatch):
    from fhir_server.security.authentication import VerifiedTokens

    auth = build_authentication(_settings(tmp_path), MemoryReplayCache())
    client = next(iter(auth.clients))
    token = auth.tokens.issue(client, client.scopes, OrganizationRef(None, None))
    first = auth.authenticate(f"Bearer {token}", None, wait=False)
    monkeypatch.setattr(auth.tokens, "verify", lambda token: pytest.fail("verified twice"))
    assert auth.authenticate(f"Bearer {token}", None, wait=False) is first
    cache = VerifiedTokens()
    cache.put("gone", first, expires=1.0)  # expired long ago
    assert cache.get("gone") is None
    monkeypatch.setattr(VerifiedTokens, "MAX_ENTRIES", 3)
    for i in range(10):
        cache.put(f"t{i}", first, expires=9e9)
    assert len(cache._entries) <= 3 and cache.get("t9") is first


def _segment(data) -> str:
    import base64
    import json

    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_crafted_tokens_are_only_ever_refused(tmp_path):
    """Whatever a header holds, the answer is 401 (or, for a person's token whose keys
    are not in memory, a second look off the loop): never another exception (a 500)."""
    with IdentityProvider(tmp_path) as idp:
        auth = build_authentication(_settings(tmp_path, **idp.settings()), MemoryReplayCache())
        heads = [{"alg": "HS256"}, {"alg": "HS256", "typ": "at+jwt"}, {"alg": ["HS256"]}, {"alg": None},
                 {"alg": "RS256"}, {"alg": "RS256", "kid": {}}, {"alg": "RS256", "kid": "k" * 5000},
                 {"alg": "ES256", "kid": idp.keys[0].kid}, {"alg": "RS256", "kid": idp.keys[0].kid}, [], "x", 1]
        bodies = [{}, {"exp": "soon"}, {"exp": 9e99, "iss": idp.issuer, "aud": idp.audience}, [], "x", None]
        signatures = ["", "AAAA", _segment(b"\x00" * 256)]
        tokens = [f"{_segment(h)}.{_segment(b)}.{s}" for h in heads for b in bodies for s in signatures]
        tokens += [f"{_segment(b'not json')}.{_segment({})}.", "a.b.c", "a..", "...", "e30.e30.e30"]
        for token in tokens:
            for wait in (False, True):
                try:
                    assert auth.authenticate(f"Bearer {token}", lambda spec: OrganizationRef(None, None),
                                             wait=wait) is None and not wait
                except Unauthorized:
                    pass
