"""The implementation guide is served read-only at its endpoints (engine/guide.py), and the
CapabilityStatement names its profiles."""

import httpx
import pytest

from fhir_server.conformance import ig_directory, ig_resources

JSON = "application/fhir+json"
PATIENT_PROFILE = "https://evi-fhir.org/fhir/StructureDefinition/evi-patient"
GUIDE = [r for r in ig_resources(ig_directory()) if r.get("id")]


def _outcome(response: httpx.Response, status: int, *mentions: str) -> dict:
    assert response.status_code == status, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    text = " ".join(i.get("diagnostics", "") for i in outcome["issue"])
    for m in mentions:
        assert m in text, text
    return outcome


def test_every_guide_resource_is_stored_with_its_own_id(http):
    for resource in GUIDE:
        got = http.get(f"/{resource['resourceType']}/{resource['id']}")
        assert got.status_code == 200, (resource["resourceType"], resource["id"], got.text)
        body = got.json()
        assert {k: v for k, v in body.items() if k != "meta"} == resource
        assert body["meta"]["versionId"]


def test_read_and_search_the_patient_profile(http):
    sd = http.get("/StructureDefinition/evi-patient").json()
    assert sd["url"] == PATIENT_PROFILE and sd["type"] == "Patient"
    by_url = http.get("/StructureDefinition", params={"url": PATIENT_PROFILE}).json()
    assert [e["resource"]["id"] for e in by_url["entry"]] == ["evi-patient"]
    by_name = http.get("/ValueSet", params={"name": "EviTriageOutcome"}).json()
    assert [e["resource"]["id"] for e in by_name["entry"]] == ["evi-triage-outcome"]
    profiles = http.get("/StructureDefinition", params={"type": "Task", "derivation": "constraint", "_count": "50"}).json()
    assert {e["resource"]["id"] for e in profiles["entry"]} >= {"evi-intake-task", "evi-care-transfer"}
    history = http.get("/StructureDefinition/evi-patient/_history").json()
    assert history["total"] >= 1 and history["entry"][0]["resource"]["url"] == PATIENT_PROFILE


def test_put_patch_and_delete_of_a_guide_resource_are_refused_with_409(http):
    sd = http.get("/StructureDefinition/evi-patient").json()
    changed = {**sd, "status": "retired"}
    _outcome(http.put("/StructureDefinition/evi-patient", json=changed, headers={"Content-Type": JSON}),
             409, "StructureDefinition/evi-patient", "read-only")
    _outcome(http.patch("/StructureDefinition/evi-patient", json=[{"op": "replace", "path": "/status", "value": "retired"}],
                        headers={"Content-Type": "application/json-patch+json"}), 409, "StructureDefinition/evi-patient")
    _outcome(http.delete("/StructureDefinition/evi-patient"), 409, "StructureDefinition/evi-patient")
    _outcome(http.delete("/CodeSystem", params={"url": "https://evi-fhir.org/fhir/CodeSystem/evi-triage-outcome"}),
             409, "CodeSystem/evi-triage-outcome")
    after = http.get("/StructureDefinition/evi-patient").json()
    assert after["status"] == sd["status"] and after["meta"] == sd["meta"]


def test_a_guide_canonical_cannot_be_claimed_by_another_resource(http, uid):
    sd = http.get("/StructureDefinition/evi-patient").json()
    # as a client would send a profile: the guide's generated snapshot is not valid R4
    # (test_the_guides_snapshots_are_refused_from_clients)
    copy = {k: v for k, v in sd.items() if k not in ("id", "meta", "snapshot")}
    outcome = _outcome(http.post("/StructureDefinition", json=copy, headers={"Content-Type": JSON}), 409, PATIENT_PROFILE)
    assert outcome["issue"][0]["expression"] == ["StructureDefinition.url"]
    _outcome(http.put(f"/StructureDefinition/copy-{uid[:20]}", json={**copy, "id": f"copy-{uid[:20]}"},
                      headers={"Content-Type": JSON}), 409, PATIENT_PROFILE)
    # the same resource under another canonical is an ordinary write
    own = {**copy, "url": f"https://region.example/fhir/StructureDefinition/{uid}", "name": "RegionPatient"}
    created = http.post("/StructureDefinition", json=own, headers={"Content-Type": JSON})
    assert created.status_code == 201, created.text
    assert http.delete(f"/StructureDefinition/{created.json()['id']}").status_code == 204


def test_a_transaction_that_deletes_a_guide_resource_changes_nothing(http, uid):
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:6a8e1a4c-0b7e-4c43-9a65-000000000001",
         "resource": {"resourceType": "Patient", "identifier": [{"system": "urn:test", "value": uid}]},
         "request": {"method": "POST", "url": "Patient"}},
        {"request": {"method": "DELETE", "url": "ValueSet/evi-triage-outcome"}},
    ]}
    _outcome(http.post("", json=bundle, headers={"Content-Type": JSON}), 409, "ValueSet/evi-triage-outcome")
    assert http.get("/Patient", params={"identifier": f"urn:test|{uid}"}).json()["total"] == 0
    assert http.get("/ValueSet/evi-triage-outcome").status_code == 200


def test_capability_statement_names_the_supported_profiles_and_operations(http):
    cs = http.get("/metadata").json()
    resources = {r["type"]: r for r in cs["rest"][0]["resource"]}
    assert PATIENT_PROFILE in resources["Patient"]["supportedProfile"]
    assert set(resources["Task"]["supportedProfile"]) >= {
        "https://evi-fhir.org/fhir/StructureDefinition/evi-intake-task",
        "https://evi-fhir.org/fhir/StructureDefinition/evi-care-transfer",
    }
    assert "supportedProfile" not in resources["Slot"]
    ops = {t: {o["name"]: o["definition"] for o in resources[t].get("operation", ())} for t in resources}
    assert ops["ValueSet"]["expand"] == "http://hl7.org/fhir/OperationDefinition/ValueSet-expand"
    assert ops["ValueSet"]["validate-code"] == "http://hl7.org/fhir/OperationDefinition/ValueSet-validate-code"
    assert ops["CodeSystem"]["lookup"] == "http://hl7.org/fhir/OperationDefinition/CodeSystem-lookup"
    assert ops["CodeSystem"]["validate-code"] == "http://hl7.org/fhir/OperationDefinition/CodeSystem-validate-code"
    assert "expand" not in ops["Patient"] and "lookup" not in ops["ValueSet"]
    assert ops["Patient"]["everything"] == "http://hl7.org/fhir/OperationDefinition/Patient-everything"
    assert all(len(resources[t].get("operation", ())) == len(ops[t]) for t in resources)  # each listed once


@pytest.mark.parametrize("resource_type", sorted({r["resourceType"] for r in GUIDE}))
def test_every_guide_type_is_searchable_by_url(http, resource_type):
    mine = [r for r in GUIDE if r["resourceType"] == resource_type and r.get("url")]
    for r in mine:
        found = http.get(f"/{resource_type}", params={"url": r["url"]}).json()
        assert [e["resource"]["id"] for e in found.get("entry", ())] == [r["id"]], r["url"]
