"""workflow/triage.py: the input Parameters of $triage, checked against the outcome's row
of mappings/triage-outcomes.json, and the module's agreement with that table."""

from __future__ import annotations

import pytest

from fhir_server.conformance.mappings import load_mappings, triage_outcomes
from fhir_server.errors import BadRequest
from fhir_server.workflow.codes import CARE_LEVEL, TRIAGE_OUTCOME, VISIT_MODE
from fhir_server.workflow.booking import CARE_LEVEL_BY_UNIT_TYPE
from fhir_server.workflow.triage import BUILDERS as _BUILDERS
from fhir_server.workflow.triage_parameters import TriageRequest, _codes, parse_parameters

BASE = "https://evi.example/fhir"


def outcome(code: str = "advice", system: str = TRIAGE_OUTCOME) -> dict:
    return {"name": "outcome", "valueCoding": {"system": system, "code": code}}


def params(*entries: dict) -> dict:
    return {"resourceType": "Parameters", "parameter": list(entries)}


def ref(name: str, reference: str, **extra) -> dict:
    return {"name": name, "valueReference": {"reference": reference, **extra}}


def coding(name: str, system: str, code: str) -> dict:
    return {"name": name, "valueCoding": {"system": system, "code": code}}


def refused(parameters: dict) -> list[dict]:
    with pytest.raises(BadRequest) as raised:
        parse_parameters(parameters, base_url=BASE)
    assert raised.value.status == 400
    return raised.value.to_outcome()["issue"]


# ---- accepted -------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["advice", "redirect-existing-contact", "not-eligible"])
def test_outcomes_without_parameters(code):
    assert parse_parameters(params(outcome(code))) == TriageRequest(code)


def test_every_parameter_of_book_first_visit():
    request = parse_parameters(params(
        outcome("book-first-visit"),
        ref("slot", "Slot/s-1"),
        coding("careLevel", CARE_LEVEL, "specialist"),
        coding("visitMode", VISIT_MODE, "phone"),
        {"name": "note", "valueString": "Ring vårdnadshavare"},
    ))
    assert request == TriageRequest("book-first-visit", "Ring vårdnadshavare", "s-1", None, "specialist", "phone")
    assert request.where("slot") == "Parameters.parameter[1]"
    assert request.where("recipient") == "recipient"


@pytest.mark.parametrize("code", ["refer-primary-care", "refer-other-actor", "acute-handover"])
def test_recipient(code):
    assert parse_parameters(params(outcome(code), ref("recipient", "Organization/vc-1"))).recipient == "vc-1"


def test_acute_handover_recipient_is_optional():
    assert parse_parameters(params(outcome("acute-handover"))).recipient is None


def test_absolute_reference_to_this_server_is_literal_and_parameters_may_come_in_any_order():
    request = parse_parameters(
        params(ref("slot", f"{BASE}/Slot/abc", type="Slot"), outcome("book-first-visit")), base_url=BASE
    )
    assert request.slot == "abc"
    assert request.where("outcome") == "Parameters.parameter[1]"


def test_display_on_an_input_coding_is_ignored():
    entry = outcome("advice")
    entry["valueCoding"]["display"] = "anything"
    assert parse_parameters(params(entry)).outcome == "advice"


# ---- refused --------------------------------------------------------------------------------------


def test_missing_outcome_names_it():
    (issue,) = refused(params())
    assert issue["expression"] == ["outcome"] and issue["code"] == "required"
    (issue,) = refused({"resourceType": "Parameters"})
    assert "outcome" in issue["diagnostics"]


@pytest.mark.parametrize("entry,words", [
    (outcome("refer-to-moon"), ["refer-to-moon", "advice"]),
    (outcome("advice", system="http://example.org/cs"), ["system", TRIAGE_OUTCOME]),
    ({"name": "outcome", "valueCoding": {"system": TRIAGE_OUTCOME}}, ["no code"]),
    ({"name": "outcome", "valueCode": "advice"}, ["valueCoding", "valueCode"]),
    ({"name": "outcome", "valueString": "advice"}, ["valueCoding"]),
    ({"name": "outcome"}, ["no value"]),
    ({"name": "outcome", "valueCoding": "advice"}, ["JSON object"]),
    ({"name": "outcome", "valueCoding": {"system": TRIAGE_OUTCOME, "code": "advice"}, "valueString": "x"},
     ["valueString"]),
    ({"name": "outcome", "resource": {"resourceType": "Basic"}}, ["resource"]),
])
def test_a_bad_outcome_value(entry, words):
    issues = refused(params(entry))
    assert issues[0]["expression"] == ["Parameters.parameter[0]"]
    for word in words:
        assert word in issues[0]["diagnostics"]


@pytest.mark.parametrize("extra,where,word", [
    (ref("slot", "Slot/x"), "Parameters.parameter[1]", "does not use parameter 'slot'"),
    (ref("recipient", "Organization/x"), "Parameters.parameter[1]", "does not use parameter 'recipient'"),
    (coding("careLevel", CARE_LEVEL, "primary"), "Parameters.parameter[1]", "careLevel"),
    ({"name": "priority", "valueCode": "urgent"}, "Parameters.parameter[1]", "Unknown parameter 'priority'"),
    ({"valueString": "x"}, "Parameters.parameter[1]", "needs a name"),
    ("not an object", "Parameters.parameter[1]", "needs a name"),
    ({"name": "note", "valueString": "   "}, "Parameters.parameter[1]", "non-empty"),
    ({"name": "note", "valueMarkdown": "x"}, "Parameters.parameter[1]", "valueString"),
])
def test_a_parameter_advice_does_not_take(extra, where, word):
    issues = refused(params(outcome("advice"), extra))
    assert [i["expression"] for i in issues] == [[where]]
    assert word in issues[0]["diagnostics"]


@pytest.mark.parametrize("code,missing", [
    ("book-first-visit", "slot"), ("refer-primary-care", "recipient"), ("refer-other-actor", "recipient"),
])
def test_a_required_parameter_missing(code, missing):
    (issue,) = refused(params(outcome(code)))
    assert issue["expression"] == [missing] and issue["code"] == "required"
    assert f"requires parameter '{missing}'" in issue["diagnostics"]


@pytest.mark.parametrize("name", ["note", "outcome"])
def test_a_repeated_parameter(name):
    entry = {"name": "note", "valueString": "a"} if name == "note" else outcome("not-eligible")
    issues = refused(params(outcome("advice"), {"name": "note", "valueString": "b"}, entry))
    assert issues[-1]["expression"] == ["Parameters.parameter[2]"]
    assert "repeated" in issues[-1]["diagnostics"]


@pytest.mark.parametrize("name,value", [
    ("slot", {"reference": "Organization/x"}),
    ("slot", {"reference": "Slot"}),
    ("slot", {"reference": "Slot/"}),
    ("slot", {"reference": "Slot/a/_history/2"}),
    ("slot", {"reference": "Slot/has space"}),
    ("slot", {"reference": "https://elsewhere.example/fhir/Slot/x"}),
    ("slot", {"reference": "#contained"}),
    ("slot", {"reference": "Slot/x", "type": "Organization"}),
    ("slot", {"identifier": {"system": "urn:x", "value": "1"}}),
    ("slot", {"display": "tisdag 9:00"}),
    ("recipient", {"reference": "Slot/x"}),
    ("recipient", {"reference": "urn:uuid:6b1f0d52-5c1e-4c55-9f52-5c1e4c559f52"}),
])
def test_references_must_be_literal(name, value):
    code = "book-first-visit" if name == "slot" else "refer-other-actor"
    (issue,) = refused(params(outcome(code), {"name": name, "valueReference": value}))
    assert issue["expression"] == ["Parameters.parameter[1]"]
    assert "literal reference" in issue["diagnostics"]


@pytest.mark.parametrize("name,system,code", [
    ("careLevel", CARE_LEVEL, "tertiary"),
    ("careLevel", VISIT_MODE, "video"),
    ("visitMode", VISIT_MODE, "telepathy"),
    ("visitMode", CARE_LEVEL, "primary"),
])
def test_codings_must_come_from_their_code_system(name, system, code):
    (issue,) = refused(params(outcome("book-first-visit"), ref("slot", "Slot/x"), coding(name, system, code)))
    assert issue["expression"] == ["Parameters.parameter[2]"] and issue["code"] == "code-invalid"


def test_every_problem_is_reported_at_once():
    issues = refused(params(
        outcome("book-first-visit"), ref("recipient", "Organization/x"), {"name": "colour", "valueString": "red"},
    ))
    assert [i["expression"][0] for i in issues] == ["Parameters.parameter[2]", "Parameters.parameter[1]", "slot"]


def test_parameter_not_a_list():
    (issue,) = refused({"resourceType": "Parameters", "parameter": {"name": "outcome"}})
    assert issue["expression"] == ["Parameters.parameter"]


# ---- agreement with the table and the guide -------------------------------------------------------


def test_every_outcome_of_the_table_and_the_code_system_has_a_builder():
    assert set(_BUILDERS) == set(triage_outcomes()) == set(_codes(TRIAGE_OUTCOME, None))


def test_the_parameter_definitions_are_the_tables():
    table = load_mappings("triage-outcomes")["parameters"]
    for mapping in triage_outcomes().values():
        for name in mapping.allowed_parameters:
            assert name in table
    assert table["visitMode"]["default"] == "in-person"


def test_default_care_levels_are_codes_of_the_guide():
    assert set(CARE_LEVEL_BY_UNIT_TYPE.values()) == set(_codes(CARE_LEVEL, None)) == {"primary", "specialist"}
    assert {"in-person", "video", "phone"} == set(_codes(VISIT_MODE, None))
