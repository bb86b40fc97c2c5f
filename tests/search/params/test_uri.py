import pytest

from fhir_server.errors import InvalidSearch
from fhir_server.search.index import UriEntry
from fhir_server.search.params.uri import MODIFIERS, UriValue, extract, parse_value


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("http://evi.example/fhir/ValueSet/a", "http://evi.example/fhir/ValueSet/a"),
        ("urn:oid:1.2.752.129.2.1.3.1", "urn:oid:1.2.752.129.2.1.3.1"),
        ("urn:uuid:53fefa32-fcbb-4ff8-8a92-55ee120877b7", "urn:uuid:53fefa32-fcbb-4ff8-8a92-55ee120877b7"),
        (r"http://x/a\,b", "http://x/a,b"),
        (r"http://x/a\|b", "http://x/a|b"),
        (r"http://x/a\$b", "http://x/a$b"),
    ],
)
def test_parse_value(raw, expected):
    assert parse_value(raw, None) == UriValue(expected)


@pytest.mark.parametrize("modifier", [None, "below", "above"])
def test_parse_value_keeps_the_uri_as_written(modifier):
    # uris are case-sensitive: no normalisation
    assert parse_value("HTTP://X/ValueSet/A", modifier).uri == "HTTP://X/ValueSet/A"


def test_empty_values_are_refused():
    with pytest.raises(InvalidSearch):
        parse_value("", None)


def test_modifiers():
    assert MODIFIERS == {"below", "above", "missing"}


def test_extract_strings_only():
    nodes = ["http://x/ValueSet/a", "", None, 5, {"value": "http://x"}, "urn:oid:1.2"]
    assert extract("url", nodes) == [UriEntry("url", "http://x/ValueSet/a"), UriEntry("url", "urn:oid:1.2")]
