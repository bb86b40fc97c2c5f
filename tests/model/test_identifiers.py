"""Swedish identifiers (model/identifiers.py): each system's format, Luhn and date rules, the
accepted variants normalised in place, and the model's walk finding them on every path."""

from __future__ import annotations

import pytest

from fhir_server.errors import InvalidResource, Unprocessable
from fhir_server.model import validate_resource
from fhir_server.model.identifiers import (
    HSA_ID,
    KOMMUNKOD,
    ORGANISATIONSNUMMER,
    PERSONNUMMER,
    RESERVNUMMER,
    SAMORDNINGSNUMMER,
    emitted_system,
    identifier_problem,
    luhn_ok,
)

VALID = [
    (PERSONNUMMER, "191212121212"),  # Skatteverket's published test number
    (PERSONNUMMER, "201203042385"),  # the README's
    (PERSONNUMMER, "200002296127"),  # 29 February of a leap year
    (SAMORDNINGSNUMMER, "201107699850"),  # born 9 July 2011: day 09 + 60
    (RESERVNUMMER, "98240301AA06"),  # HL7 Sweden's example: century 20 + 78, born 2024-03-01
    (RESERVNUMMER, "22150908AB14"),  # century 19 + 3
    (RESERVNUMMER, "00992145KL97"),  # unknown date of birth: MM 20-99, DD 40-59
    (HSA_ID, "SE2321000131-E000000000001"),
    (HSA_ID, "SE2321000016-15CQ"),
    (ORGANISATIONSNUMMER, "2321000016"),  # Region Stockholm
    (ORGANISATIONSNUMMER, "5560360793"),
    (KOMMUNKOD, "0880"),  # Kalmar
    (KOMMUNKOD, "1480"),  # Göteborg
    (KOMMUNKOD, "2580"),  # Luleå
]

INVALID = [
    (PERSONNUMMER, "201203042383", "Luhn"),
    (PERSONNUMMER, "20120304-2385", "12 digits"),
    (PERSONNUMMER, "1203042385", "12 digits"),  # century left out
    (PERSONNUMMER, "181203042385", "12 digits"),  # no living person: 19 or 20 only
    (PERSONNUMMER, "201302292385", "real date"),  # 29 February 2013
    (PERSONNUMMER, "201213042385", "real date"),
    (PERSONNUMMER, "201107699850", "real date"),  # a samordningsnummer is no personnummer
    (PERSONNUMMER, "２０１２０３０４２３８５", "12 digits"),  # full-width digits
    (SAMORDNINGSNUMMER, "201203042385", "real date"),  # day not + 60
    (SAMORDNINGSNUMMER, "201107699851", "Luhn"),
    (RESERVNUMMER, "RF20150908AB", "12 characters"),
    (RESERVNUMMER, "20150908AB14", "neither 00 nor a century"),  # 18-21 would read as a personnummer
    (RESERVNUMMER, "24150908AB14", "neither 00 nor a century"),
    (RESERVNUMMER, "23150230AB14", "real date"),
    (RESERVNUMMER, "00991045KL97", "unknown date of birth"),
    (RESERVNUMMER, "23150908ab14", "12 characters"),
    (HSA_ID, "SE12345-ABC", "HSA-id"),
    (HSA_ID, "SE2321000016-", "HSA-id"),
    (HSA_ID, "SE2321000016-ÅÄÖ", "HSA-id"),
    (HSA_ID, "SE2321000016-" + "A" * 19, "at most 31"),
    (ORGANISATIONSNUMMER, "232100-0016", "10 digits"),
    (ORGANISATIONSNUMMER, "2321000017", "Luhn"),
    (KOMMUNKOD, "880", "4-digit"),
    (KOMMUNKOD, "0280", "county code"),  # no county 02
    (KOMMUNKOD, "9999", "county code"),
]


@pytest.mark.parametrize("system,value", VALID)
def test_valid_values_pass(system, value):
    assert identifier_problem(system, value) is None


@pytest.mark.parametrize("system,value,why", INVALID)
def test_invalid_values_say_why(system, value, why):
    problem = identifier_problem(system, value)
    assert problem is not None and why.lower() in problem.lower(), problem


def test_the_longest_hsa_id_is_31_characters():
    assert identifier_problem(HSA_ID, "SE2321000016-" + "A" * 18) is None


def test_luhn_agrees_with_the_published_rule():
    # SKV 704: weights 2,1,2,... from the left over YYMMDDNNN; digit sums of products; 10 - sum mod 10
    for nine in ("121212121", "120304238", "800101987", "232100001"):
        total = sum(d // 10 + d % 10 for d in (int(c) * (2 - i % 2) for i, c in enumerate(nine)))
        check = (10 - total % 10) % 10
        assert [luhn_ok(nine + str(c)) for c in range(10)] == [c == check for c in range(10)]


@pytest.mark.parametrize("variant,emitted", [
    ("urn:oid:1.2.752.129.2.1.3.1", PERSONNUMMER),
    ("https://terminology.hl7.se/sid/se-personnummer", PERSONNUMMER),
    ("urn:oid:1.2.752.129.2.1.3.3", SAMORDNINGSNUMMER),
    ("http://electronichealth.se/identifier/nationelltReservnumer", RESERVNUMMER),
    (PERSONNUMMER, PERSONNUMMER),
    ("urn:evi:other", "urn:evi:other"),
])
def test_accepted_variants_map_to_the_emitted_system(variant, emitted):
    assert emitted_system(variant) == emitted


def test_validation_normalises_variants_in_place():
    patient = {"resourceType": "Patient", "identifier": [
        {"system": "urn:oid:1.2.752.129.2.1.3.1", "value": "201203042385"},
        {"system": "https://terminology.hl7.se/sid/se-personnummer", "value": "191212121212"},
        {"system": "urn:oid:1.2.752.129.2.1.3.3", "value": "201107699850"},
        {"system": "http://electronichealth.se/identifier/nationelltReservnumer", "value": "98240301AA06"},
        {"system": "urn:evi:local", "value": "anything"}]}
    assert validate_resource(patient) is patient
    assert [i["system"] for i in patient["identifier"]] == [
        PERSONNUMMER, PERSONNUMMER, SAMORDNINGSNUMMER, RESERVNUMMER, "urn:evi:local"]


def _refused(resource: dict) -> list:
    with pytest.raises(Unprocessable) as caught:
        validate_resource(resource)
    assert caught.value.status == 422
    return [(i.code, i.expression) for i in caught.value.issues]


def test_every_path_is_checked_profile_or_not():
    bad = {"system": PERSONNUMMER, "value": "201203042383"}
    task = {
        "resourceType": "Task", "status": "requested", "intent": "order",
        "for": {"identifier": {"system": "urn:oid:1.2.752.129.2.1.3.1", "value": "201203042383"}},
        "owner": {"identifier": {"system": HSA_ID, "value": "SE12-X"}},
        "contained": [{"resourceType": "Patient", "id": "p", "identifier": [bad]}],
        "extension": [{"url": "https://example.org/x", "valueIdentifier": {"system": ORGANISATIONSNUMMER, "value": "1"}}],
        "input": [{"type": {"text": "t"}, "valueIdentifier": {"system": KOMMUNKOD, "value": "0280"}}],
    }
    assert sorted(_refused(task)) == [
        ("value", ("Task.contained[0].identifier[0].value",)),
        ("value", ("Task.extension[0].valueIdentifier.value",)),
        ("value", ("Task.for.identifier.value",)),
        ("value", ("Task.input[0].valueIdentifier.value",)),
        ("value", ("Task.owner.identifier.value",)),
    ]


def test_bundle_entries_are_checked():
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Organization", "identifier": [{"system": HSA_ID, "value": "SE1-1"}]}}]}
    assert _refused(bundle) == [("value", ("Bundle.entry[0].resource.identifier[0].value",))]


def test_structure_errors_come_first_and_are_400():
    with pytest.raises(InvalidResource):
        validate_resource({"resourceType": "Patient", "active": "yes",
                           "identifier": [{"system": PERSONNUMMER, "value": "1"}]})


def test_an_identifier_without_a_value_has_nothing_to_check():
    absent = {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]}
    patient = {"resourceType": "Patient", "identifier": [
        {"system": "urn:oid:1.2.752.129.2.1.3.1", "_value": absent}, {"system": HSA_ID}]}
    validate_resource(patient)
    assert patient["identifier"][0]["system"] == PERSONNUMMER


def test_other_systems_and_codings_are_left_alone():
    observation = {"resourceType": "Observation", "status": "final", "code": {"coding": [
        {"system": "urn:oid:1.2.752.129.2.1.3.1", "code": "not-an-identifier"}]},
        "identifier": [{"system": "urn:evi:x", "value": "201203042383"}]}
    validate_resource(observation)
    assert observation["code"]["coding"][0]["system"] == "urn:oid:1.2.752.129.2.1.3.1"
