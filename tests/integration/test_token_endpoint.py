"""``POST [base]/auth/token`` (SMART Backend Services) over HTTP: every failure the SMART
spec lists, and every success path (v1 and v2 scopes, inline keys and a JWK Set URL)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import uuid

import httpx
import jwt
import pytest

from tests.support.auth import (
    ClientKey,
    IdentityProvider,
    assertion_form,
    auth_server,
    bearer,
    client_entry,
    token_secret,
    write_clients,
)
from tests.support.live_server import free_port

HSA = "urn:oid:1.2.752.29.4.19"


@pytest.fixture(scope="module")
def keys():
    return {"rsa": ClientKey.new("kalmar-soc", "RS384"), "ec": ClientKey.new("evi-vgr", "ES384"),
            "hsa": ClientKey.new("vastervik-soc", "ES384")}


@pytest.fixture(scope="module")
def jwks_host(tmp_path_factory):
    """A process serving a client's JWK Set over HTTP (the client behind ``jwks_url``)."""
    with IdentityProvider(tmp_path_factory.mktemp("client-jwks"), alg="RS384") as host:
        yield host


@pytest.fixture(scope="module")
def live(tmp_path_factory, keys, jwks_host):
    published = jwks_host.keys[0]
    clients = [
        client_entry(keys["rsa"], role="municipality", organization="Organization/kalmar-soc",
                     scopes=("system/*.read", "system/Communication.cu", "system/Task.cu")),
        client_entry(keys["ec"], role="evi", organization="Organization/evi-vgr", scopes=("system/*.cruds",)),
        client_entry(keys["hsa"], role="municipality", organization=f"{HSA}|SE2120000829-VSOC",
                     scopes=("system/*.rs",)),
        client_entry(ClientKey("remote", "RS384", published.private_key, published.kid), role="care-unit",
                     organization="Organization/bup-kalmar", scopes=("system/*.rs",), jwks_url=jwks_host.jwks_url),
    ]
    with auth_server(tmp_path_factory.mktemp("token"), clients) as server:
        yield server


@pytest.fixture(scope="module")
def token_url(live):
    return live.base_url + "/auth/token"


def _post(token_url: str, form: dict | str, content_type: str | None = None) -> httpx.Response:
    if content_type:
        return httpx.post(token_url, content=form, headers={"Content-Type": content_type}, timeout=30)
    return httpx.post(token_url, data=form, timeout=30)


def _oauth_error(response: httpx.Response, status: int, error: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store" and response.headers["pragma"] == "no-cache"
    body = response.json()
    assert body["error"] == error, body
    assert isinstance(body["error_description"], str) and body["error_description"]
    return body["error_description"]


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def test_v2_scopes_with_an_es384_key_inline(live, keys, token_url):
    answer = _post(token_url, assertion_form(keys["ec"].assertion(token_url), "system/Patient.rs system/Task.cruds"))
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store" and answer.headers["pragma"] == "no-cache"
    body = answer.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "bearer" and 0 < body["expires_in"] <= 300
    assert body["scope"] == "system/Patient.rs system/Task.cruds"
    claims = _claims(body["access_token"])
    assert (claims["client_id"], claims["role"], claims["organization"]) == ("evi-vgr", "evi", "Organization/evi-vgr")
    assert claims["exp"] - time.time() <= 300
    assert httpx.get(live.base_url + "/Patient", headers=bearer(body["access_token"])).status_code == 200


def test_v1_scopes_with_an_rs384_key_are_granted_in_the_clients_words_and_cut_down(keys, token_url):
    asked = "system/*.read system/Task.write system/Patient.write launch"
    body = _post(token_url, assertion_form(keys["rsa"].assertion(token_url), asked)).json()
    assert body["scope"] == "system/*.read system/Task.cu"  # Task.write is cud; the client may have cu
    assert _claims(body["access_token"])["scope"] == "system/*.rs system/Task.cu"  # the same, in v2 letters


def test_a_client_whose_keys_are_at_a_jwks_url(jwks_host, token_url):
    published = jwks_host.keys[0]
    remote = ClientKey("remote", "RS384", published.private_key, published.kid)
    before = jwks_host.fetches
    for _ in range(2):
        answer = _post(token_url, assertion_form(remote.assertion(token_url), "system/Observation.rs"))
        assert answer.status_code == 200, answer.text
        assert answer.json()["scope"] == "system/Observation.rs"
    assert jwks_host.fetches - before <= 1  # cached


def test_an_organisation_registered_by_hsa_id_is_resolved_when_the_token_is_issued(live, keys, token_url):
    admin = _post(token_url, assertion_form(keys["ec"].assertion(token_url), "system/Organization.c")).json()
    unit = {"resourceType": "Organization", "name": "Västerviks kommun, socialtjänsten",
            "identifier": [{"system": HSA, "value": "SE2120000829-VSOC"}]}
    created = httpx.post(live.base_url + "/Organization", json=unit,
                         headers={**bearer(admin["access_token"]), "Content-Type": "application/fhir+json"})
    assert created.status_code == 201, created.text
    body = _post(token_url, assertion_form(keys["hsa"].assertion(token_url))).json()
    claims = _claims(body["access_token"])
    assert claims["organization"] == f"Organization/{created.json()['id']}"
    assert claims["organization_hsa"] == "SE2120000829-VSOC"


def _unsigned(claims: dict, header: dict) -> str:
    part = lambda data: base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{part(header)}.{part(claims)}."


@pytest.mark.parametrize("case", [
    "unknown client", "iss is not sub", "aud is the fhir base", "aud is elsewhere", "expired", "exp over five minutes",
    "no exp", "no jti", "unknown kid", "no kid", "signed by another key", "alg none", "alg HS256 with the public key",
    "alg RS256", "jku elsewhere", "garbage", "client_id of another client",
])
def test_every_assertion_failure_is_invalid_client(keys, token_url, case):
    rsa, now = keys["rsa"], int(time.time())
    form = None
    if case == "unknown client":
        assertion = ClientKey.new("stranger", "RS384").assertion(token_url)
    elif case == "iss is not sub":
        assertion = rsa.assertion(token_url, sub="evi-vgr")
    elif case == "aud is the fhir base":
        assertion = rsa.assertion(token_url.removesuffix("/auth/token"))
    elif case == "aud is elsewhere":
        assertion = rsa.assertion("https://other.example/auth/token")
    elif case == "expired":
        assertion = rsa.assertion(token_url, exp=now - 60)
    elif case == "exp over five minutes":
        assertion = rsa.assertion(token_url, exp=now + 600)
    elif case == "no exp":
        assertion = rsa.assertion(token_url, exp=None)
    elif case == "no jti":
        assertion = rsa.assertion(token_url, jti=None)
    elif case == "unknown kid":
        assertion = rsa.assertion(token_url, headers={"kid": "not-registered"})
    elif case == "no kid":
        assertion = jwt.encode({"iss": rsa.client_id, "sub": rsa.client_id, "aud": token_url, "exp": now + 60,
                                "jti": uuid.uuid4().hex}, rsa.private_key, algorithm="RS384")
    elif case == "signed by another key":
        assertion = ClientKey("kalmar-soc", "RS384", ClientKey.new(alg="RS384").private_key, rsa.kid).assertion(token_url)
    elif case == "alg none":
        assertion = _unsigned({"iss": rsa.client_id, "sub": rsa.client_id, "aud": token_url, "exp": now + 60,
                               "jti": uuid.uuid4().hex}, {"alg": "none", "kid": rsa.kid, "typ": "JWT"})
    elif case == "alg HS256 with the public key":
        public = json.dumps(rsa.jwk()).encode()  # the old confusion attack: the public key as an HMAC secret
        signing_input = _unsigned({"iss": rsa.client_id, "sub": rsa.client_id, "aud": token_url, "exp": now + 60,
                                   "jti": uuid.uuid4().hex}, {"alg": "HS256", "kid": rsa.kid, "typ": "JWT"})[:-1]
        signature = base64.urlsafe_b64encode(hmac.new(public, signing_input.encode(), hashlib.sha256).digest())
        assertion = f"{signing_input}.{signature.rstrip(b'=').decode()}"
    elif case == "alg RS256":
        assertion = rsa.assertion(token_url, headers={"alg": "RS256"})
    elif case == "jku elsewhere":
        assertion = rsa.assertion(token_url, headers={"jku": "https://attacker.example/jwks"})
    elif case == "garbage":
        assertion = "not.a.jwt"
    else:
        form = assertion_form(rsa.assertion(token_url), client_id="evi-vgr")
    _oauth_error(_post(token_url, form or assertion_form(assertion)), 401, "invalid_client")


def test_a_replayed_assertion_is_refused(keys, token_url):
    assertion = keys["ec"].assertion(token_url)
    assert _post(token_url, assertion_form(assertion)).status_code == 200
    description = _oauth_error(_post(token_url, assertion_form(assertion)), 401, "invalid_client")
    assert "jti" in description
    other_client = keys["rsa"].assertion(token_url, jti=_claims(assertion)["jti"])
    assert _post(token_url, assertion_form(other_client)).status_code == 200  # jti is per client


def test_a_refused_assertion_does_not_use_up_its_jti(keys, token_url):
    jti = uuid.uuid4().hex
    _oauth_error(_post(token_url, assertion_form(keys["ec"].assertion(token_url, jti=jti, aud="https://x.example"))),
                 401, "invalid_client")
    assert _post(token_url, assertion_form(keys["ec"].assertion(token_url, jti=jti))).status_code == 200


def test_scopes_outside_the_registration_are_invalid_scope(keys, token_url):
    for asked in ("system/Patient.d", "system/*.d user/*.rs", "patient/*.read", "openid"):
        _oauth_error(_post(token_url, assertion_form(keys["rsa"].assertion(token_url), asked)), 400, "invalid_scope")


@pytest.mark.parametrize("change, status, error", [
    ({"grant_type": None}, 400, "invalid_request"),
    ({"grant_type": "authorization_code"}, 400, "unsupported_grant_type"),
    ({"grant_type": "password"}, 400, "unsupported_grant_type"),
    ({"client_assertion_type": None}, 400, "invalid_request"),
    ({"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"}, 400, "invalid_request"),
    ({"client_assertion": None}, 400, "invalid_request"),
    ({"client_assertion": ""}, 400, "invalid_request"),
    ({"scope": None}, 400, "invalid_request"),
])
def test_a_request_that_is_not_a_backend_services_grant(keys, token_url, change, status, error):
    form = {k: v for k, v in {**assertion_form(keys["ec"].assertion(token_url)), **change}.items() if v is not None}
    _oauth_error(_post(token_url, form), status, error)


def test_a_form_that_cannot_be_read(keys, token_url):
    form = assertion_form(keys["ec"].assertion(token_url))
    _oauth_error(_post(token_url, json.dumps(form), "application/json"), 400, "invalid_request")
    encoded = httpx.QueryParams(form)
    _oauth_error(_post(token_url, f"{encoded}&grant_type=client_credentials", "application/x-www-form-urlencoded"),
                 400, "invalid_request")  # a parameter twice
    _oauth_error(_post(token_url, "a=%ff%fe", "application/x-www-form-urlencoded"), 400, "invalid_request")
    _oauth_error(_post(token_url, "&".join(f"p{i}=1" for i in range(50)), "application/x-www-form-urlencoded"),
                 400, "invalid_request")
    huge = assertion_form(keys["ec"].assertion(token_url, padding="x" * 100_000))
    assert "at most" in _oauth_error(_post(token_url, huge), 400, "invalid_request")
    assert httpx.get(token_url).status_code == 405


def _serve(port: int, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fhir_server.cli", "serve", "--port", str(port), "--log-level",
                             "warning", "--auth", "smart"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, **env})


def _wait(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"evi-fhir serve exited: {proc.stderr.read().decode()}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.1)


def test_an_assertion_replayed_to_another_process_on_the_database_is_refused(tmp_path):
    key = ClientKey.new("evi-vgr", "ES384")
    # two processes behind one public address (as behind a load balancer): one aud for both
    env = {"EVI_STORAGE": f"sqlite://{tmp_path / 'evi.db'}", "EVI_TOKEN_SECRET": token_secret(),
           "EVI_CLIENTS_FILE": str(write_clients(tmp_path / "clients.toml", [client_entry(key)])),
           "EVI_BASE_URL": "https://evi.example/fhir"}
    ports = [free_port(), free_port()]
    processes = [_serve(port, env) for port in ports]
    try:
        for port, proc in zip(ports, processes):
            _wait(f"http://127.0.0.1:{port}/fhir/metadata", proc)
        first, second = (f"http://127.0.0.1:{port}/fhir/auth/token" for port in ports)
        assertion = key.assertion("https://evi.example/fhir/auth/token")
        answer = _post(first, assertion_form(assertion))
        assert answer.status_code == 200, answer.text
        assert "jti" in _oauth_error(_post(second, assertion_form(assertion)), 401, "invalid_client")
        token = answer.json()["access_token"]  # the shared secret: a token of one process works on the other
        assert httpx.get(f"http://127.0.0.1:{ports[1]}/fhir/Patient", headers=bearer(token)).status_code == 200
    finally:
        for proc in processes:
            proc.terminate()
            proc.wait(timeout=10)


def test_with_auth_off_there_is_no_token_endpoint(http):
    answer = http.post("/auth/token", data={"grant_type": "client_credentials"})
    assert answer.status_code == 404 and answer.json()["resourceType"] == "OperationOutcome"
