from decimal import Decimal

import pytest

from fhir_server.errors import InvalidSearch
from fhir_server.search import SearchRegistry, extract_index, parse_search
from fhir_server.search.index import CompositeEntry, QuantityEntry, StringEntry, TokenEntry
from fhir_server.search.params import composite
from fhir_server.search.params.composite import MAX_COMPONENTS, MODIFIERS, CompositeValue, split_parts
from fhir_server.search.params.date import DateValue
from fhir_server.search.params.quantity import CANONICAL_SYSTEM, UCUM, QuantityValue
from fhir_server.search.params.string import StringValue
from fhir_server.search.params.token import TokenValue

LOINC = "http://loinc.org"


@pytest.fixture(scope="module")
def registry():
    return SearchRegistry.from_spec()


@pytest.mark.parametrize(
    "raw, parts",
    [
        ("a$b", ["a", "b"]),
        ("a$b$c", ["a", "b", "c"]),
        ("abc", ["abc"]),
        (r"a\$b$c", [r"a\$b", "c"]),
        ("a$", ["a", ""]),
        (f"{LOINC}|8480-6$gt140|{UCUM}|mm[Hg]", [f"{LOINC}|8480-6", f"gt140|{UCUM}|mm[Hg]"]),
    ],
)
def test_split_parts(raw, parts):
    assert split_parts(raw) == parts


def test_modifiers_and_limits():
    assert MODIFIERS == {"missing"} and MAX_COMPONENTS == 3


def test_values_are_parsed_by_the_plan_with_the_component_definitions():
    with pytest.raises(InvalidSearch):
        composite.parse_value("a$b", None)


def _values(registry, rtype, name, raw):
    [clause] = parse_search(rtype, [(name, raw)], registry).clauses
    return clause.values


def test_plan_parses_each_part_with_its_component_type(registry):
    [v] = _values(registry, "Observation", "code-value-quantity", f"{LOINC}|8480-6$gt140|{UCUM}|mm[Hg]")
    token, quantity = v.parts
    assert token == TokenValue(LOINC, "8480-6", True)
    assert isinstance(quantity, QuantityValue)
    assert (quantity.number.prefix, quantity.number.value, quantity.system, quantity.code) == ("gt", 140, UCUM, "mm[Hg]")


def test_plan_parses_date_and_string_components(registry):
    [d] = _values(registry, "Observation", "code-value-date", "8480-6$ge2026-01")
    assert isinstance(d.parts[1], DateValue) and d.parts[1].prefix == "ge"
    [s] = _values(registry, "Observation", "code-value-string", r"72166-2$Trött\$glad")
    assert s.parts[1] == StringValue("trott$glad", "Trött$glad")


def test_commas_or_whole_composite_values(registry):
    values = _values(registry, "Observation", "code-value-quantity", "8480-6$gt140,8462-4$gt90")
    assert [v.parts[0].code for v in values] == ["8480-6", "8462-4"]
    assert all(isinstance(v, CompositeValue) for v in values)


@pytest.mark.parametrize(
    "name, raw",
    [
        ("code-value-quantity", "8480-6"),  # one part of two
        ("code-value-quantity", "8480-6$gt140$x"),  # three parts of two
        ("code-value-quantity", "8480-6$soon"),  # the quantity part is not a number
        ("code-value-date", "8480-6$yesterday"),
        ("code-value-quantity:exact", "8480-6$140"),  # composites take no modifiers but :missing
    ],
)
def test_plan_refuses_bad_composite_values(registry, name, raw):
    with pytest.raises(InvalidSearch):
        parse_search("Observation", [(name, raw)], registry)


def test_missing_on_a_composite(registry):
    [clause] = parse_search("Observation", [("code-value-quantity:missing", "true")], registry).clauses
    assert clause.modifier == "missing" and clause.values == (True,)


def test_extract_keeps_only_composite_entries():
    entry = CompositeEntry("p", (TokenEntry("code", None, "1"),))
    assert composite.extract("p", [entry, {"code": "x"}, "y"]) == [entry]


def _composites(registry, resource, code):
    return [e for e in extract_index(registry, resource).entries if e.kind == "composite" and e.param == code]


def test_extractor_pairs_code_and_value_of_the_resource(registry):
    obs = {
        "resourceType": "Observation", "id": "o", "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "29463-7"}]},
        "valueQuantity": {"value": 42, "unit": "kg", "system": UCUM, "code": "kg"},
    }
    assert _composites(registry, obs, "code-value-quantity") == [
        CompositeEntry("code-value-quantity", (TokenEntry("code", LOINC, "29463-7"), QuantityEntry("value-quantity", UCUM, "kg", 42.0, 42.0))),
        CompositeEntry("code-value-quantity", (TokenEntry("code", LOINC, "29463-7"), QuantityEntry("value-quantity", CANONICAL_SYSTEM, "g", 42000.0, 42000.0))),
    ]


def test_extractor_handles_decimal_values(registry):
    obs = {
        "resourceType": "Observation", "id": "o", "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "29463-7"}]},
        "valueQuantity": {"value": 42.5, "system": UCUM, "code": "kg"},
    }
    quantities = [e.components[1] for e in _composites(registry, obs, "code-value-quantity")]
    assert [(q.code, q.low) for q in quantities] == [("kg", 42.5), ("g", 42500.0)]


def test_extractor_pairs_values_within_each_component(registry):
    obs = {
        "resourceType": "Observation", "id": "bp", "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
        "component": [
            {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]}, "valueQuantity": {"value": 120, "system": UCUM, "code": "mm[Hg]"}},
            {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]}, "valueQuantity": {"value": 80, "system": UCUM, "code": "mm[Hg]"}},
        ],
    }
    pairs = [(e.components[0].code, e.components[1].low) for e in _composites(registry, obs, "component-code-value-quantity")]
    assert pairs == [("8480-6", 120.0), ("8462-4", 80.0)]  # never 8480-6 with 80


def test_extractor_needs_every_component(registry):
    obs = {"resourceType": "Observation", "id": "o", "status": "final", "code": {"text": "mood"}, "valueString": "glad"}
    assert _composites(registry, obs, "code-value-quantity") == []
    # a CodeableConcept with only text has no code to pair with: a token entry without a code
    [entry] = _composites(registry, obs, "code-value-string")
    assert entry.components[1] == StringEntry("value-string", "glad", "glad")


def test_sorting_by_a_composite_is_reported(registry):
    plan = parse_search("Observation", [("_sort", "code-value-quantity")], registry)
    assert plan.sort == () and plan.unknown[0][0] == "_sort=code-value-quantity"


def test_decimal_sanity():
    # guards the premise of test_extractor_handles_decimal_values: fhirpathpy yields Decimal
    import fhirpathpy
    from fhirpathpy.models import models

    assert fhirpathpy.evaluate({"resourceType": "Observation", "valueQuantity": {"value": 42.5}}, "Observation.value.as(Quantity).value", {}, models["r4"]) == [Decimal("42.5")]
