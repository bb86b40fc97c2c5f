"""People's tokens over HTTP, with the region's identity provider as a second process
serving its JWK Set: accepted, cached, rotated keys picked up, and every kind of bad
token refused with 401."""

from __future__ import annotations

import time

import httpx
import pytest

from fhir_server.security import jwks
from tests.support.auth import ClientKey, IdentityProvider, auth_server, bearer
from tests.support.live_server import free_port

PERSON = {"hsa_id": "SE2321000032-USR1", "role": "evi", "care_unit": "SE2321000032-EVI1", "scope": "user/*.cruds"}


@pytest.fixture
def idp(tmp_path):
    with IdentityProvider(tmp_path) as running:
        yield running


@pytest.fixture
def live(tmp_path, idp, monkeypatch):
    monkeypatch.setattr(jwks, "REFRESH_COOLDOWN", 0.2)  # the server runs in this process: a short cooldown
    with auth_server(tmp_path, [], **idp.settings()) as server:
        yield server


def test_a_persons_token_is_accepted_and_the_keys_fetched_once(live, idp):
    token = idp.mint(**PERSON)
    for _ in range(5):
        answer = httpx.get(live.base_url + "/Patient", headers=bearer(token))
        assert answer.status_code == 200, answer.text
    assert idp.fetches == 1


def test_a_rotated_key_is_picked_up_on_its_unknown_kid(live, idp):
    assert httpx.get(live.base_url + "/Patient", headers=bearer(idp.mint(**PERSON))).status_code == 200
    new = idp.rotate(alg="ES384")
    time.sleep(0.25)  # past the cooldown since the first fetch
    answer = httpx.get(live.base_url + "/Patient", headers=bearer(idp.mint(key=new, **PERSON)))
    assert answer.status_code == 200, answer.text
    assert idp.fetches == 2
    old = idp.keys[0]
    idp.keys.remove(old)  # the old key retired: once the set is fetched again it no longer verifies
    idp.publish()
    time.sleep(0.25)
    assert httpx.get(live.base_url + "/Patient", headers=bearer(idp.mint(key=ClientKey.new(alg="RS256"), **PERSON))
                     ).status_code == 401  # an unknown kid: fetched again, still unknown
    assert idp.fetches == 3
    assert httpx.get(live.base_url + "/Patient", headers=bearer(idp.mint(key=old, **PERSON))).status_code == 401


def test_bad_peoples_tokens_are_401_invalid_token(live, idp):
    stranger = ClientKey.new("stranger", "RS256", kid=idp.keys[0].kid)
    for token in [
        idp.mint(expires_in=-120, **PERSON),
        idp.mint(aud="another-app", **PERSON),
        idp.mint(iss="https://other-region.example", **PERSON),
        idp.mint(key=stranger, **PERSON),
        idp.mint(**{**PERSON, "role": "superuser"}),
        idp.mint(**{**PERSON, "hsa_id": None}),
    ]:
        answer = httpx.get(live.base_url + "/Patient", headers=bearer(token))
        assert answer.status_code == 401, answer.text
        assert 'error="invalid_token"' in answer.headers["www-authenticate"]
        assert answer.json()["issue"][0]["code"] == "login"


def test_a_provider_that_never_answered_is_503(tmp_path, idp):
    settings = {**idp.settings(), "oidc_jwks_url": f"http://127.0.0.1:{free_port()}/jwks"}
    with auth_server(tmp_path, [], **settings) as live:
        answer = httpx.get(live.base_url + "/Patient", headers=bearer(idp.mint(**PERSON)))
        assert answer.status_code == 503 and answer.json()["issue"][0]["code"] == "transient"
        assert httpx.get(live.base_url + "/Patient").status_code == 401  # no token: still 401
