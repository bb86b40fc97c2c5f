"""GET metadata: the full CapabilityStatement, ``_summary=true``, ``mode=terminology``
(R4 http.html#capabilities), and a statement that follows runtime SearchParameters."""

from __future__ import annotations

FHIR_JSON = {"Content-Type": "application/fhir+json"}


def test_summary_keeps_what_a_client_needs_to_start(http):
    full = http.get("/metadata")
    summary = http.get("/metadata", params={"_summary": "true"})
    assert summary.status_code == 200
    body = summary.json()
    assert body["resourceType"] == "CapabilityStatement" and body["fhirVersion"] == "4.0.1"
    assert any(t["code"] == "SUBSETTED" for t in body["meta"]["tag"])
    resources = body["rest"][0]["resource"]
    patient = next(r for r in resources if r["type"] == "Patient")
    assert "searchParam" not in patient and "interaction" not in patient
    assert len(summary.content) * 5 < len(full.content)


def test_terminology_mode_lists_the_code_systems_the_server_answers_for(http):
    r = http.get("/metadata", params={"mode": "terminology"})
    assert r.status_code == 200
    body = r.json()
    assert body["resourceType"] == "TerminologyCapabilities"
    uris = {c["uri"] for c in body["codeSystem"]}
    assert "https://evi-fhir.org/fhir/CodeSystem/evi-triage-outcome" in uris
    assert body["expansion"]["paging"] is True


def test_bad_mode_or_summary_is_400(http):
    for params in ({"mode": "everything"}, {"_summary": "count"}):
        r = http.get("/metadata", params=params)
        assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"


def test_the_statement_names_a_search_parameter_created_at_run_time(http, uid):
    code = f"cap{uid[:8]}"
    assert code not in http.get("/metadata").text
    parameter = {"resourceType": "SearchParameter", "url": f"https://example.org/sp/{code}", "name": code,
                 "status": "active", "description": "x", "code": code, "base": ["Observation"], "type": "token",
                 "expression": "Observation.status"}
    created = http.post("/SearchParameter", json=parameter, headers=FHIR_JSON)
    assert created.status_code == 201
    try:
        assert code in http.get("/metadata").text
    finally:
        http.delete(f"/SearchParameter/{created.json()['id']}")
    assert code not in http.get("/metadata").text
