from decimal import Decimal

import pytest

from fhir_server.errors import InvalidSearch
from fhir_server.search.index import QuantityEntry
from fhir_server.search.params.quantity import CANONICAL_SYSTEM, UCUM, QuantityValue, canonical, extract, parse_value


def _q(v: QuantityValue):
    return v.number.prefix, v.number.value, v.number.low, v.number.high, v.system, v.code, v.canonical


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("5.4", ("eq", 5.4, 5.35, 5.45, None, None, False)),
        ("gt5.4", ("gt", 5.4, 5.35, 5.45, None, None, False)),
        ("5.4||mg", ("eq", 5.4, 5.35, 5.45, None, "mg", False)),  # any system, code as written
        # UCUM units are searched in their canonical (base) unit
        (f"5.4|{UCUM}|g", ("eq", 5.4, 5.35, 5.45, UCUM, "g", True)),
        (f"5.4|{UCUM}|mg", ("eq", 0.0054, 0.00535, 0.00545, UCUM, "g", True)),
        (f"le5|{UCUM}|kg", ("le", 5000, 4500, 5500, UCUM, "g", True)),
        (f"2|{UCUM}|h", ("eq", 7200, 5400, 9000, UCUM, "s", True)),
        (f"90|{UCUM}|min", ("eq", 5400, 5370, 5430, UCUM, "s", True)),
        (f"152|{UCUM}|cm", ("eq", 1.52, 1.515, 1.525, UCUM, "m", True)),
        (f"120|{UCUM}|mm[Hg]", ("eq", 120, 119.5, 120.5, UCUM, "mm[Hg]", False)),  # no conversion known
        ("5|http://snomed.info/sct|258684004", ("eq", 5, 4.5, 5.5, "http://snomed.info/sct", "258684004", False)),
        ("5|http://acme.org/units|mg", ("eq", 5, 4.5, 5.5, "http://acme.org/units", "mg", False)),  # not UCUM
        (f"5|{UCUM}|", ("eq", 5, 4.5, 5.5, UCUM, None, False)),
        ("5||", ("eq", 5, 4.5, 5.5, None, None, False)),
    ],
)
def test_parse_value(raw, expected):
    assert _q(parse_value(raw, None)) == pytest.approx(expected)


def test_escaped_separators_in_a_unit_are_unescaped():
    assert parse_value(r"5||a\|b", None).code == "a|b"


@pytest.mark.parametrize("raw", ["", "abc", "abc|x|y", "5|x", "5|a|b|c", "gt|s|c", "5 mg", "|http://unitsofmeasure.org|mg"])
def test_parse_value_rejects(raw):
    with pytest.raises(InvalidSearch):
        parse_value(raw, None)


@pytest.mark.parametrize(
    "code, value, expected",
    [
        ("g", 5, ("g", 5)),
        ("mg", 5, ("g", 0.005)),
        ("ug", 5, ("g", 5e-6)),
        ("kg", 5, ("g", 5000)),
        ("L", 2, ("L", 2)),
        ("l", 2, ("L", 2)),
        ("mL", 2, ("L", 0.002)),
        ("dL", 2, ("L", 0.2)),
        ("m", 3, ("m", 3)),
        ("cm", 3, ("m", 0.03)),
        ("mm", 3, ("m", 0.003)),
        ("km", 3, ("m", 3000)),
        ("mmol", 1, ("mol", 0.001)),
        ("s", 1, ("s", 1)),
        ("ms", 1, ("s", 0.001)),
        ("min", 2, ("s", 120)),
        ("h", 2, ("s", 7200)),
        ("d", 1, ("s", 86400)),
        ("wk", 1, ("s", 604800)),
        ("a", 1, ("s", 31557600)),
    ],
)
def test_canonical(code, value, expected):
    found = canonical(code, value)
    assert found is not None and found[0] == expected[0] and found[1] == pytest.approx(expected[1])


@pytest.mark.parametrize("code", ["mm[Hg]", "%", "kg/m2", "[lb_av]", "Pa", "cd", "points", ""])
def test_canonical_unknown_units(code):
    assert canonical(code, 1.0) is None


def test_extract_ucum_quantity_adds_its_canonical_form():
    # the value as recorded, then a row in the base unit that only UCUM-unit searches look at
    assert extract("p", [{"value": 5, "unit": "mg", "system": UCUM, "code": "mg"}]) == [
        QuantityEntry("p", UCUM, "mg", 5.0, 5.0),
        QuantityEntry("p", CANONICAL_SYSTEM, "g", pytest.approx(0.005), pytest.approx(0.005)),
    ]


def test_extract_base_unit_also_has_a_canonical_row():
    assert extract("p", [{"value": 5, "system": UCUM, "code": "g"}]) == [
        QuantityEntry("p", UCUM, "g", 5.0, 5.0),
        QuantityEntry("p", CANONICAL_SYSTEM, "g", 5.0, 5.0),
    ]


def test_extract_unknown_ucum_unit_has_no_canonical_row():
    assert extract("p", [{"value": 120, "system": UCUM, "code": "mm[Hg]"}]) == [QuantityEntry("p", UCUM, "mm[Hg]", 120.0, 120.0)]


def test_extract_unit_text_without_code_or_system():
    assert extract("p", [{"value": 7, "unit": "points"}]) == [QuantityEntry("p", None, "points", 7.0, 7.0)]


def test_extract_other_systems_are_not_converted():
    q = {"value": 5, "system": "http://acme.org/units", "code": "mg"}
    assert extract("p", [q]) == [QuantityEntry("p", "http://acme.org/units", "mg", 5.0, 5.0)]


def test_extract_range():
    r = {"low": {"value": 1, "system": UCUM, "code": "kg"}, "high": {"value": 2, "system": UCUM, "code": "kg"}}
    assert extract("p", [r]) == [
        QuantityEntry("p", UCUM, "kg", 1.0, 2.0),
        QuantityEntry("p", CANONICAL_SYSTEM, "g", 1000.0, 2000.0),
    ]


def test_extract_open_range_takes_the_unit_of_its_bound():
    [entry] = extract("p", [{"high": {"value": 2, "unit": "points"}}])
    assert (entry.code, entry.low, entry.high) == ("points", float("-inf"), 2.0)


def test_extract_skips_quantities_without_a_value():
    assert extract("p", [{"unit": "mg", "system": UCUM, "code": "mg"}, "5 mg", None, 5]) == []


def test_extract_accepts_decimals_from_fhirpath():
    # fhirpathpy returns FHIR decimals as decimal.Decimal (composite components go through it)
    q = {"value": Decimal("42.5"), "unit": "kg", "system": UCUM, "code": "kg"}
    assert extract("p", [q]) == [QuantityEntry("p", UCUM, "kg", 42.5, 42.5), QuantityEntry("p", CANONICAL_SYSTEM, "g", 42500.0, 42500.0)]
