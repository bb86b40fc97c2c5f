"""ConceptMap/$translate over HTTP (R4 conceptmap-operation-translate): GET and POST, type
and instance level, over the guide's ConceptMaps (stored at start-up) and stored ones."""

from __future__ import annotations

ICD10 = "http://hl7.org/fhir/sid/icd-10"
QUESTION = "https://evi-fhir.org/fhir/CodeSystem/evi-clinical-question"
INBOUND = "https://evi-fhir.org/fhir/ConceptMap/icd-10-to-evi-clinical-question"
FHIR_JSON = {"Content-Type": "application/fhir+json"}


def _matches(body: dict) -> list[tuple[str, str, str]]:
    assert body["resourceType"] == "Parameters", body
    out = []
    for p in body["parameter"]:
        if p["name"] == "match":
            parts = {x["name"]: x for x in p["part"]}
            out.append((parts["equivalence"]["valueCode"], parts["concept"]["valueCoding"]["code"],
                        parts["source"]["valueUri"]))
    return out


def _result(body: dict) -> bool:
    return next(p["valueBoolean"] for p in body["parameter"] if p["name"] == "result")


def test_get_at_type_level_translates_an_icd10_reason_with_the_guides_map(http):
    r = http.get("/ConceptMap/$translate", params={"system": ICD10, "code": "F90.0"})
    assert r.status_code == 200, r.text
    assert _result(r.json()) and _matches(r.json()) == [("wider", "adhd-add", INBOUND)]


def test_post_with_a_codeable_concept_and_a_target_system(http):
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "codeableConcept", "valueCodeableConcept": {"coding": [{"system": ICD10, "code": "F92.0"}]}},
        {"name": "targetsystem", "valueUri": QUESTION}]}
    r = http.post("/ConceptMap/$translate", json=body, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    assert sorted(c for _, c, _ in _matches(r.json())) == ["behaviour", "depression"]


def test_instance_level_uses_only_that_map_and_reverse_reads_it_backwards(http):
    found = http.get("/ConceptMap", params={"url": INBOUND}).json()
    map_id = found["entry"][0]["resource"]["id"]
    r = http.get(f"/ConceptMap/{map_id}/$translate", params={"system": QUESTION, "code": "sleep", "reverse": "true"})
    assert r.status_code == 200, r.text
    assert sorted(c for _, c, _ in _matches(r.json())) == ["F51", "G47"]
    assert {e for e, _, _ in _matches(r.json())} == {"narrower"}  # wider, read from the target side
    other = http.post(f"/ConceptMap/{map_id}/$translate", json={"resourceType": "Parameters", "parameter": [
        {"name": "coding", "valueCoding": {"system": ICD10, "code": "F84.5"}}]}, headers=FHIR_JSON)
    assert _matches(other.json()) == [("wider", "autism", INBOUND)]


def test_a_stored_concept_map_is_used_too(http, uid):
    local = f"http://ehr.example/{uid}/reason"
    cm = {"resourceType": "ConceptMap", "url": f"http://ehr.example/{uid}/ConceptMap", "status": "active",
          "group": [{"source": local, "target": QUESTION,
                     "element": [{"code": "R1", "target": [{"code": "trauma", "equivalence": "equivalent"}]}]}]}
    assert http.post("/ConceptMap", json=cm, headers=FHIR_JSON).status_code == 201
    r = http.get("/ConceptMap/$translate", params={"system": local, "code": "R1"})
    assert _matches(r.json()) == [("equivalent", "trauma", cm["url"])]
    named = http.get("/ConceptMap/$translate", params={"url": cm["url"], "system": ICD10, "code": "F90"})
    assert not _result(named.json()) and _matches(named.json()) == []  # only the named map


def test_no_mapping_is_200_with_result_false_and_a_message(http):
    r = http.get("/ConceptMap/$translate", params={"system": ICD10, "code": "Z00.0"})
    assert r.status_code == 200 and not _result(r.json())
    assert any(p["name"] == "message" and "Z00.0" in p["valueString"] for p in r.json()["parameter"])


def test_bad_requests_are_400_and_an_unknown_map_404(http):
    for params in ({"code": "F90"}, {"system": ICD10}, {"system": ICD10, "code": "F90", "reverse": "maybe"}):
        r = http.get("/ConceptMap/$translate", params=params)
        assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome", (params, r.text)
    r = http.get("/ConceptMap/$translate", params={"url": "http://nowhere.example/cm", "system": ICD10, "code": "F90"})
    assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"
    assert http.get("/ConceptMap/no-such-map/$translate", params={"system": ICD10, "code": "F90"}).status_code == 404
    r = http.post("/ConceptMap/$translate", json={"resourceType": "Patient"}, headers=FHIR_JSON)
    assert r.status_code == 400


def test_the_capability_statement_lists_translate_on_concept_map(http):
    rest = http.get("/metadata").json()["rest"][0]
    cm = next(r for r in rest["resource"] if r["type"] == "ConceptMap")
    assert {"name": "translate", "definition": "http://hl7.org/fhir/OperationDefinition/ConceptMap-translate"} in [
        {k: o[k] for k in ("name", "definition")} for o in cm.get("operation", [])]
