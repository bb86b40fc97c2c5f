"""Unknown and unsupported parameters (R4 search.html#errors): by default they
are ignored and reported in an OperationOutcome entry with search.mode=outcome;
with ``Prefer: handling=strict`` the search is refused with 400. Full-text search
(_text, _content) is refused clearly. Values that cannot be parsed are 400s."""

from __future__ import annotations

import pytest

from tests.integration.search.conftest import entries, match_ids, outcome, patient, service_request


@pytest.fixture(scope="module")
def fhir(own_server):
    own_server.seed(
        patient("u-1", family="Öberg", gender="female"),
        patient("u-2", family="Lind", gender="male"),
        service_request("u-sr", "Patient/u-1"),
        {"resourceType": "Location", "id": "u-loc", "name": "Vårdcentralen",
         "position": {"latitude": 55.6, "longitude": 13.0}},
    )
    return own_server


LENIENT = [
    # (query, the name the outcome must mention, the matches the rest of the query gives)
    ("Patient?foo=bar", "foo", {"u-1", "u-2"}),
    ("Patient?foo=bar&gender=female", "foo", {"u-1"}),
    ("Patient?gender=female&x-evi-custom=1", "x-evi-custom", {"u-1"}),
    ("Patient?_text=diabetes", "_text", {"u-1", "u-2"}),
    ("Patient?_content=diabetes", "_content", {"u-1", "u-2"}),
    ("Patient?_query=my-query", "_query", {"u-1", "u-2"}),
    ("Patient?_filter=name eq x", "_filter", {"u-1", "u-2"}),
    ("Patient?_list=list-1", "_list", {"u-1", "u-2"}),
    ("Patient?_sort=foo", "foo", {"u-1", "u-2"}),
    ("Patient?_include=Patient:foo", "Patient:foo", {"u-1", "u-2"}),
    ("Patient?_contained=true", "_contained", {"u-1", "u-2"}),
    ("ServiceRequest?subject:Patient.foo=x", "foo", {"u-sr"}),
    ("Patient?_has:ServiceRequest:subject:foo=x", "foo", {"u-1", "u-2"}),
    ("Location?near=55.6|13.0|10|km", "near", {"u-loc"}),  # special: known but not supported
]


@pytest.mark.parametrize("query,name,matches", LENIENT, ids=[c[0] for c in LENIENT])
def test_unknown_parameter_is_reported_and_ignored(fhir, query, name, matches):
    body = fhir.bundle(query)
    assert set(match_ids(body)) == matches
    oo = outcome(body)
    assert oo is not None, f"{query}: no OperationOutcome entry"
    assert oo["resourceType"] == "OperationOutcome"
    text = " ".join((i.get("diagnostics") or "") + " " + " ".join(i.get("expression") or ()) for i in oo["issue"])
    assert name in text, text
    assert all(i["severity"] in ("warning", "information") for i in oo["issue"])
    # the outcome entry is last, has no fullUrl, and is not counted
    assert entries(body)[-1]["search"]["mode"] == "outcome"
    assert "fullUrl" not in entries(body, "outcome")[0]
    assert body["total"] == len(matches)


@pytest.mark.parametrize("query", ["Patient?_text=diabetes", "Patient?_content=diabetes"])
def test_full_text_search_says_it_is_not_supported(fhir, query):
    oo = outcome(fhir.bundle(query))
    assert any("not supported" in (i.get("diagnostics") or "") for i in oo["issue"])
    assert any(i.get("code") == "not-supported" for i in oo["issue"])


def test_known_parameters_give_no_outcome(fhir):
    body = fhir.bundle("Patient?gender=female&_sort=_id&_count=5")
    assert outcome(body) is None


def test_lenient_preference_is_the_default(fhir):
    body = fhir.bundle("Patient?foo=bar", Prefer="handling=lenient")
    assert outcome(body) is not None
    assert set(match_ids(body)) == {"u-1", "u-2"}


STRICT = [q for q, _, _ in LENIENT]


@pytest.mark.parametrize("query", STRICT)
def test_strict_handling_refuses_unknown_parameters(fhir, query):
    r = fhir.get(query, Prefer="handling=strict")
    assert r.status_code == 400, f"{query}: {r.status_code} {r.text}"
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["severity"] in ("error", "fatal")


def test_strict_handling_accepts_known_parameters(fhir):
    r = fhir.get("Patient?gender=female", Prefer="handling=strict")
    assert r.status_code == 200, r.text
    assert match_ids(r.json()) == ["u-1"]


INVALID = [
    "Patient?birthdate=yesterday",
    "Patient?name:nonsense=x",  # an unknown modifier is an error, not ignored
    "Patient?gender:below=female",
    "Patient?_count=many",
    "Patient?_summary=all",
    "Patient?_has:Nothing:subject:status=x",
]


@pytest.mark.parametrize("query", INVALID)
def test_invalid_values_and_modifiers_are_400(fhir, query):
    r = fhir.get(query)
    assert r.status_code == 400, f"{query}: {r.status_code} {r.text}"
    assert r.json()["resourceType"] == "OperationOutcome"
