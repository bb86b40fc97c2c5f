import math
from decimal import Decimal

import pytest

from fhir_server.errors import InvalidSearch
from fhir_server.search.index import NumberEntry
from fhir_server.search.params.number import PREFIXES, NumberValue, extract, matches, parse_value


@pytest.mark.parametrize(
    "raw, prefix, value, low, high",
    [
        # the precision of the value is the range searched (R4 search.html#number)
        ("100", "eq", 100, 99.5, 100.5),
        ("100.00", "eq", 100, 99.995, 100.005),
        ("0.8", "eq", 0.8, 0.75, 0.85),
        ("1.5e1", "eq", 15, 14.5, 15.5),
        ("2.5e-1", "eq", 0.25, 0.245, 0.255),
        ("-5", "eq", -5, -5.5, -4.5),
        ("+3", "eq", 3, 2.5, 3.5),
        (".5", "eq", 0.5, 0.45, 0.55),
        ("gt100", "gt", 100, 99.5, 100.5),
        ("lt0.1", "lt", 0.1, 0.05, 0.15),
        ("ge1", "ge", 1, 0.5, 1.5),
        ("le1", "le", 1, 0.5, 1.5),
        ("ne1", "ne", 1, 0.5, 1.5),
        ("sa1", "sa", 1, 0.5, 1.5),
        ("eb1", "eb", 1, 0.5, 1.5),
        ("ap1", "ap", 1, 0.5, 1.5),
        ("eq1", "eq", 1, 0.5, 1.5),
    ],
)
def test_parse_value(raw, prefix, value, low, high):
    v = parse_value(raw, None)
    assert v.prefix == prefix
    assert (v.value, v.low, v.high) == pytest.approx((value, low, high))


def test_every_prefix_is_known():
    assert set(PREFIXES) == {"eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"}


@pytest.mark.parametrize("raw", ["", "abc", "gt", "eq", "1.2.3", "NaN", "inf", "Infinity", "1e", "0x10", "xx5", "5 mg", "1,5", "--1"])
def test_parse_value_rejects(raw):
    with pytest.raises(InvalidSearch):
        parse_value(raw, None)


def test_extract_numbers_quantities_and_ranges():
    nodes = [
        3, 0.25, "7.5",
        {"value": 12},  # a Quantity-like node
        {"low": {"value": 0.2}, "high": {"value": 0.4}},  # Range
        {"low": {"value": 1}},  # open-ended Range
        {"high": {"value": 9}},
    ]
    assert extract("p", nodes) == [
        NumberEntry("p", 3.0, 3.0),
        NumberEntry("p", 0.25, 0.25),
        NumberEntry("p", 7.5, 7.5),
        NumberEntry("p", 12.0, 12.0),
        NumberEntry("p", 0.2, 0.4),
        NumberEntry("p", 1.0, math.inf),
        NumberEntry("p", -math.inf, 9.0),
    ]


def test_extract_skips_what_is_not_a_number():
    assert extract("p", [True, False, "abc", None, {"value": "x"}, {"code": "a"}, float("nan"), float("inf")]) == []


def test_extract_accepts_decimals_from_fhirpath():
    # fhirpathpy returns FHIR decimals as decimal.Decimal
    assert extract("p", [Decimal("42.5"), {"value": Decimal("0.25")}]) == [NumberEntry("p", 42.5, 42.5), NumberEntry("p", 0.25, 0.25)]


# (stored low, stored high, search, should match)
CASES = [
    (100, 100, "100", True),
    (100.4, 100.4, "100", True),
    (100.5, 100.5, "100", False),  # [99.5, 100.5): the upper bound is open
    (99.5, 99.5, "100", True),
    (100.4, 100.4, "100.0", False),
    (0.2, 0.4, "0.3", False),  # eq: the search range must contain the stored range
    (0.26, 0.34, "0.3", True),
    (101, 101, "gt100", True),
    (100, 100, "gt100", False),
    (50, 150, "gt100", True),  # a range reaching above
    (99, 99, "lt100", True),
    (100, 100, "lt100", False),
    (100, 100, "ge100", True),
    (99, 99, "ge100", False),
    (100, 100, "le100", True),
    (101, 101, "le100", False),
    (100, 100, "ne100", False),
    (101, 101, "ne100", True),
    (101, 200, "sa100", True),
    (50, 150, "sa100", False),  # overlaps: not strictly after
    (1, 99, "eb100", True),
    (50, 150, "eb100", False),
    (105, 105, "ap100", True),  # within 10%
    (111, 111, "ap100", False),
    (0, 91, "ap100", True),  # a range reaching into the approximate range
]


@pytest.mark.parametrize("low, high, search, expected", CASES)
def test_matches(low, high, search, expected):
    assert matches(parse_value(search, None), low, high) is expected


def test_number_value_is_a_value_object():
    assert parse_value("1", None) == NumberValue("eq", 1.0, 0.5, 1.5)
