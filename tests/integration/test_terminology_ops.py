"""$expand, $lookup and $validate-code over HTTP, on the guide's terminology (stored at
start-up) and on CodeSystems and ValueSets that clients create."""

import pytest

from fhir_server.conformance import ig_directory, ig_resources

JSON = "application/fhir+json"
EVI = "https://evi-fhir.org/fhir"
TRIAGE_VS, TRIAGE_CS = f"{EVI}/ValueSet/evi-triage-outcome", f"{EVI}/CodeSystem/evi-triage-outcome"
ORG_CS = f"{EVI}/CodeSystem/evi-organization-type"
#: code -> Swedish display, as the guide's CodeSystem defines them
TRIAGE = {c["code"]: c["display"] for r in ig_resources(ig_directory()) if r.get("url") == TRIAGE_CS for c in r["concept"]}
TRIAGE_CODES = list(TRIAGE)


def _values(parameters: dict) -> dict:
    """name -> value[x] (first of each name) of a Parameters resource."""
    out = {}
    for p in parameters["parameter"]:
        value = next((v for k, v in p.items() if k.startswith("value")), p.get("part"))
        out.setdefault(p["name"], value)
    return out


def _outcome(response, status: int, mention: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert mention in body["issue"][0]["diagnostics"], body


@pytest.fixture
def animals(http, uid):
    """A client's own hierarchical CodeSystem and a ValueSet of its mammals."""
    system, vs_url = f"urn:test:animals:{uid}", f"urn:test:mammals:{uid}"
    cs = {"resourceType": "CodeSystem", "url": system, "status": "active", "content": "complete", "hierarchyMeaning": "is-a",
          "concept": [{"code": "animal", "display": "Animal", "concept": [
              {"code": "mammal", "display": "Mammal", "concept": [{"code": "dog", "display": "Dog"}, {"code": "cat", "display": "Cat"}]},
              {"code": "bird", "display": "Bird"}]}]}
    vs = {"resourceType": "ValueSet", "url": vs_url, "status": "active",
          "compose": {"include": [{"system": system, "filter": [{"property": "concept", "op": "is-a", "value": "mammal"}]}]}}
    for resource in (cs, vs):
        created = http.post(f"/{resource['resourceType']}", json=resource, headers={"Content-Type": JSON})
        assert created.status_code == 201, created.text
        resource["id"] = created.json()["id"]
    return cs, vs


# ------------------------------------------------------------------ $expand


def test_expand_the_triage_outcomes_with_swedish_displays(http):
    got = http.get("/ValueSet/$expand", params={"url": TRIAGE_VS})
    assert got.status_code == 200, got.text
    vs = got.json()
    assert vs["resourceType"] == "ValueSet" and vs["url"] == TRIAGE_VS
    contains = vs["expansion"]["contains"]
    assert vs["expansion"]["total"] == 7 and [c["code"] for c in contains] == TRIAGE_CODES
    assert {c["system"] for c in contains} == {TRIAGE_CS}
    displays = {c["code"]: c["display"] for c in contains}
    assert displays == TRIAGE
    assert displays["advice"] == "Rådgivning" and displays["acute-handover"] == "Överlämnat till BUP akut"
    assert vs["expansion"]["identifier"].startswith("urn:uuid:") and vs["expansion"]["timestamp"]


def test_expand_at_instance_level_with_paging_filter_and_language(http):
    page = http.get("/ValueSet/evi-triage-outcome/$expand", params={"offset": "2", "count": "2"}).json()["expansion"]
    assert page["total"] == 7 and page["offset"] == 2 and [c["code"] for c in page["contains"]] == TRIAGE_CODES[2:4]
    found = http.get("/ValueSet/evi-triage-outcome/$expand", params={"filter": "primärvård"}).json()["expansion"]
    assert [c["code"] for c in found["contains"]] == ["refer-primary-care"]
    english = http.get("/ValueSet/$expand", params={"url": TRIAGE_VS, "displayLanguage": "en"}).json()["expansion"]
    assert english["contains"][0]["display"] == "Advice given"


def test_expand_by_post_with_parameters_and_an_inline_value_set(http):
    body = {"resourceType": "Parameters", "parameter": [{"name": "url", "valueUri": TRIAGE_VS}, {"name": "count", "valueInteger": 1}]}
    got = http.post("/ValueSet/$expand", json=body, headers={"Content-Type": JSON})
    assert got.status_code == 200, got.text
    assert [c["code"] for c in got.json()["expansion"]["contains"]] == ["advice"]
    inline = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [
        {"system": ORG_CS, "filter": [{"property": "principal", "op": "=", "value": "municipality"}]}]}}
    body = {"resourceType": "Parameters", "parameter": [{"name": "valueSet", "resource": inline}]}
    got = http.post("/ValueSet/$expand", json=body, headers={"Content-Type": JSON})
    assert got.status_code == 200, got.text
    assert [c["code"] for c in got.json()["expansion"]["contains"]] == ["social-services", "school-health"]


def test_expand_a_client_value_set_with_a_hierarchy_filter(http, animals):
    cs, vs = animals
    by_url = http.get("/ValueSet/$expand", params={"url": vs["url"]}).json()
    assert [c["code"] for c in by_url["expansion"]["contains"]] == ["mammal", "dog", "cat"]
    by_id = http.get(f"/ValueSet/{vs['id']}/$expand").json()
    assert by_id["expansion"]["contains"] == by_url["expansion"]["contains"]


def test_expand_errors(http, animals, uid):
    _outcome(http.get("/ValueSet/$expand", params={"url": f"urn:nowhere:{uid}"}), 404, "not known")
    _outcome(http.get("/ValueSet/nobody-here/$expand"), 404, "ValueSet/nobody-here")
    _outcome(http.get("/ValueSet/$expand"), 400, "url")
    _outcome(http.get("/ValueSet/$expand", params={"url": TRIAGE_VS, "count": "many"}), 400, "count")
    _outcome(http.post("/ValueSet/$expand", json={"resourceType": "Patient"}, headers={"Content-Type": JSON}), 400, "Parameters")
    _outcome(http.post("/ValueSet/$expand", content=b"{", headers={"Content-Type": JSON}), 400, "JSON")
    # a ValueSet the server holds but cannot expand: its CodeSystem is not here
    broken = {"resourceType": "ValueSet", "url": f"urn:broken:{uid}", "status": "active",
              "compose": {"include": [{"system": f"urn:missing:{uid}"}]}}
    assert http.post("/ValueSet", json=broken, headers={"Content-Type": JSON}).status_code == 201
    _outcome(http.get("/ValueSet/$expand", params={"url": broken["url"]}), 422, f"urn:missing:{uid}")
    # a deleted ValueSet is gone at instance level
    cs, vs = animals
    assert http.delete(f"/ValueSet/{vs['id']}").status_code == 204
    assert http.get(f"/ValueSet/{vs['id']}/$expand").status_code == 410
    _outcome(http.get("/ValueSet/$expand", params={"url": vs["url"]}), 404, "not known")


# ------------------------------------------------------------------ $lookup


def test_lookup_an_organisation_type(http):
    got = http.get("/CodeSystem/$lookup", params={"system": ORG_CS, "code": "sis-home"})
    assert got.status_code == 200, got.text
    params = got.json()
    assert params["resourceType"] == "Parameters"
    values = _values(params)
    assert values["display"] == "SiS särskilt ungdomshem" and values["version"] == "0.1.0"
    properties = {}
    for p in params["parameter"]:
        if p["name"] == "property":
            parts = {q["name"]: q for q in p["part"]}
            properties[parts["code"]["valueCode"]] = parts["value"]
    assert properties["principal"] == {"name": "value", "valueCode": "state"}
    designations = [p for p in params["parameter"] if p["name"] == "designation"]
    assert {"name": "value", "valueString": "SiS special youth home"} in designations[0]["part"]


def test_lookup_by_post_with_a_coding(http):
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "coding", "valueCoding": {"system": ORG_CS, "code": "social-services"}},
        {"name": "property", "valueCode": "principal"}]}
    got = http.post("/CodeSystem/$lookup", json=body, headers={"Content-Type": JSON})
    assert got.status_code == 200, got.text
    props = [p for p in got.json()["parameter"] if p["name"] == "property"]
    assert props == [{"name": "property", "part": [
        {"name": "code", "valueCode": "principal"}, {"name": "value", "valueCode": "municipality"},
        {"name": "description", "valueString": props[0]["part"][2]["valueString"]}]}]


def test_lookup_errors(http, uid):
    _outcome(http.get("/CodeSystem/$lookup", params={"system": ORG_CS, "code": "castle"}), 404, "castle")
    _outcome(http.get("/CodeSystem/$lookup", params={"system": f"urn:nowhere:{uid}", "code": "a"}), 404, "not known")
    _outcome(http.get("/CodeSystem/$lookup", params={"code": "sis-home"}), 400, "system")


# ------------------------------------------------------------------ $validate-code


@pytest.mark.parametrize("params,result,display", [
    ({"code": "advice"}, True, "Rådgivning"),
    ({"code": "advice", "display": "Rådgivning"}, True, "Rådgivning"),
    ({"code": "advice", "display": "Advice given"}, True, "Rådgivning"),
    ({"code": "advice", "display": "Akut"}, False, "Rådgivning"),
    ({"code": "no-such-outcome"}, False, None),
])
def test_validate_code_in_the_triage_value_set(http, params, result, display):
    got = http.get("/ValueSet/$validate-code", params={"url": TRIAGE_VS, "system": TRIAGE_CS, **params})
    assert got.status_code == 200, got.text
    values = _values(got.json())
    assert values["result"] is result
    assert values.get("display") == display
    assert ("message" in values) is (not result)


def test_validate_code_at_instance_level_and_with_a_codeable_concept(http):
    wrong_system = http.get("/ValueSet/evi-triage-outcome/$validate-code", params={"system": ORG_CS, "code": "sis-home"}).json()
    assert _values(wrong_system)["result"] is False and "not in ValueSet" in _values(wrong_system)["message"]
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "url", "valueUri": TRIAGE_VS},
        {"name": "codeableConcept", "valueCodeableConcept": {"coding": [
            {"system": "http://snomed.info/sct", "code": "12345"}, {"system": TRIAGE_CS, "code": "acute-handover"}]}}]}
    got = http.post("/ValueSet/$validate-code", json=body, headers={"Content-Type": JSON})
    assert got.status_code == 200, got.text
    assert _values(got.json())["result"] is True


def test_validate_code_against_a_code_system(http, animals):
    cs, _ = animals
    assert _values(http.get("/CodeSystem/$validate-code", params={"url": ORG_CS, "code": "evi"}).json())["result"] is True
    assert _values(http.get(f"/CodeSystem/{cs['id']}/$validate-code", params={"code": "bird"}).json())["result"] is True
    assert _values(http.get(f"/CodeSystem/{cs['id']}/$validate-code", params={"code": "fish"}).json())["result"] is False


def test_validate_code_errors(http, uid):
    _outcome(http.get("/ValueSet/$validate-code", params={"url": f"urn:nowhere:{uid}", "system": "s", "code": "c"}), 404, "not known")
    _outcome(http.get("/ValueSet/$validate-code", params={"url": TRIAGE_VS, "code": "advice"}), 400, "system")
    _outcome(http.get("/ValueSet/$validate-code", params={"url": TRIAGE_VS}), 400, "code")
    _outcome(http.get("/ValueSet/nobody-here/$validate-code", params={"system": "s", "code": "c"}), 404, "nobody-here")


def test_xml_is_not_acceptable_for_operations(http):
    got = http.get("/ValueSet/$expand", params={"url": TRIAGE_VS}, headers={"Accept": "application/fhir+xml"})
    assert got.status_code == 406
