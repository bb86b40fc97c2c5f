"""Measure/{id}/$evaluate-measure over HTTP on the hand-built data set (conftest.py)."""

from __future__ import annotations

from tests.integration.reporting.conftest import BUP_HSA

SEPTEMBER = {"periodStart": "2026-09-01", "periodEnd": "2026-09-30"}
POP = "http://terminology.hl7.org/CodeSystem/measure-population"
VC_HSA = "SE2321000131-E000000000501"


def _evaluate(client, measure: str, **params) -> dict:
    r = client.get(f"/Measure/{measure}/$evaluate-measure", params={**SEPTEMBER, **params})
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["resourceType"] == "MeasureReport" and report["status"] == "complete"
    assert report["measure"] == f"https://evi-fhir.org/fhir/Measure/{measure}"
    return report


def _counts(group: dict) -> dict[str, int]:
    return {p["code"]["coding"][0]["code"]: p["count"] for p in group["population"]}


def _strata(group: dict, name: str) -> dict[str, int]:
    (stratifier,) = [s for s in group["stratifier"] if s["code"][0]["text"] == name]
    return {s["value"]["text"]: s["population"][0]["count"] for s in stratifier["stratum"]}


def test_assessed_within_deadline(client, world):
    report = _evaluate(client, "evi-assessed-within-deadline")
    (group,) = report["group"]
    # sA, sB, sC, sD were received in September (sE is October in Stockholm); none was
    # triaged by its due date: the triages ran today, months later
    assert _counts(group) == {"initial-population": 4, "denominator": 4, "numerator": 0}
    assert group["measureScore"] == {"value": 0.0}
    recent = _evaluate(client, "evi-assessed-within-deadline", periodStart=world["yesterday"],
                       periodEnd=world["yesterday"])
    assert _counts(recent["group"][0]) == {"initial-population": 1, "denominator": 1, "numerator": 1}
    assert recent["group"][0]["measureScore"] == {"value": 1.0}


def test_assessed_within_deadline_subject_list(client, world):
    report = _evaluate(client, "evi-assessed-within-deadline", reportType="subject-list")
    assert report["type"] == "subject-list"
    lists = {c["id"]: [e["item"]["reference"] for e in c["entry"]] for c in report["contained"]}
    expected = sorted(f"Task/{world['tasks'][k]}" for k in "ABCD")
    assert lists["initial-population-subjects"] == expected
    assert lists["numerator-subjects"] == []


def test_first_visit_within_30_days_and_days_to_first_visit(client, world):
    (group,) = _evaluate(client, "evi-first-visit-within-30-days")["group"]
    # sA: 2026-09-05 -> 2026-09-25 is 20 days; sB: 2026-09-10 -> 2026-10-20 is 40 days
    assert _counts(group) == {"initial-population": 2, "denominator": 2, "numerator": 1}
    assert group["measureScore"] == {"value": 0.5}
    (group,) = _evaluate(client, "evi-days-to-first-visit")["group"]
    assert _counts(group) == {"initial-population": 2, "measure-population": 2, "measure-observation": 2}
    assert group["measureScore"]["value"] == 30.0 and group["measureScore"]["code"] == "d"
    listed = _evaluate(client, "evi-first-visit-within-30-days", reportType="subject-list")
    lists = {c["id"]: [e["item"]["reference"] for e in c["entry"]] for c in listed["contained"]}
    assert lists["numerator-subjects"] == [world["sA"]]
    assert lists["denominator-subjects"] == sorted([world["sA"], world["sB"]])


def test_contacts_by_every_stratifier(client, world):
    (group,) = _evaluate(client, "evi-contacts")["group"]
    assert _counts(group) == {"initial-population": 4}
    assert _strata(group, "channel") == {"referral-electronic": 2, "e-service-self-referral-guardian": 1,
                                         "phone-advice": 1}
    assert _strata(group, "triage-outcome") == {"book-first-visit": 2, "refer-primary-care": 1, "none": 1}
    # ages on the day of receipt: pA turns 7 on 2026-09-10, after sA's receipt
    assert _strata(group, "age-band") == {"6-12": 1, "13-17": 1, "0-5": 1, "18+": 1}
    # pB's home address names 1480 by code; pD has no home address: its first one counts
    assert _strata(group, "municipality") == {"1485": 1, "1480": 1, "unknown": 1, "Atlantis": 1}
    assert _strata(group, "unit") == {BUP_HSA: 2, VC_HSA: 1, "none": 1}
    (municipality,) = [s for s in group["stratifier"] if s["code"][0]["text"] == "municipality"]
    coded = {s["value"]["text"]: s["value"].get("coding") for s in municipality["stratum"]}
    assert coded["1485"] == [{"system": "urn:oid:1.2.752.129.2.2.1.17", "code": "1485", "display": "Uddevalla"}]


def test_sip_and_integrated_care_of_the_examples(client):
    # examples/valid: CarePlan-sip-oskar created 2026-01-12 (Oskar has no address);
    # Task-care-transfer-kevin completed 2026-01-20 by the BUP mobile team
    january = {"periodStart": "2026-01-01", "periodEnd": "2026-01-31"}
    (group,) = _evaluate(client, "evi-sip-initiated", **january)["group"]
    assert _counts(group) == {"initial-population": 1}
    assert _strata(group, "municipality") == {"unknown": 1}
    (group,) = _evaluate(client, "evi-integrated-care", **january)["group"]
    assert _counts(group) == {"initial-population": 1}
    assert _strata(group, "mobile-team") == {"SE2321000131-E000000000401": 1}
    assert _counts(_evaluate(client, "evi-sip-initiated")["group"][0]) == {"initial-population": 0}
    assert _counts(_evaluate(client, "evi-integrated-care")["group"][0]) == {"initial-population": 0}


def test_units_without_slots(client):
    # primary-care and BUP clinics of the examples: bou-kalmar, vardcentral-uddevalla,
    # bup-uddevalla; only BUP Uddevalla has a free Slot in 2026-10-01..2026-10-21
    report = _evaluate(client, "evi-units-without-slots", reportType="subject-list")
    assert _counts(report["group"][0]) == {"initial-population": 2}
    (listed,) = report["contained"]
    assert [e["item"]["reference"] for e in listed["entry"]] == [
        "Organization/bou-kalmar", "Organization/vardcentral-uddevalla"]
    later = _evaluate(client, "evi-units-without-slots", periodStart="2026-10-01", periodEnd="2026-10-31")
    assert _counts(later["group"][0]) == {"initial-population": 3}


def test_post_parameters_and_client_errors(client):
    body = {"resourceType": "Parameters", "parameter": [{"name": "periodStart", "valueDate": "2026-09-01"},
                                                         {"name": "periodEnd", "valueDate": "2026-09-30"}]}
    r = client.post("/Measure/evi-contacts/$evaluate-measure", json=body,
                    headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 200, r.text
    assert r.json()["group"][0]["population"][0]["count"] == 4
    cases = [
        ("/Measure/evi-contacts/$evaluate-measure", {"periodStart": "2026-09-01"}, 400),
        ("/Measure/evi-contacts/$evaluate-measure", {**SEPTEMBER, "periodEnd": "2026-08-01"}, 400),
        ("/Measure/evi-contacts/$evaluate-measure", {**SEPTEMBER, "periodStart": "2026-02-30"}, 400),
        ("/Measure/evi-contacts/$evaluate-measure", {**SEPTEMBER, "reportType": "individual"}, 400),
        ("/Measure/evi-contacts/$evaluate-measure", {**SEPTEMBER, "subject": "Patient/x"}, 400),
        ("/Measure/no-such/$evaluate-measure", SEPTEMBER, 404),
    ]
    for path, params, status in cases:
        r = client.get(path, params=params)
        assert r.status_code == status, (params, r.text)
        assert r.json()["resourceType"] == "OperationOutcome"


def test_the_capability_statement_names_the_reporting_operations(client):
    rest = client.get("/metadata").json()["rest"][0]
    assert {"name": "skr-wait-times", "definition": "https://evi-fhir.org/fhir/OperationDefinition/skr-wait-times"} \
        in rest["operation"]
    (measure,) = [r for r in rest["resource"] if r["type"] == "Measure"]
    assert {"name": "evaluate-measure", "definition": "http://hl7.org/fhir/OperationDefinition/Measure-evaluate-measure"} \
        in measure["operation"]
