"""Who may see what over HTTP with real tokens (domain.md §5): each role of the default
policy against the example data, through reads, searches, includes, history, $everything,
batch and transaction answers; and protected identity on every response path for every
role. The engine-level cases (both backends) are in tests/engine/test_access.py."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from tests.support.auth import ClientKey, access_token, auth_server, bearer, client_entry
from tests.support.evi import EXAMPLES, TEST_REGION

FHIR_JSON = {"Content-Type": "application/fhir+json"}
SL = "http://hl7.se/fhir/ig/base/CodeSystem/SecurityLabel"

ROLES = {
    # name: (role, organization, scopes)
    "admin": ("admin", "Organization/evi-vgr", "system/*.cruds"),
    "evi": ("evi", "Organization/evi-vgr", "system/*.cruds"),
    "managing": ("care-unit", "Organization/vardcentral-uddevalla", "system/*.cruds"),
    "bup": ("care-unit", "Organization/bup-uddevalla", "system/*.cruds"),
    "kalmar": ("municipality", "Organization/socialtjansten-kalmar", "system/*.rs system/Task.cu system/Communication.cu"),
    "uddevalla": ("municipality", "Organization/socialtjansten-uddevalla", "system/*.rs"),
    "reporting": ("reporting", "Organization/evi-vgr", "system/*.rs"),
}
PROTECTED = {
    "resourceType": "Patient", "id": "protected-tove",
    "meta": {"security": [{"system": SL, "code": "sekretessmarkering"}]},
    "identifier": [{"system": "urn:evi:test:access-http", "value": "tove"}],
    "name": [{"family": "Skyddad", "given": ["Tove"]}], "gender": "female", "birthDate": "2013-05-05",
    "address": [{"line": ["Hemliga vägen 1"], "city": "Hemlingby"}],
    "telecom": [{"system": "phone", "value": "0701234567"}],
    "contact": [{"name": {"family": "Vårdnadshavare"}, "telecom": [{"system": "phone", "value": "0707654321"}]}],
    "managingOrganization": {"reference": "Organization/vardcentral-uddevalla"},
}
#: what makes the protected patient visible to the bup care unit and to Uddevalla's social services
ABOUT_TOVE = [
    {"resourceType": "ServiceRequest", "id": "referral-tove", "status": "active", "intent": "order",
     "subject": {"reference": "Patient/protected-tove"}, "performer": [{"reference": "Organization/bup-uddevalla"}],
     "requester": {"reference": "Organization/vardcentral-uddevalla"}},
    {"resourceType": "Communication", "id": "notice-tove", "status": "completed",
     "subject": {"reference": "Patient/protected-tove"}, "recipient": [{"reference": "Organization/socialtjansten-uddevalla"}],
     "sender": {"reference": "Organization/evi-vgr"}},
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A server with auth on holding the example data; a token per role."""
    tmp = tmp_path_factory.mktemp("access-http")
    keys = {name: ClientKey.new(f"c-{name}") for name in ROLES}
    clients = [client_entry(keys[n], role=r, organization=o, scopes=tuple(s.split())) for n, (r, o, s) in ROLES.items()]
    with auth_server(tmp, clients, storage=f"sqlite://{tmp / 'evi.db'}", region_file=str(TEST_REGION)) as live:
        tokens = {n: access_token(live, keys[n], ROLES[n][2]) for n in ROLES}
        resources = [json.loads(p.read_text()) for p in sorted((EXAMPLES / "valid").glob("*.json"))]
        resources += [PROTECTED, *ABOUT_TOVE]
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in resources]}
        loaded = httpx.post(live.base_url, json=bundle, headers={**bearer(tokens["admin"]), **FHIR_JSON}, timeout=120)
        assert loaded.status_code == 200, loaded.text[:500]
        clients = {n: httpx.Client(base_url=live.base_url, headers=bearer(t), timeout=30) for n, t in tokens.items()}
        yield live, clients
        for c in clients.values():
            c.close()


def _ids(client, path, **params) -> tuple[set[str], int | None]:
    r = client.get(path, params={"_count": "500", **params})
    assert r.status_code == 200, r.text
    body = r.json()
    return {e["resource"]["id"] for e in body.get("entry", []) if e["search"]["mode"] == "match"}, body.get("total")


def test_no_token_or_a_bad_one_is_401_and_metadata_stays_open(world):
    live, _ = world
    for headers in ({}, {"Authorization": "Bearer garbage"}, {"Authorization": "Basic dXNlcjpwdw=="}):
        r = httpx.get(f"{live.base_url}/Patient/protected-tove", headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert r.json()["issue"][0]["code"] == "login" and "Hemlingby" not in r.text
    assert httpx.get(f"{live.base_url}/metadata").status_code == 200
    anonymous = httpx.get(f"{live.base_url}/Patient", params={"_security": f"{SL}|sekretessmarkering"})
    assert anonymous.status_code == 401


def test_a_municipality_sees_its_own_and_nothing_of_another(world):
    _, c = world
    assert c["kalmar"].get("/Communication/notification-liam").status_code == 200
    assert c["kalmar"].get("/Patient/placed-child-liam").status_code == 200
    for path in ("/Patient/child-oskar", "/CarePlan/sip-oskar", "/Task/intake-liam", "/Patient/protected-tove"):
        r = c["kalmar"].get(path)
        assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome", path
    patients, total = _ids(c["kalmar"], "/Patient")
    assert "placed-child-liam" in patients and "child-oskar" not in patients and total == len(patients)
    assert _ids(c["uddevalla"], "/CarePlan") == ({"sip-oskar"}, 1)
    assert _ids(c["kalmar"], "/CarePlan") == (set(), 0)
    revinclude = c["kalmar"].get("/Patient", params={"_id": "placed-child-liam", "_revinclude": "Task:subject"}).json()
    included = {e["resource"]["id"] for e in revinclude["entry"] if e["search"]["mode"] == "include"}
    assert "social-services-dialogue-liam" in included and "intake-liam" not in included
    params = {"_id": "sip-oskar", "_include": ["CarePlan:care-team", "CarePlan:goal", "CarePlan:subject"]}
    include = c["uddevalla"].get("/CarePlan", params=params).json()
    # its CareTeam and child are visible to it; Goals are not a municipality's type
    assert {(e["resource"]["resourceType"], e["resource"]["id"]) for e in include["entry"]} == {
        ("CarePlan", "sip-oskar"), ("CareTeam", "sip-oskar"), ("Patient", "child-oskar")}


def test_a_municipality_cannot_create_a_task_owned_by_another(world):
    _, c = world
    mark = uuid.uuid4().hex
    task = {"resourceType": "Task", "status": "requested", "intent": "order",
            "identifier": [{"system": "urn:evi:test:access-http", "value": mark}],
            "for": {"reference": "Patient/placed-child-liam"},
            "owner": {"reference": "Organization/socialtjansten-uddevalla"}}
    refused = c["kalmar"].post("/Task", json=task, headers=FHIR_JSON)
    assert refused.status_code == 403 and refused.json()["issue"][0]["code"] == "forbidden"
    assert _ids(c["evi"], "/Task", identifier=f"urn:evi:test:access-http|{mark}")[1] == 0
    in_a_bundle = {"resourceType": "Bundle", "type": "transaction",
                   "entry": [{"resource": task, "request": {"method": "POST", "url": "Task"}}]}
    assert c["kalmar"].post("", json=in_a_bundle, headers=FHIR_JSON).status_code == 403
    own = {**task, "owner": {"reference": "Organization/socialtjansten-kalmar"}}
    assert c["kalmar"].post("/Task", json=own, headers=FHIR_JSON).status_code == 201
    scope_refused = c["kalmar"].post("/CarePlan", json={"resourceType": "CarePlan", "status": "draft",
                                                         "intent": "plan", "subject": {"reference": "Patient/x"}},
                                     headers=FHIR_JSON)
    assert scope_refused.status_code == 403  # system/*.rs does not create CarePlans


def test_a_care_unit_sees_its_referrals_and_reporting_reads_nothing(world):
    _, c = world
    referrals, _ = _ids(c["bup"], "/ServiceRequest")
    assert {"referral-school-npf-hugo", "referral-tove"} <= referrals and "phone-liam" not in referrals
    assert c["bup"].get("/Communication/notification-liam").status_code == 404
    assert _ids(c["reporting"], "/Patient") == (set(), 0)
    assert c["reporting"].get("/Patient/child-hugo").status_code == 404
    system = c["reporting"].get("/_history").json()
    assert system["total"] == 0


# ---------------------------------------------------------------------------- protected identity

#: who sees Tove, and whether redacted
SEES_TOVE = {"admin": True, "evi": False, "managing": False, "bup": True, "uddevalla": True}


def _redacted(resource: dict) -> bool:
    hidden = any(k in resource for k in ("address", "telecom", "photo")) or any(
        k in c for c in resource.get("contact", []) for k in ("address", "telecom"))
    labelled = any(s.get("code") == "REDACTED" for s in resource.get("meta", {}).get("security", []))
    assert hidden != labelled, resource
    return labelled


def _tove_everywhere(client) -> list[dict]:
    """Tove as each response path gives her to this caller."""
    found = [client.get("/Patient/protected-tove").json(), client.get("/Patient/protected-tove/_history/1").json()]
    for path, params in [("/Patient", {"_id": "protected-tove"}),
                         ("/Patient", {"_security": f"{SL}|sekretessmarkering"}),
                         ("/Patient", {"_id": "protected-tove", "_elements": "address,telecom,name"}),
                         ("/Patient/protected-tove/_history", {}),
                         ("/Patient/_history", {"_count": "1000"}),
                         ("/_history", {"_count": "1000"}),
                         ("/Patient/protected-tove/$everything", {}),
                         ("", {"_type": "Patient", "_id": "protected-tove"})]:
        body = client.get(path, params=params).json()
        tove = [e["resource"] for e in body.get("entry", [])
                if e.get("resource", {}).get("id") == "protected-tove" and "resource" in e]
        assert tove, (path, params, body)
        found += tove
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient/protected-tove"}},
        {"request": {"method": "GET", "url": "Patient?_id=protected-tove"}}]}
    answer = client.post("", json=batch, headers=FHIR_JSON).json()
    found += [answer["entry"][0]["resource"], answer["entry"][1]["resource"]["entry"][0]["resource"]]
    return found


@pytest.mark.parametrize("name", sorted(SEES_TOVE))
def test_protected_identity_on_every_response_path(world, name):
    _, c = world
    shown = _tove_everywhere(c[name])
    assert len(shown) == 12  # read, vread, 8 searches and histories, 2 batch entries
    assert all(_redacted(r) is SEES_TOVE[name] for r in shown), name


@pytest.mark.parametrize("name", ["kalmar", "reporting"])
def test_callers_who_may_not_see_the_patient_get_nothing_of_her(world, name):
    _, c = world
    assert c[name].get("/Patient/protected-tove").status_code == 404
    patients, total = _ids(c[name], "/Patient", _security=f"{SL}|sekretessmarkering")
    assert "protected-tove" not in patients


def test_a_search_by_the_hidden_address_does_not_find_her_for_a_redacted_caller(world):
    _, c = world
    assert "protected-tove" not in _ids(c["bup"], "/Patient", **{"address-city": "Hemlingby"})[0]
    assert "protected-tove" in _ids(c["evi"], "/Patient", **{"address-city": "Hemlingby"})[0]


def test_a_transaction_answer_is_redacted_and_the_update_keeps_the_stored_values(world):
    _, c = world
    view = c["bup"].get("/Patient/protected-tove").json()
    view["gender"] = "unknown"
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": view, "request": {"method": "PUT", "url": "Patient/protected-tove"}}]}
    answer = c["bup"].post("", json=bundle, headers=FHIR_JSON)
    assert answer.status_code == 200, answer.text
    assert _redacted(answer.json()["entry"][0]["resource"])
    stored = c["evi"].get("/Patient/protected-tove").json()
    assert stored["gender"] == "unknown"
    assert stored["address"] == PROTECTED["address"] and stored["telecom"] == PROTECTED["telecom"]
    merge = c["bup"].patch("/Patient/protected-tove", json={"address": None, "gender": "female"},
                           headers={"Content-Type": "application/merge-patch+json"})
    assert merge.status_code == 200 and _redacted(merge.json())
    assert c["evi"].get("/Patient/protected-tove").json()["address"] == PROTECTED["address"]
