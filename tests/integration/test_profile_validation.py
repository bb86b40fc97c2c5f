"""Profiles on the wire: writes that claim an EVI profile are validated (422 when they do
not conform), and $validate answers with an OperationOutcome (R4 resource-operation-validate)."""

import json
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
INVALID = sorted(p for p in (EXAMPLES / "invalid").glob("*.json") if not p.name.endswith(".expected.json"))
#: AuditEvents are written by the server only: a client's write is refused whatever it claims
WRITABLE = [p for p in INVALID if json.loads(p.read_text())["resourceType"] != "AuditEvent"]


def _expected(path: Path) -> dict:
    return json.loads(path.with_name(path.stem + ".expected.json").read_text())


def _claiming(resource: dict, profile: str) -> dict:
    meta = dict(resource.get("meta") or {})
    meta["profile"] = [profile]
    return {**resource, "meta": meta}


@pytest.mark.parametrize("path", WRITABLE[:6], ids=lambda p: p.stem)
def test_a_write_claiming_a_profile_it_breaks_is_422_and_stores_nothing(http, path):
    resource = _claiming(json.loads(path.read_text()), _expected(path)["profile"])
    resource.pop("id", None)
    before = http.get(f"/{resource['resourceType']}", params={"_summary": "count"}).json()["total"]
    r = http.post(f"/{resource['resourceType']}", json=resource)
    assert r.status_code == 422, r.text
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    wanted = _expected(path)["errors"][0]
    assert any(wanted["expression"] in i.get("expression", [""])[0] for i in outcome["issue"] if i.get("expression"))
    assert http.get(f"/{resource['resourceType']}", params={"_summary": "count"}).json()["total"] == before


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_validate_reports_every_expected_error_of_every_invalid_example(http, path):
    expected = _expected(path)
    resource = json.loads(path.read_text())
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": resource}, {"name": "profile", "valueUri": expected["profile"]}]}
    r = http.post(f"/{resource['resourceType']}/$validate", json=body)
    assert r.status_code == 200, r.text
    issues = [i for i in r.json()["issue"] if i["severity"] == "error"]
    for wanted in expected["errors"]:
        assert any(
            wanted["message_contains"].lower() in i["diagnostics"].lower()
            and any(wanted["expression"] in e for e in i.get("expression", [""]))
            for i in issues
        ), (wanted, issues)


VALID = sorted((EXAMPLES / "valid").glob("*.json")) + sorted((EXAMPLES / "scenarios").glob("*.json"))


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_validate_finds_no_error_in_any_valid_example(http, path):
    resource = json.loads(path.read_text())
    r = http.post(f"/{resource['resourceType']}/$validate", json=resource)
    assert r.status_code == 200, r.text
    assert [i for i in r.json()["issue"] if i["severity"] == "error"] == []


def test_validate_on_a_valid_example_and_on_a_stored_resource(http):
    valid = sorted((EXAMPLES / "valid").glob("Patient-*.json"))[0]
    patient = json.loads(valid.read_text())
    r = http.post("/Patient/$validate", json=patient)
    assert r.status_code == 200 and all(i["severity"] != "error" for i in r.json()["issue"]), r.text
    created = http.post("/Patient", json={"resourceType": "Patient", "active": True}).json()
    r = http.get(f"/Patient/{created['id']}/$validate")
    assert r.status_code == 200 and r.json()["issue"][0]["severity"] == "information"
    r = http.post("/Patient/$validate", json={"resourceType": "Patient", "active": "yes"})
    assert r.status_code == 200 and r.json()["issue"][0]["expression"] == ["Patient.active"]
    assert http.post("/Patient/$validate?profile=https://example.org/nope", json={"resourceType": "Patient"}).json()["issue"][0]["code"] == "not-found"


def test_plain_resources_claiming_nothing_stay_accepted(http):
    assert http.post("/Appointment", json={"resourceType": "Appointment", "status": "proposed", "participant": [{"status": "accepted", "actor": {"display": "x"}}]}).status_code == 201


def test_region_rule_requires_the_referral_profile_for_the_evi_unit():
    import httpx

    from fhir_server.settings import RequiredProfile
    from tests.support.live_server import LiveServer

    referral = "https://evi-fhir.org/fhir/StructureDefinition/evi-referral"
    rule = RequiredProfile(type="ServiceRequest", profile=referral, performer="Organization/evi-kalmar")
    with LiveServer(storage="sqlite://:memory:", required_profiles=[rule]) as live, httpx.Client(base_url=live.base_url) as http:
        plain = {"resourceType": "ServiceRequest", "status": "active", "intent": "order", "subject": {"reference": "Patient/p"}}
        assert http.post("/ServiceRequest", json=plain).status_code == 201  # not for the EVI unit
        to_evi = {**plain, "performer": [{"reference": "Organization/evi-kalmar"}]}
        r = http.post("/ServiceRequest", json=to_evi)
        assert r.status_code == 422 and referral in r.text
        assert r.json()["issue"][0]["expression"] == ["ServiceRequest.meta.profile"]
