"""number and quantity parameters (R4 search.html#number, #quantity): prefixes,
the precision of the search value (``100`` is [99.5, 100.5)), units given as
|system|code or ||code, and UCUM conversion (``gt4000|...|mg`` finds 5 g)."""

from __future__ import annotations

import pytest

from tests.integration.search.conftest import UCUM


def _obs(rid: str, value: float, code: str | None, system: str | None = UCUM, unit: str | None = None) -> dict:
    q: dict = {"value": value}
    if unit or code:
        q["unit"] = unit or code
    if system:
        q["system"] = system
    if code:
        q["code"] = code
    return {"resourceType": "Observation", "id": rid, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "3024-7"}]}, "valueQuantity": q}


def _risk(rid: str, probability) -> dict:
    prediction = {"probabilityRange": probability} if isinstance(probability, dict) else {"probabilityDecimal": probability}
    return {"resourceType": "RiskAssessment", "id": rid, "status": "final",
            "subject": {"reference": "Patient/p-1"}, "prediction": [prediction]}


@pytest.fixture(scope="module")
def fhir(own_server):
    own_server.seed(
        _obs("q-100-4", 100.4, "mg"),
        _obs("q-100-6", 100.6, "mg"),
        _obs("q-200", 200, "mg"),
        _obs("q-5g", 5, "g"),
        _obs("q-tabl", 100, None, system=None, unit="tabletter"),
        _obs("q-ml", 2.5, "mL"),
        _risk("ra-low", 0.15),
        _risk("ra-high", 0.85),
        _risk("ra-range", {"low": {"value": 0.4}, "high": {"value": 0.6}}),
    )
    return own_server


MG = f"|{UCUM}|mg"
G = f"|{UCUM}|g"

CASES = [
    # --- number: RiskAssessment.prediction.probability (decimal or Range)
    ("RiskAssessment?probability=0.15", {"ra-low"}),
    ("RiskAssessment?probability=eq0.85", {"ra-high"}),
    ("RiskAssessment?probability=0.1", set()),  # [0.05, 0.15) excludes 0.15
    ("RiskAssessment?probability=0.150", {"ra-low"}),
    ("RiskAssessment?probability=0.151", set()),
    ("RiskAssessment?probability=0.5", set()),  # [0.45, 0.55) does not contain [0.4, 0.6]
    ("RiskAssessment?probability=ne0.15", {"ra-high", "ra-range"}),
    ("RiskAssessment?probability=gt0.5", {"ra-high", "ra-range"}),
    ("RiskAssessment?probability=gt0.85", set()),
    ("RiskAssessment?probability=lt0.5", {"ra-low", "ra-range"}),
    ("RiskAssessment?probability=lt0.15", set()),
    ("RiskAssessment?probability=ge0.85", {"ra-high"}),
    ("RiskAssessment?probability=ge0.6", {"ra-high", "ra-range"}),
    ("RiskAssessment?probability=le0.15", {"ra-low"}),
    ("RiskAssessment?probability=le0.4", {"ra-low", "ra-range"}),
    ("RiskAssessment?probability=sa0.5", {"ra-high"}),
    ("RiskAssessment?probability=eb0.5", {"ra-low"}),
    ("RiskAssessment?probability=ap0.85", {"ra-high"}),
    ("RiskAssessment?probability=0.15,0.85", {"ra-low", "ra-high"}),
    ("RiskAssessment?probability=gt0.1&probability=lt0.5", {"ra-low", "ra-range"}),
    # --- quantity without units: the number only, with the precision of the value
    ("Observation?value-quantity=100", {"q-100-4", "q-tabl"}),
    ("Observation?value-quantity=eq100", {"q-100-4", "q-tabl"}),
    ("Observation?value-quantity=100.4", {"q-100-4"}),
    ("Observation?value-quantity=100.00", {"q-tabl"}),
    ("Observation?value-quantity=101", {"q-100-6"}),
    ("Observation?value-quantity=gt100", {"q-100-4", "q-100-6", "q-200"}),
    ("Observation?value-quantity=ge100.6", {"q-100-6", "q-200"}),
    ("Observation?value-quantity=lt100.5", {"q-100-4", "q-tabl", "q-5g", "q-ml"}),
    ("Observation?value-quantity=le100", {"q-tabl", "q-5g", "q-ml"}),
    ("Observation?value-quantity=sa100.5", {"q-100-6", "q-200"}),
    ("Observation?value-quantity=eb100.5", {"q-100-4", "q-tabl", "q-5g", "q-ml"}),
    ("Observation?value-quantity=ap100", {"q-100-4", "q-100-6", "q-tabl"}),
    ("Observation?value-quantity=ne100", {"q-100-6", "q-200", "q-5g", "q-ml"}),
    ("Observation?value-quantity=300", set()),
    # --- with system and code
    (f"Observation?value-quantity=100{MG}", {"q-100-4"}),
    (f"Observation?value-quantity=100.6{MG}", {"q-100-6"}),
    (f"Observation?value-quantity=100{G}", set()),
    (f"Observation?value-quantity=100|http://example.org/units|mg", set()),
    ("Observation?value-quantity=100||mg", {"q-100-4"}),  # any system
    ("Observation?value-quantity=100||tabletter", {"q-tabl"}),  # the unit text when there is no code
    ("Observation?value-quantity=100||g", set()),
    (f"Observation?value-quantity=gt100{MG}", {"q-100-4", "q-100-6", "q-200", "q-5g"}),
    (f"Observation?value-quantity=lt100.5{MG}", {"q-100-4"}),
    (f"Observation?value-quantity=ne100{MG}", {"q-100-6", "q-200", "q-5g"}),
    (f"Observation?value-quantity=sa150{MG}", {"q-200", "q-5g"}),
    (f"Observation?value-quantity=eb150{MG}", {"q-100-4", "q-100-6"}),
    # --- UCUM conversion between mg and g (and mL / L)
    (f"Observation?value-quantity=5{G}", {"q-5g"}),
    (f"Observation?value-quantity=5000{MG}", {"q-5g"}),
    (f"Observation?value-quantity=gt4000{MG}", {"q-5g"}),
    (f"Observation?value-quantity=gt6000{MG}", set()),
    (f"Observation?value-quantity=lt1{G}", {"q-100-4", "q-100-6", "q-200"}),
    (f"Observation?value-quantity=0.2{G}", {"q-200"}),
    (f"Observation?value-quantity=ge0.1006{G}", {"q-100-6", "q-200", "q-5g"}),
    (f"Observation?value-quantity=0.0025|{UCUM}|L", {"q-ml"}),
    (f"Observation?value-quantity=2.5|{UCUM}|mL", {"q-ml"}),
    (f"Observation?value-quantity=2.5{MG}", set()),  # mL and mg are different dimensions
    # OR of quantities with different units
    (f"Observation?value-quantity=5{G},200{MG}", {"q-5g", "q-200"}),
]


@pytest.mark.parametrize("query,expected", CASES, ids=[c[0] for c in CASES])
def test_number_quantity_search(fhir, query, expected):
    assert fhir.ids(query) == expected


ERRORS = [
    "RiskAssessment?probability=abc",
    "RiskAssessment?probability=xx0.5",
    "RiskAssessment?probability=0.5.5",
    "RiskAssessment?probability:exact=0.5",
    "Observation?value-quantity=abc",
    "Observation?value-quantity=5|mg",  # needs number|system|code
    "Observation?value-quantity=gt|http://unitsofmeasure.org|mg",
]


@pytest.mark.parametrize("query", ERRORS)
def test_number_quantity_invalid_is_400(fhir, query):
    r = fhir.get(query)
    assert r.status_code == 400, f"{query}: {r.status_code} {r.text}"
    assert r.json()["resourceType"] == "OperationOutcome"
