import pytest

from fhir_server.errors import InvalidSearch
from fhir_server.search.index import StringEntry
from fhir_server.search.params import string
from fhir_server.search.params.string import MODIFIERS, StringValue, extract, parse_value


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Öberg", StringValue("oberg", "Öberg")),
        ("ÅSA", StringValue("asa", "ÅSA")),
        ("Ängelholms Vårdcentral", StringValue("angelholms vardcentral", "Ängelholms Vårdcentral")),
        ("Müller-Lüdenscheidt", StringValue("muller-ludenscheidt", "Müller-Lüdenscheidt")),
        ("Straße", StringValue("strasse", "Straße")),  # casefolded, not just lowercased
        (r"Smith\,John", StringValue("smith,john", "Smith,John")),
        (r"a\$b", StringValue("a$b", "a$b")),
        (r"a\|b", StringValue("a|b", "a|b")),
        ("a\\\\b", StringValue("a\\b", "a\\b")),
        ("  x ", StringValue("  x ", "  x ")),
    ],
)
def test_parse_value(raw, expected):
    assert parse_value(raw, None) == expected


@pytest.mark.parametrize("modifier", [None, "exact", "contains"])
def test_parse_value_is_the_same_for_every_modifier(modifier):
    assert parse_value("Åsa", modifier) == StringValue("asa", "Åsa")


def test_empty_values_are_refused():
    with pytest.raises(InvalidSearch):
        parse_value("", None)


def test_modifiers():
    assert MODIFIERS == {"exact", "contains", "missing"}


def test_extract_human_name_parts():
    name = {
        "use": "official", "text": "Dr Åsa Maria Öberg Jr",
        "family": "Öberg", "given": ["Åsa", "Maria"], "prefix": ["Dr"], "suffix": ["Jr"],
        "period": {"start": "2020-01-01"},
    }
    assert [e.exact for e in extract("name", [name])] == ["Dr Åsa Maria Öberg Jr", "Öberg", "Åsa", "Maria", "Dr", "Jr"]
    assert extract("family", ["Öberg"]) == [StringEntry("family", "oberg", "Öberg")]


def test_extract_human_name_with_only_given():
    assert [e.exact for e in extract("name", [{"given": ["Nils"], "use": "usual"}])] == ["Nils"]


def test_extract_address_parts():
    address = {
        "use": "home", "type": "both", "text": "Storgatan 1, 111 22 Stockholm",
        "line": ["Storgatan 1", "Lgh 1102"], "city": "Stockholm", "district": "Södermalm",
        "state": "Stockholms län", "postalCode": "111 22", "country": "SE",
        "period": {"start": "2020-01-01"},
    }
    assert [e.exact for e in extract("address", [address])] == [
        "Storgatan 1, 111 22 Stockholm", "Storgatan 1", "Lgh 1102", "Stockholm", "Södermalm",
        "Stockholms län", "111 22", "SE",
    ]
    assert extract("address-city", ["Ängelholm"]) == [StringEntry("address-city", "angelholm", "Ängelholm")]


def test_extract_address_without_line_or_city_still_skips_use_and_type():
    # an Address with only a state: use and type are codes, not searchable address text
    address = {"use": "home", "type": "physical", "state": "Skåne"}
    assert [e.exact for e in extract("address", [address])] == ["Skåne"]


def test_extract_other_complex_types_use_their_direct_strings():
    # e.g. Coding/CodeableConcept under a string parameter: display text, never system or id
    coding = {"id": "c1", "system": "http://loinc.org", "code": "1", "display": "Body weight"}
    found = [e.exact for e in extract("p", [coding])]
    assert "Body weight" in found
    assert "http://loinc.org" not in found and "c1" not in found


def test_extract_skips_empty_and_non_strings():
    assert extract("p", ["", None, 5, True, {"family": ""}, ["x"]]) == []


def test_extract_takes_a_definition_or_a_code():
    class D:
        code = "family"

    assert extract(D(), ["A"]) == extract("family", ["A"]) == [StringEntry("family", "a", "A")]


def test_normalised_entries_are_what_the_search_value_normalises_to():
    [entry] = string.extract("family", ["Ødegård"])
    assert entry.normalized == parse_value("ødegård", None).normalized
