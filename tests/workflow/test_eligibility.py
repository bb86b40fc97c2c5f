from datetime import date

import pytest

from fhir_server.workflow.eligibility import Eligibility, age_on, national_identifiers, placement_of
from fhir_server.workflow.task_states import TRANSITIONS, is_allowed
from fhir_server.workflow.upstream import is_care_contact

CS = "https://evi-fhir.org/fhir/CodeSystem/"


@pytest.mark.parametrize("born,day,age", [
    ("2008-11-22", date(2026, 11, 22), 18),
    ("2008-11-23", date(2026, 11, 22), 17),
    ("2008-02-29", date(2026, 2, 28), 17),
    ("2008-02-29", date(2026, 3, 1), 18),
    ("2008", date(2026, 1, 1), 18),
    ("2008-12", date(2026, 11, 30), 17),
    ("20x8", date(2026, 1, 1), None),
])
def test_age_on(born, day, age):
    assert age_on(born, day) == age


def test_suggestion_prefers_the_existing_contact():
    found = Eligibility()
    found.add("age-out-of-range", "a")
    assert found.suggested_outcome == "not-eligible"
    found.add("existing-contact", "b")
    found.add("existing-contact", "c")
    assert found.flags == ["age-out-of-range", "existing-contact"] and found.notes == ["a", "b", "c"]
    assert found.suggested_outcome == "redirect-existing-contact"
    assert Eligibility().suggested_outcome is None


def test_identifiers_and_placement():
    patient = {"identifier": [
        {"system": "http://electronichealth.se/identifier/personnummer", "value": "201107099853"},
        {"system": "urn:other", "value": "x"},
        {"system": "http://electronichealth.se/identifier/samordningsnummer", "value": "201107699850"}],
        "extension": [{"url": "https://evi-fhir.org/fhir/StructureDefinition/evi-placement", "extension": [
            {"url": "type", "valueCoding": {"code": "sis"}},
            {"url": "responsibleMunicipality", "valueReference": {"reference": "Organization/m"}}]}]}
    assert [s.rsplit("/", 1)[1] for s, _ in national_identifiers(patient)] == ["personnummer", "samordningsnummer"]
    assert placement_of(patient)["responsibleMunicipality"] == {"reference": "Organization/m"}
    assert placement_of({}) is None


@pytest.mark.parametrize("types,expected", [
    ([], True), (["bup-clinic"], True), (["primary-care"], True), (["bup-mobile-team"], True),
    (["social-services"], False), (["sis-home"], False), (["evi"], False),
])
def test_care_contact_units(types, expected):
    org = {"type": [{"coding": [{"system": f"{CS}evi-organization-type", "code": t}]} for t in types]}
    assert is_care_contact(org) is expected


def test_state_machine_table():
    assert is_allowed("requested", "requested") and is_allowed("completed", "entered-in-error")
    assert not is_allowed("requested", "completed")
    for final in ("completed", "failed", "rejected", "cancelled"):
        assert TRANSITIONS[final] == frozenset()
    assert TRANSITIONS["requested"] == {"received", "accepted", "rejected", "ready", "in-progress", "cancelled"}
