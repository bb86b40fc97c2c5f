"""Result parameters (R4 search.html#summary, #elements, #total, #count):
_summary=true|text|data|count|false, _elements with the SUBSETTED tag,
_total, _count=0, and POST [type]/_search giving the same answer as GET."""

from __future__ import annotations

import pytest

from tests.integration.search.conftest import FHIR_JSON, PNR, entries, match_ids, patient

SUBSETTED = ("http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "SUBSETTED")
TAG = ("urn:evi:test:tag", "keep-me")


def _full(rid: str, pnr: str) -> dict:
    return patient(
        rid, pnr=pnr, family="Öberg", given=["Åsa"], birth="1912-12-12", gender="female", city="Malmö",
        meta={"tag": [{"system": TAG[0], "code": TAG[1]}]},
        text={"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Åsa Öberg</div>'},
        maritalStatus={"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "M"}]},
        communication=[{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "sv"}]}}],
        contact=[{"name": {"family": "Öberg", "given": ["Nils"]}}],
    )


@pytest.fixture(scope="module")
def fhir(own_server):
    own_server.seed(_full("rp-1", "191212121212"), _full("rp-2", "191212121220"), _full("rp-3", "191212121238"))
    return own_server


Q = f"Patient?identifier={PNR}|"


def _tags(resource: dict) -> set[tuple[str, str]]:
    return {(t.get("system"), t.get("code")) for t in resource.get("meta", {}).get("tag", ())}


def _resources(body: dict) -> list[dict]:
    return [e["resource"] for e in entries(body, "match")]


def test_no_summary_is_the_full_resource(fhir):
    for r in _resources(fhir.bundle(Q)):
        assert {"text", "maritalStatus", "communication", "contact", "name"} <= r.keys()
        assert SUBSETTED not in _tags(r)


def test_summary_false_is_the_full_resource(fhir):
    for r in _resources(fhir.bundle(Q + "&_summary=false")):
        assert {"text", "maritalStatus", "contact"} <= r.keys()
        assert SUBSETTED not in _tags(r)


def test_summary_true(fhir):
    body = fhir.bundle(Q + "&_summary=true")
    assert body["total"] == 3
    for r in _resources(body):
        assert SUBSETTED in _tags(r)
        assert TAG in _tags(r)  # the resource's own tags stay
        assert {"resourceType", "id", "meta", "identifier", "name", "gender", "birthDate", "address"} <= r.keys()
        assert not {"text", "maritalStatus", "communication", "contact"} & r.keys()


def test_summary_text(fhir):
    for r in _resources(fhir.bundle(Q + "&_summary=text")):
        assert SUBSETTED in _tags(r)
        assert {"resourceType", "id", "meta", "text"} <= r.keys()
        assert not {"name", "identifier", "maritalStatus", "birthDate"} & r.keys()


def test_summary_data(fhir):
    for r in _resources(fhir.bundle(Q + "&_summary=data")):
        assert SUBSETTED in _tags(r)
        assert "text" not in r
        assert {"name", "identifier", "maritalStatus", "communication", "contact"} <= r.keys()


def test_summary_count(fhir):
    body = fhir.bundle(Q + "&_summary=count")
    assert body["total"] == 3
    assert not entries(body, "match")


def test_summary_count_with_no_match(fhir):
    body = fhir.bundle(f"Patient?identifier={PNR}|000&_summary=count")
    assert body["total"] == 0
    assert not entries(body, "match")


def test_elements(fhir):
    body = fhir.bundle(Q + "&_elements=name,birthDate")
    assert body["total"] == 3
    for r in _resources(body):
        assert SUBSETTED in _tags(r)
        assert {"resourceType", "id", "meta", "name", "birthDate"} <= r.keys()
        assert not {"gender", "address", "identifier", "text", "maritalStatus", "contact"} & r.keys()
        assert r["name"][0]["family"] == "Öberg"


def test_elements_with_type_prefix(fhir):
    for r in _resources(fhir.bundle(Q + "&_elements=Patient.gender")):
        assert r["gender"] == "female"
        assert "name" not in r
        assert SUBSETTED in _tags(r)


def test_elements_unknown_element_gives_the_mandatory_minimum(fhir):
    for r in _resources(fhir.bundle(Q + "&_elements=noSuchElement")):
        assert r["resourceType"] == "Patient" and r["id"]
        assert not {"name", "gender", "text"} & r.keys()


def test_count_zero_gives_the_total_only(fhir):
    body = fhir.bundle(Q + "&_count=0")
    assert body["total"] == 3
    assert not entries(body, "match")
    assert not any(l["relation"] == "next" for l in body["link"])


def test_total_none(fhir):
    body = fhir.bundle(Q + "&_total=none")
    assert "total" not in body
    assert len(match_ids(body)) == 3


def test_total_accurate(fhir):
    assert fhir.bundle(Q + "&_total=accurate&_count=1")["total"] == 3


def test_self_link_names_the_search(fhir):
    body = fhir.bundle(Q + "&_count=1")
    self_link = next(l["url"] for l in body["link"] if l["relation"] == "self")
    assert self_link.startswith(f"{fhir.base_url}/Patient?")
    assert "identifier=" in self_link


def test_post_search_is_the_same_as_get(fhir):
    get = fhir.bundle(Q + "&gender=female&_sort=_id")
    r = fhir.http.post(
        "/Patient/_search",
        content=f"identifier={PNR}|&gender=female&_sort=_id".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": FHIR_JSON},
    )
    assert r.status_code == 200, r.text
    assert match_ids(r.json()) == match_ids(get) == ["rp-1", "rp-2", "rp-3"]


@pytest.mark.parametrize("query", [Q + "&_summary=bogus", Q + "&_count=-1", Q + "&_count=ten", Q + "&_total=maybe"])
def test_invalid_result_parameters_are_400(fhir, query):
    r = fhir.get(query)
    assert r.status_code == 400, f"{query}: {r.status_code} {r.text}"
    assert r.json()["resourceType"] == "OperationOutcome"
