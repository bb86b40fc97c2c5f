"""string parameters (R4 search.html#string): starts-with, case- and
accent-insensitive by default; :exact (whole value, case and accents);
:contains (anywhere); HumanName and Address parts; AND / OR."""

from __future__ import annotations

import pytest

from tests.integration.search.conftest import organization, patient


@pytest.fixture(scope="module")
def fhir(own_server):
    own_server.seed(
        patient("str-asa", family="Öberg", given=["Åsa"], city="Malmö",
                address=[{"line": ["Storgatan 1"], "city": "Malmö", "postalCode": "211 22", "country": "SE"}]),
        patient("str-oberg", family="Oberg", given=["Asa-Lena"], city="Lund"),
        patient("str-ake", family="Åkesson", given=["Åke", "Olof"], city="Göteborg"),
        patient("str-bergman", family="Bergman", given=["Ingrid"], city="Stockholm"),
        patient("str-ostberg", family="Östberg", given=["Lars"], city="Malmö"),
        patient("str-text", name=[{"text": "Karl-Johan Sjöström"}]),
        organization("org-skane", "Region Skåne", alias=["Skånes universitetssjukhus"]),
        organization("org-ks", "Karolinska Universitetssjukhuset"),
    )
    return own_server


OBERG_ALL = {"str-asa", "str-oberg"}

CASES = [
    # default: starts-with, case- and accent-insensitive
    ("Patient?name=oberg", OBERG_ALL),
    ("Patient?name=Öberg", OBERG_ALL),
    ("Patient?name=ÖBERG", OBERG_ALL),
    ("Patient?name=öb", OBERG_ALL),
    ("Patient?name=OB", OBERG_ALL),
    ("Patient?name=berg", {"str-bergman"}),  # starts-with only: not Öberg, Östberg
    ("Patient?name=bergmann", set()),
    ("Patient?name=asa", OBERG_ALL),  # given names too
    ("Patient?name=åke", {"str-ake"}),
    ("Patient?name=olof", {"str-ake"}),  # a second given name
    ("Patient?name=karl-johan", {"str-text"}),  # HumanName.text
    ("Patient?name=sjostrom", set()),  # not at the start of the text
    ("Patient?name=zlatan", set()),
    ("Patient?family=oberg", OBERG_ALL),
    ("Patient?family=asa", set()),  # a given name is not a family name
    ("Patient?given=asa", OBERG_ALL),
    ("Patient?given=asa-l", {"str-oberg"}),
    ("Patient?given=oberg", set()),
    # :exact: the whole value, exact case and accents
    ("Patient?name:exact=Öberg", {"str-asa"}),
    ("Patient?name:exact=Oberg", {"str-oberg"}),
    ("Patient?name:exact=öberg", set()),
    ("Patient?name:exact=Öb", set()),
    ("Patient?family:exact=Åkesson", {"str-ake"}),
    ("Patient?family:exact=Akesson", set()),
    ("Patient?given:exact=Åsa", {"str-asa"}),
    ("Patient?given:exact=Åsa,Lars", {"str-asa", "str-ostberg"}),
    # :contains: anywhere, case- and accent-insensitive
    ("Patient?name:contains=berg", {"str-asa", "str-oberg", "str-bergman", "str-ostberg"}),
    ("Patient?name:contains=BERG", {"str-asa", "str-oberg", "str-bergman", "str-ostberg"}),
    ("Patient?family:contains=stb", {"str-ostberg"}),
    ("Patient?name:contains=strom", {"str-text"}),
    ("Patient?name:contains=lena", {"str-oberg"}),
    ("Patient?name:contains=xyz", set()),
    # OR and AND
    ("Patient?name=öberg,bergman", {"str-asa", "str-oberg", "str-bergman"}),
    ("Patient?name=oberg&given=asa-lena", {"str-oberg"}),
    ("Patient?name=oberg&name=åsa", {"str-asa", "str-oberg"}),
    ("Patient?family=oberg&given=lars", set()),
    # Address parts
    ("Patient?address-city=malmo", {"str-asa", "str-ostberg"}),
    ("Patient?address-city=MALMÖ", {"str-asa", "str-ostberg"}),
    ("Patient?address-city=göte", {"str-ake"}),
    ("Patient?address-city=borg", set()),
    ("Patient?address-city:exact=Malmö", {"str-asa", "str-ostberg"}),
    ("Patient?address-city:exact=Malmo", set()),
    ("Patient?address-city:contains=borg", {"str-ake"}),
    ("Patient?address=storgatan", {"str-asa"}),  # any part of the address
    ("Patient?address=lund", {"str-oberg"}),
    ("Patient?address-postalcode=211", {"str-asa"}),
    ("Patient?address-country=se", {"str-asa"}),
    # a value with a space; alias is part of Organization's name parameter
    ("Organization?name=region skane", {"org-skane"}),
    ("Organization?name=region%20skåne", {"org-skane"}),
    ("Organization?name=skanes", {"org-skane"}),
    ("Organization?name:contains=universitet", {"org-skane", "org-ks"}),
    ("Organization?name=universitet", set()),
    ("Organization?name:exact=Region Skåne", {"org-skane"}),
    ("Organization?name:exact=Region", set()),
]


@pytest.mark.parametrize("query,expected", CASES, ids=[c[0] for c in CASES])
def test_string_search(fhir, query, expected):
    assert fhir.ids(query) == expected


ERRORS = [
    "Patient?name:below=oberg",  # not a string modifier
    "Patient?name:not=oberg",
    "Patient?name:text=oberg",
]


@pytest.mark.parametrize("query", ERRORS)
def test_string_invalid_modifier_is_400(fhir, query):
    r = fhir.get(query)
    assert r.status_code == 400, f"{query}: {r.status_code} {r.text}"
    assert r.json()["resourceType"] == "OperationOutcome"
