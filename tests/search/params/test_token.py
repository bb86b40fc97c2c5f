import pytest

from fhir_server.errors import InvalidSearch
from fhir_server.search.index import TokenEntry
from fhir_server.search.params.token import TokenValue, extract, parse_value


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("123", TokenValue(None, "123", False)),
        ("http://sys|123", TokenValue("http://sys", "123", True)),
        ("|123", TokenValue(None, "123", True)),
        ("http://sys|", TokenValue("http://sys", None, True)),
        (r"a\|b", TokenValue(None, "a|b", False)),
        (r"sys|a\,b", TokenValue("sys", "a,b", True)),
    ],
)
def test_parse_value(raw, expected):
    assert parse_value(raw, None) == expected


@pytest.mark.parametrize("raw", ["", "|", "a|b|c"])
def test_parse_value_rejects(raw):
    with pytest.raises(InvalidSearch):
        parse_value(raw, None)


def test_extract_handles_identifier_coding_concept_and_primitives():
    nodes = [
        {"system": "urn:oid:1.2.752.129.2.1.3.1", "value": "201203042385"},
        {"value": "no-system"},
        {"coding": [{"system": "http://loinc.org", "code": "59284-0"}, {"display": "no code"}]},
        {"system": "http://snomed.info/sct", "code": "123"},
        "active",
        True,
    ]
    assert extract("p", nodes) == [
        TokenEntry("p", "urn:oid:1.2.752.129.2.1.3.1", "201203042385"),
        TokenEntry("p", None, "no-system"),
        TokenEntry("p", "http://loinc.org", "59284-0"),
        TokenEntry("p", None, None, "no code"),
        TokenEntry("p", "http://snomed.info/sct", "123"),
        TokenEntry("p", None, "active"),
        TokenEntry("p", None, "true"),
    ]


def test_a_swedish_identifier_variant_searches_the_emitted_system():
    # writes store the emitted system (model/identifiers.py); a query with the OID must find them
    pnr = "http://electronichealth.se/identifier/personnummer"
    assert parse_value("urn:oid:1.2.752.129.2.1.3.1|201203042385", None) == TokenValue(pnr, "201203042385", True)
    assert parse_value("urn:oid:1.2.752.129.2.1.3.1|", None) == TokenValue(pnr, None, True)
    assert parse_value("urn:evi:x|1", None) == TokenValue("urn:evi:x", "1", True)
