""":missing=true / :missing=false (R4 search.html#modifiers) on every parameter type."""

from __future__ import annotations

import pytest

from fhir_server.conformance import ig_directory
from fhir_server.engine.guide import guide_content
from tests.integration.search.conftest import UCUM, patient

#: the implementation guide's ValueSets, stored at start-up (engine/guide.py), all with a url
GUIDE_VALUE_SETS = {r["id"] for r in guide_content(ig_directory()).resources if r["resourceType"] == "ValueSet"}


@pytest.fixture(scope="module")
def fhir(own_server):
    own_server.seed(
        patient("m-full", pnr="191212121212", family="Öberg", given=["Åsa"], birth="1912-12-12", gender="female",
                city="Malmö", managingOrganization={"reference": "Organization/org-1"}),
        patient("m-empty"),
        {"resourceType": "Organization", "id": "org-1", "name": "Region Skåne"},
        {"resourceType": "Observation", "id": "obs-value", "status": "final", "code": {"text": "vikt"},
         "valueQuantity": {"value": 72, "system": UCUM, "code": "kg"}},
        {"resourceType": "Observation", "id": "obs-bp", "status": "final", "code": {"text": "blodtryck"},
         "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                        "valueCodeableConcept": {"text": "hög"}}]},
        {"resourceType": "Observation", "id": "obs-novalue", "status": "final", "code": {"text": "tom"}},
        {"resourceType": "RiskAssessment", "id": "ra-prob", "status": "final", "subject": {"reference": "Patient/m-full"},
         "prediction": [{"probabilityDecimal": 0.2}]},
        {"resourceType": "RiskAssessment", "id": "ra-noprob", "status": "final", "subject": {"reference": "Patient/m-full"}},
        {"resourceType": "ValueSet", "id": "vs-url", "status": "active", "url": "http://evi.example/fhir/ValueSet/x"},
        {"resourceType": "ValueSet", "id": "vs-nourl", "status": "draft"},
    )
    return own_server


CASES = [
    # date
    ("Patient?birthdate:missing=true", {"m-empty"}),
    ("Patient?birthdate:missing=false", {"m-full"}),
    # string
    ("Patient?name:missing=true", {"m-empty"}),
    ("Patient?name:missing=false", {"m-full"}),
    ("Patient?address-city:missing=true", {"m-empty"}),
    # token
    ("Patient?identifier:missing=true", {"m-empty"}),
    ("Patient?identifier:missing=false", {"m-full"}),
    ("Patient?gender:missing=true", {"m-empty"}),
    ("Patient?gender:missing=false&gender=female", {"m-full"}),
    ("Patient?gender:missing=true&gender=female", set()),
    # reference
    ("Patient?organization:missing=true", {"m-empty"}),
    ("Patient?organization:missing=false", {"m-full"}),
    # quantity
    ("Observation?value-quantity:missing=true", {"obs-bp", "obs-novalue"}),
    ("Observation?value-quantity:missing=false", {"obs-value"}),
    # token on a component
    ("Observation?component-code:missing=false", {"obs-bp"}),
    # number
    ("RiskAssessment?probability:missing=true", {"ra-noprob"}),
    ("RiskAssessment?probability:missing=false", {"ra-prob"}),
    # uri
    ("ValueSet?url:missing=true", {"vs-nourl"}),
    ("ValueSet?url:missing=false", {"vs-url", *GUIDE_VALUE_SETS}),
    # columns are never missing
    ("Patient?_id:missing=true", set()),
    ("Patient?_id:missing=false", {"m-full", "m-empty"}),
    ("Patient?_lastUpdated:missing=true", set()),
    # combined with a chain
    ("RiskAssessment?subject:Patient.birthdate:missing=false", {"ra-prob", "ra-noprob"}),
]


@pytest.mark.parametrize("query,expected", CASES, ids=[c[0] for c in CASES])
def test_missing(fhir, query, expected):
    assert fhir.ids(query) == expected


def test_missing_on_a_composite(fhir):
    assert fhir.ids("Observation?component-code-value-concept:missing=false") == {"obs-bp"}
    assert fhir.ids("Observation?component-code-value-concept:missing=true") == {"obs-value", "obs-novalue"}


@pytest.mark.parametrize("query", ["Patient?birthdate:missing=maybe", "Patient?name:missing=", "Patient?name:missing=TRUE"])
def test_missing_needs_true_or_false(fhir, query):
    r = fhir.get(query)
    assert r.status_code == 400, f"{query}: {r.status_code} {r.text}"
