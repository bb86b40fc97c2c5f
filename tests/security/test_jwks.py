"""JWK Sets: selection by kid and alg, and a remote set fetched from the identity
provider's process (cached, fetched again on an unknown kid, with a cooldown)."""

import time

import pytest

from fhir_server.security import jwks
from fhir_server.security.jwks import KeySetError, KeySetUnavailable, RemoteKeySet, StaticKeySet, parse_key_set
from tests.support.auth import ClientKey, IdentityProvider
from tests.support.live_server import free_port

PEOPLE = ("RS256", "RS384", "ES256", "ES384")


def test_an_rsa_key_without_alg_verifies_every_rs_algorithm_and_an_ec_key_its_curve_only():
    rsa, p256 = ClientKey.new(alg="RS384"), ClientKey.new(alg="ES256")
    rsa_jwk = {k: v for k, v in rsa.jwk().items() if k != "alg"}
    keys = parse_key_set({"keys": [rsa_jwk, p256.jwk()]}, PEOPLE)
    assert set(keys) == {(rsa.kid, "RS256"), (rsa.kid, "RS384"), (p256.kid, "ES256")}
    assert StaticKeySet({"keys": [rsa.jwk()]}, PEOPLE).find(rsa.kid, "RS256") is None  # its alg says RS384


def test_a_published_set_leaves_out_keys_it_cannot_use_where_a_registration_refuses():
    good = ClientKey.new(alg="RS256")
    published = {"keys": [{"kty": "RSA", "use": "enc", "kid": "e1", "n": "AQAB", "e": "AQAB"},
                          {"kty": "oct", "kid": "h1", "k": "c2VjcmV0"}, good.jwk()]}
    assert set(parse_key_set(published, PEOPLE, strict=False)) == {(good.kid, "RS256")}
    with pytest.raises(KeySetError):
        parse_key_set(published, PEOPLE)
    for broken in (None, [], {"keys": {}}, {"keys": []}):
        with pytest.raises(KeySetError):
            parse_key_set(broken, PEOPLE, strict=False)


def test_a_remote_set_is_fetched_once_then_answered_from_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(jwks, "REFRESH_COOLDOWN", 0.3)
    with IdentityProvider(tmp_path) as idp:
        keys = RemoteKeySet(idp.jwks_url, PEOPLE)
        first = idp.keys[0]
        assert keys.cached(first.kid, "RS256") is None  # nothing fetched yet: the caller must wait
        assert keys.find(first.kid, "RS256") is not None
        assert keys.cached(first.kid, "RS256") is not None
        for _ in range(5):
            keys.find(first.kid, "RS256")
        assert keys.find("invented", "RS256") is None  # within the cooldown of the first fetch: not again
        assert idp.fetches == 1
        time.sleep(0.35)
        assert keys.find("invented", "RS256") is None  # fetched again: an unknown kid may be a new key
        assert keys.find("invented-too", "RS256") is None  # ... but not again within the cooldown
        assert keys.find(first.kid, "RS256") is not None
        assert idp.fetches == 2


def test_a_rotated_key_is_picked_up_on_its_first_unknown_kid(tmp_path, monkeypatch):
    monkeypatch.setattr(jwks, "REFRESH_COOLDOWN", 0.2)
    with IdentityProvider(tmp_path) as idp:
        keys = RemoteKeySet(idp.jwks_url, PEOPLE)
        assert keys.find(idp.keys[0].kid, "RS256") is not None
        time.sleep(0.25)
        new = idp.rotate()
        assert keys.cached(new.kid, "RS256") is None
        assert keys.find(new.kid, "RS256") is not None
        assert keys.cached(new.kid, "RS256") is not None and idp.fetches == 2


def test_an_unreachable_set_is_unavailable_until_fetched_and_an_old_one_is_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(jwks, "REFRESH_COOLDOWN", 0.0)
    nowhere = RemoteKeySet(f"http://127.0.0.1:{free_port()}/jwks", PEOPLE, timeout=2)
    with pytest.raises(KeySetUnavailable):
        nowhere.find("k", "RS256")
    with IdentityProvider(tmp_path) as idp:
        keys = RemoteKeySet(idp.jwks_url, PEOPLE)
        kid = idp.keys[0].kid
        assert keys.find(kid, "RS256") is not None
    # the provider is gone: a stale set is still used rather than refusing everyone
    keys.lifespan = 0.0
    assert keys.cached(kid, "RS256") is None
    assert keys.find(kid, "RS256") is not None


def test_only_http_urls_are_fetched():
    with pytest.raises(KeySetError):
        RemoteKeySet("file:///etc/passwd", PEOPLE)
