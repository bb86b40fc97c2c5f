"""With auth on, every FHIR request but metadata, the SMART configuration and the token
endpoint needs a bearer token (domain.md §5): 401 with ``WWW-Authenticate: Bearer`` and
an OperationOutcome (login) otherwise. With auth off nothing changes."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest

from tests.support.auth import ClientKey, access_token, auth_server, bearer, client_entry, token_secret

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
SECRET = token_secret()


@pytest.fixture(scope="module")
def key():
    return ClientKey.new("evi-vgr", "ES384")


@pytest.fixture(scope="module")
def live(tmp_path_factory, key):
    clients = [client_entry(key, role="evi", organization="Organization/evi-vgr", scopes=("system/*.cruds",))]
    with auth_server(tmp_path_factory.mktemp("authn"), clients, token_secret=SECRET, max_body_size=4096) as server:
        yield server


@pytest.fixture(scope="module")
def token(live, key):
    return access_token(live, key)


def _login_refusal(response: httpx.Response, *, invalid_token: bool) -> str:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer")
    assert ('error="invalid_token"' in challenge) == invalid_token, challenge
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["code"] == "login"
    return outcome["issue"][0]["diagnostics"]


REQUESTS = [
    ("GET", "/Patient", None), ("GET", "/Patient/p1", None), ("GET", "/Patient/p1/_history/1", None),
    ("GET", "/Patient/p1/_history", None), ("GET", "/_history", None), ("GET", "", None),
    ("POST", "/Patient", {"resourceType": "Patient"}), ("PUT", "/Patient/p1", {"resourceType": "Patient", "id": "p1"}),
    ("PATCH", "/Patient/p1", []), ("DELETE", "/Patient/p1", None), ("POST", "/Patient/_search", None),
    ("POST", "", {"resourceType": "Bundle", "type": "batch"}), ("GET", "/Patient/p1/$everything", None),
    ("GET", "/Task/$triage-queue", None), ("POST", "/$reindex", None), ("GET", "/ValueSet/$expand", None),
    ("POST", "/Patient/$validate", {"resourceType": "Patient"}), ("GET", "/Patient/p1/Observation", None),
]


@pytest.mark.parametrize("method, path, body", REQUESTS)
def test_every_fhir_request_without_a_token_is_401(live, method, path, body):
    answer = httpx.request(method, live.base_url + path, json=body, headers=FHIR_JSON)
    assert "Authorization: Bearer" in _login_refusal(answer, invalid_token=False)


def test_what_is_not_a_valid_token_is_401_invalid_token(live, key, token):
    claims = jwt.decode(token, options={"verify_signature": False})
    now = int(time.time())
    expired = jwt.encode({**claims, "iat": now - 400, "exp": now - 100}, SECRET, headers={"typ": "at+jwt"})
    foreign = jwt.encode(claims, token_secret(), headers={"typ": "at+jwt"})
    person = ClientKey.new("idp", "RS256").sign({"iss": "https://idp.example", "aud": "evi", "exp": now + 60})
    for header, why in [
        ("Bearer garbage", "not a JWT"),
        ("Bearer", "not Bearer followed by a token"),
        (f"Bearer {expired}", "expired"),
        (f"Bearer {foreign}", "not a valid access token"),
        (f"Bearer {person}", "neither this server's nor"),  # no identity provider is configured here
        (f"Bearer {token[:-4]}AAAA", "not a valid access token"),
    ]:
        answer = httpx.get(live.base_url + "/Patient", headers={"Authorization": header})
        assert why in _login_refusal(answer, invalid_token=True)
    basic = httpx.get(live.base_url + "/Patient", headers={"Authorization": "Basic ZXZpOmV2aQ=="})
    _login_refusal(basic, invalid_token=False)


def test_a_token_opens_reads_searches_and_writes(live, token):
    headers = {**bearer(token), **FHIR_JSON}
    created = httpx.post(live.base_url + "/Patient", json={"resourceType": "Patient", "active": True}, headers=headers)
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    assert httpx.get(f"{live.base_url}/Patient/{rid}", headers=headers).status_code == 200
    assert httpx.get(f"{live.base_url}/Patient/{rid}/_history/1", headers=headers).status_code == 200
    assert httpx.get(f"{live.base_url}/Patient", params={"_id": rid}, headers=headers).json()["total"] == 1
    batch = {"resourceType": "Bundle", "type": "batch",
             "entry": [{"request": {"method": "GET", "url": f"Patient/{rid}"}}]}
    assert httpx.post(live.base_url, json=batch, headers=headers).json()["entry"][0]["response"]["status"] == "200 OK"


def test_a_request_is_refused_before_its_body_is_read(live, token):
    too_large = {"resourceType": "Patient", "text": {"status": "generated", "div": "x" * 10_000}}
    refused = httpx.post(live.base_url + "/Patient", json=too_large, headers=FHIR_JSON)
    _login_refusal(refused, invalid_token=False)  # 401, not the 413 a body past EVI_MAX_BODY_SIZE gets
    allowed = httpx.post(live.base_url + "/Patient", json=too_large, headers={**bearer(token), **FHIR_JSON})
    assert allowed.status_code == 413


def test_metadata_and_the_smart_configuration_are_open(live):
    statement = httpx.get(live.base_url + "/metadata").json()
    security = statement["rest"][0]["security"]
    assert security["service"][0]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR"}
    oauth = security["extension"][0]
    assert oauth["url"] == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    assert oauth["extension"] == [{"url": "token", "valueUri": live.base_url + "/auth/token"}]
    answer = httpx.get(live.base_url + "/.well-known/smart-configuration")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
    config = answer.json()
    assert set(config) == {"token_endpoint", "grant_types_supported", "token_endpoint_auth_methods_supported",
                           "token_endpoint_auth_signing_alg_values_supported", "scopes_supported", "capabilities"}
    assert config["token_endpoint"] == live.base_url + "/auth/token"
    assert config["grant_types_supported"] == ["client_credentials"]
    assert config["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert config["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]
    assert {"client-confidential-asymmetric", "permission-v1", "permission-v2"} == set(config["capabilities"])
    assert "system/*.rs" in config["scopes_supported"]


def test_links_follow_the_host_the_client_used(live):
    config = httpx.get(f"http://localhost:{live.port}/fhir/.well-known/smart-configuration").json()
    assert config["token_endpoint"] == f"http://localhost:{live.port}/fhir/auth/token"


def test_with_auth_off_nothing_asks_for_a_token(http):
    assert http.get("/Patient").status_code == 200
    assert "security" not in http.get("/metadata").json()["rest"][0]
    missing = http.get("/.well-known/smart-configuration")
    assert missing.status_code == 404 and missing.json()["issue"][0]["code"] == "not-found"


def test_a_server_without_a_secret_makes_one_up(tmp_path, key):
    with auth_server(tmp_path, [client_entry(key)], token_secret=None) as live:
        token = access_token(live, key)
        assert httpx.get(live.base_url + "/Patient", headers=bearer(token)).status_code == 200
