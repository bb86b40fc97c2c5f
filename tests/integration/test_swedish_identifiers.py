"""Swedish identifiers over HTTP (model/identifiers.py): accepted variants are stored under
the emitted system, a value that breaks its system's format is 422 with nothing stored,
profile or not, on every interaction and path; searches with a variant find the stored."""

from __future__ import annotations

from tests.integration.fhirpy_helpers import pnr

FHIR_JSON = {"Content-Type": "application/fhir+json"}
PNR = "http://electronichealth.se/identifier/personnummer"
PNR_OID = "urn:oid:1.2.752.129.2.1.3.1"
RUN = "urn:evi:test:identifiers"


def _patient(uid: str, system: str, value: str) -> dict:
    return {"resourceType": "Patient", "identifier": [{"system": system, "value": value}, {"system": RUN, "value": uid}]}


def _count(http, uid: str) -> int:
    return http.get("/Patient", params={"identifier": f"{RUN}|{uid}", "_summary": "count"}).json()["total"]


def _assert_422(r, expression: str, words: str) -> None:
    assert r.status_code == 422, r.text
    issue = r.json()["issue"][0]
    assert issue["code"] == "value" and issue["expression"] == [expression], issue
    assert words in issue["diagnostics"], issue


def test_a_post_with_the_oid_is_stored_under_the_emitted_system(http, uid):
    value = pnr(uid)
    r = http.post("/Patient", json=_patient(uid, PNR_OID, value), headers=FHIR_JSON)
    assert r.status_code == 201, r.text
    assert r.json()["identifier"][0] == {"system": PNR, "value": value}
    stored = http.get(r.headers["Location"].split("/_history")[0]).json()
    assert stored["identifier"][0]["system"] == PNR
    for system in (PNR, PNR_OID, "https://terminology.hl7.se/sid/se-personnummer"):
        found = http.get("/Patient", params={"identifier": f"{system}|{value}"}).json()
        assert [e["resource"]["id"] for e in found.get("entry", [])] == [stored["id"]], system


def test_a_wrong_luhn_digit_without_any_profile_is_422_and_nothing_is_stored(http, uid):
    good = pnr(uid)
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)
    r = http.post("/Patient", json=_patient(uid, PNR, bad), headers=FHIR_JSON)
    _assert_422(r, "Patient.identifier[0].value", "Luhn")
    r = http.post("/Patient", json=_patient(uid, PNR_OID, bad), headers=FHIR_JSON)
    _assert_422(r, "Patient.identifier[0].value", "Luhn")
    assert _count(http, uid) == 0


def test_updates_and_patches_are_held_to_it_and_keep_the_stored_version(http, uid):
    created = http.post("/Patient", json=_patient(uid, PNR, pnr(uid)), headers=FHIR_JSON).json()
    wrong = {**created, "identifier": [{"system": PNR, "value": "20120304-2385"}]}
    _assert_422(http.put(f"/Patient/{created['id']}", json=wrong, headers=FHIR_JSON),
                "Patient.identifier[0].value", "12 digits")
    patch = [{"op": "replace", "path": "/identifier/0/value", "value": "201203042383"}]
    r = http.patch(f"/Patient/{created['id']}", json=patch, headers={"Content-Type": "application/json-patch+json"})
    _assert_422(r, "Patient.identifier[0].value", "Luhn")
    assert http.get(f"/Patient/{created['id']}").json()["meta"]["versionId"] == "1"


def test_references_by_identifier_in_a_transaction_are_checked_and_nothing_is_stored(http, uid):
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": _patient(uid, PNR, pnr(uid)), "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
                      "subject": {"reference": "Patient/x"},
                      "performer": [{"identifier": {"system": "urn:oid:1.2.752.29.4.19", "value": "SE-BUP1"}}]},
         "request": {"method": "POST", "url": "ServiceRequest"}}]}
    r = http.post("", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 422, r.text
    issue = r.json()["issue"][0]
    assert issue["expression"] == ["ServiceRequest.performer[0].identifier.value"] and "HSA-id" in issue["diagnostics"]
    assert _count(http, uid) == 0


def test_a_conditional_create_with_the_oid_matches_what_is_stored(http, uid):
    value = pnr(uid)
    first = http.post("/Patient", json=_patient(uid, PNR, value), headers=FHIR_JSON)
    again = http.post("/Patient", json=_patient(uid, PNR_OID, value),
                      headers={**FHIR_JSON, "If-None-Exist": f"identifier={PNR_OID}|{value}"})
    assert (first.status_code, again.status_code) == (201, 200), again.text
    assert _count(http, uid) == 1


def test_validate_reports_the_rule_with_200(http, uid):
    r = http.post("/Patient/$validate", json=_patient(uid, PNR, "201203042383"), headers=FHIR_JSON)
    assert r.status_code == 200
    errors = [i for i in r.json()["issue"] if i["severity"] == "error"]
    assert [i["expression"] for i in errors] == [["Patient.identifier[0].value"]] and "Luhn" in errors[0]["diagnostics"]
