import pytest

from fhir_server.errors import InvalidSearch
from fhir_server.search.index import ReferenceEntry, TokenEntry
from fhir_server.search.params.reference import (
    IDENTIFIER_SUFFIX,
    MODIFIERS,
    TYPE_MODIFIER,
    ReferenceValue,
    extract,
    local_part,
    parse_value,
)
from fhir_server.search.params.token import TokenValue


@pytest.mark.parametrize(
    "raw, modifier, expected",
    [
        ("Patient/123", None, ReferenceValue("Patient", "123", None)),
        ("123", None, ReferenceValue(None, "123", None)),
        ("123", "Patient", ReferenceValue("Patient", "123", None)),
        ("Patient/123", "Patient", ReferenceValue("Patient", "123", None)),
        ("Patient/123/_history/2", None, ReferenceValue("Patient", "123", None)),
        ("Patient/a.b-C", None, ReferenceValue("Patient", "a.b-C", None)),
        (
            "http://other.example/fhir/Patient/123", None,
            ReferenceValue("Patient", "123", "http://other.example/fhir/Patient/123", "http://other.example/fhir"),
        ),
        # a canonical with a version matches that version only (extract indexes both forms)
        ("http://evi.example/fhir/ValueSet/a|1.0", None, ReferenceValue(None, None, "http://evi.example/fhir/ValueSet/a|1.0")),
        ("urn:uuid:53fefa32-fcbb-4ff8-8a92-55ee120877b7", None, ReferenceValue(None, None, "urn:uuid:53fefa32-fcbb-4ff8-8a92-55ee120877b7")),
        ("urn:oid:1.2.3", None, ReferenceValue(None, None, "urn:oid:1.2.3")),
    ],
)
def test_parse_value(raw, modifier, expected):
    assert parse_value(raw, modifier) == expected


def test_identifier_modifier_parses_a_token():
    assert parse_value("urn:oid:1.2.752.29.4.19|SE123", "identifier") == TokenValue("urn:oid:1.2.752.29.4.19", "SE123", True)
    assert parse_value("SE123", "identifier") == TokenValue(None, "SE123", False)


@pytest.mark.parametrize("raw, modifier", [("", None), ("Patient/123", "Group"), ("", "identifier"), ("a|b|c", "identifier")])
def test_parse_value_rejects(raw, modifier):
    with pytest.raises(InvalidSearch):
        parse_value(raw, modifier)


def test_modifiers():
    assert MODIFIERS == {"identifier", "missing"} and TYPE_MODIFIER is True
    assert IDENTIFIER_SUFFIX == ":identifier"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Patient/1", (None, "Patient", "1")),
        ("Patient/1/_history/3", (None, "Patient", "1")),
        ("https://x.example/fhir/r4/Observation/o-1", ("https://x.example/fhir/r4", "Observation", "o-1")),
        ("#contained", (None, None, None)),
        ("patient/1", (None, None, None)),
        ("Patient", (None, None, None)),
        ("Patient/" + "x" * 65, (None, None, None)),  # ids are at most 64 characters
        ("urn:uuid:1", (None, None, None)),
    ],
)
def test_local_part(text, expected):
    assert local_part(text) == expected


def test_extract_reference_forms():
    nodes = [
        {"reference": "Patient/1", "display": "Åsa"},
        {"reference": "Patient/2/_history/4"},
        {"reference": "http://other.example/fhir/Patient/3"},
        {"reference": "urn:uuid:53fefa32-fcbb-4ff8-8a92-55ee120877b7"},
        "http://evi.example/fhir/PlanDefinition/intake|1.0",  # canonical: with and without its version
        "http://evi.example/fhir/Questionnaire/phq-9",  # canonical without version
        {"reference": "#p1"},  # contained: not indexed
        {"display": "only a display"},
        {"reference": ""},
    ]
    assert extract("p", nodes) == [
        ReferenceEntry("p", "Patient", "1", None),
        ReferenceEntry("p", "Patient", "2", None),
        ReferenceEntry("p", "Patient", "3", "http://other.example/fhir/Patient/3"),
        ReferenceEntry("p", None, None, "urn:uuid:53fefa32-fcbb-4ff8-8a92-55ee120877b7"),
        ReferenceEntry("p", "PlanDefinition", "intake", "http://evi.example/fhir/PlanDefinition/intake"),
        ReferenceEntry("p", None, None, "http://evi.example/fhir/PlanDefinition/intake|1.0"),
        ReferenceEntry("p", "Questionnaire", "phq-9", "http://evi.example/fhir/Questionnaire/phq-9"),
    ]


def test_extract_reference_identifier_as_token_entries():
    logical = {"identifier": {"system": "urn:oid:1.2.752.29.4.19", "value": "SE123"}, "display": "BUP"}
    both = {"reference": "Organization/o", "identifier": {"system": "urn:oid:1.2.752.29.4.19", "value": "SE456"}}
    assert extract("requester", [logical, both]) == [
        TokenEntry("requester:identifier", "urn:oid:1.2.752.29.4.19", "SE123"),
        ReferenceEntry("requester", "Organization", "o", None),
        TokenEntry("requester:identifier", "urn:oid:1.2.752.29.4.19", "SE456"),
    ]


def test_extract_contained_references_are_skipped():
    assert extract("performer", [{"reference": "#p1"}, "#p2"]) == []
