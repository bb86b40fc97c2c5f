"""composite parameters (R4 search.html#composite): ``a$b``, both parts matched
against the same element (one Observation.component), parts parsed by their own
types (token + quantity with prefixes and units, token + token)."""

from __future__ import annotations

import pytest

from tests.integration.search.conftest import LOINC, SNOMED, UCUM

SYSTOLIC, DIASTOLIC, BP = "8480-6", "8462-4", "85354-9"


def _bp(rid: str, systolic: float, diastolic: float) -> dict:
    def component(code, value):
        return {"code": {"coding": [{"system": LOINC, "code": code}]},
                "valueQuantity": {"value": value, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}}

    return {"resourceType": "Observation", "id": rid, "status": "final",
            "code": {"coding": [{"system": LOINC, "code": BP}]},
            "component": [component(SYSTOLIC, systolic), component(DIASTOLIC, diastolic)]}


def _glucose(rid: str, value: float) -> dict:
    return {"resourceType": "Observation", "id": rid, "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "2345-7"}]},
            "valueQuantity": {"value": value, "unit": "mmol/L", "system": UCUM, "code": "mmol/L"}}


def _smoking(rid: str, code: str) -> dict:
    return {"resourceType": "Observation", "id": rid, "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "72166-2"}]},
            "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": code}]}}


@pytest.fixture(scope="module")
def fhir(own_server):
    own_server.seed(
        _bp("bp-high", 150, 95),
        _bp("bp-normal", 120, 80),
        _bp("bp-mixed", 118, 98),
        _glucose("glu-high", 6.1),
        _glucose("glu-low", 4.0),
        _smoking("smoke-ex", "8517006"),
        _smoking("smoke-never", "266919005"),
    )
    return own_server


CVQ = "Observation?component-code-value-quantity="
MMHG = f"|{UCUM}|mm[Hg]"

CASES = [
    # component code + value, both from one component
    (f"{CVQ}{LOINC}|{SYSTOLIC}$gt140", {"bp-high"}),
    (f"{CVQ}{LOINC}|{SYSTOLIC}$gt110", {"bp-high", "bp-normal", "bp-mixed"}),
    (f"{CVQ}{LOINC}|{SYSTOLIC}$lt119", {"bp-mixed"}),
    (f"{CVQ}{LOINC}|{SYSTOLIC}$150", {"bp-high"}),
    (f"{CVQ}{LOINC}|{SYSTOLIC}$95", set()),  # 95 is the diastolic of bp-high: another component
    (f"{CVQ}{LOINC}|{DIASTOLIC}$95", {"bp-high"}),
    (f"{CVQ}{LOINC}|{DIASTOLIC}$gt90", {"bp-high", "bp-mixed"}),
    (f"{CVQ}{DIASTOLIC}$ge98", {"bp-mixed"}),  # code without system
    (f"{CVQ}{LOINC}|{DIASTOLIC}$lt80", set()),
    (f"{CVQ}{LOINC}|{SYSTOLIC}$gt100{MMHG}", {"bp-high", "bp-normal", "bp-mixed"}),
    (f"{CVQ}{LOINC}|{SYSTOLIC}$gt100|{UCUM}|mmol/L", set()),
    (f"{CVQ}http://snomed.info/sct|{SYSTOLIC}$gt100", set()),
    # OR of composite values
    (f"{CVQ}{SYSTOLIC}$gt140,{DIASTOLIC}$gt96", {"bp-high", "bp-mixed"}),
    # AND of composite values
    (f"{CVQ}{SYSTOLIC}$gt110&component-code-value-quantity={DIASTOLIC}$gt90", {"bp-high", "bp-mixed"}),
    (f"{CVQ}{SYSTOLIC}$lt119&component-code-value-quantity={DIASTOLIC}$lt90", set()),
    # Observation.code + Observation.value
    (f"Observation?code-value-quantity={LOINC}|2345-7$gt5", {"glu-high"}),
    (f"Observation?code-value-quantity={LOINC}|2345-7$lt5", {"glu-low"}),
    (f"Observation?code-value-quantity={LOINC}|2345-7$6.1|{UCUM}|mmol/L", {"glu-high"}),
    (f"Observation?code-value-quantity={LOINC}|{SYSTOLIC}$gt100", set()),  # only in components
    (f"Observation?code-value-quantity={LOINC}|{BP}$gt100", set()),  # no Observation.value
    # combo: the Observation itself or any component
    (f"Observation?combo-code-value-quantity={SYSTOLIC}$150", {"bp-high"}),
    (f"Observation?combo-code-value-quantity=2345-7$4", {"glu-low"}),
    (f"Observation?combo-code-value-quantity={DIASTOLIC}$150", set()),
    # token + token
    (f"Observation?code-value-concept={LOINC}|72166-2${SNOMED}|8517006", {"smoke-ex"}),
    (f"Observation?code-value-concept=72166-2$266919005", {"smoke-never"}),
    (f"Observation?code-value-concept=72166-2$8517006,72166-2$266919005", {"smoke-ex", "smoke-never"}),
    (f"Observation?code-value-concept={LOINC}|72166-2${SNOMED}|77176002", set()),
    (f"Observation?code-value-concept={LOINC}|2345-7${SNOMED}|8517006", set()),
]


@pytest.mark.parametrize("query,expected", CASES, ids=[c[0] for c in CASES])
def test_composite_search(fhir, query, expected):
    assert fhir.ids(query) == expected


ERRORS = [
    f"{CVQ}{SYSTOLIC}",  # one part missing
    f"{CVQ}{SYSTOLIC}$gt140$x",  # one part too many
    f"{CVQ}{SYSTOLIC}$abc",  # the quantity part does not parse
    f"{CVQ}{SYSTOLIC}$gt140&component-code-value-quantity:exact={SYSTOLIC}$1",
]


@pytest.mark.parametrize("query", ERRORS)
def test_composite_invalid_is_400(fhir, query):
    r = fhir.get(query)
    assert r.status_code == 400, f"{query}: {r.status_code} {r.text}"
