"""Required-binding checks (fhir.resources does not check terminology)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from fhir_server.model.bindings import BindingIssue, check_required_bindings
from fhir_server.spec import load_table

EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "fhir-spec" / "r4-examples"

VS = "http://hl7.org/fhir/ValueSet/"


def sr(**extra) -> dict:
    return {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
            "subject": {"reference": "Patient/p1"}, **extra}


BAD_QTY = {"url": "http://example.org/ext", "valueQuantity": {"value": 1, "comparator": "~~"}}

# (case id, resource, expected [(expression, code, value set)])
NEGATIVES = [
    ("sr-status", sr(status="bogus"), [("ServiceRequest.status", "bogus", VS + "request-status")]),
    ("sr-intent", sr(intent="bogus"), [("ServiceRequest.intent", "bogus", VS + "request-intent")]),
    ("sr-priority", sr(priority="whenever"),
     [("ServiceRequest.priority", "whenever", VS + "request-priority")]),
    ("sr-two", sr(status="x", intent="y"),
     [("ServiceRequest.status", "x", VS + "request-status"),
      ("ServiceRequest.intent", "y", VS + "request-intent")]),
    ("task-status", {"resourceType": "Task", "status": "bogus", "intent": "order"},
     [("Task.status", "bogus", VS + "task-status")]),
    # task-intent mixes two code systems
    ("task-intent", {"resourceType": "Task", "status": "ready", "intent": "bogus"},
     [("Task.intent", "bogus", VS + "task-intent")]),
    ("appointment-status", {"resourceType": "Appointment", "status": "maybe", "participant": [
        {"actor": {"reference": "Patient/p"}, "status": "accepted"}]},
     [("Appointment.status", "maybe", VS + "appointmentstatus")]),
    ("appointment-participant-status", {"resourceType": "Appointment", "status": "booked", "participant": [
        {"status": "accepted"}, {"status": "nope"}]},
     [("Appointment.participant[1].status", "nope", VS + "participationstatus")]),
    ("patient-gender", {"resourceType": "Patient", "gender": "F"},
     [("Patient.gender", "F", VS + "administrative-gender")]),
    ("patient-identifier-use", {"resourceType": "Patient", "identifier": [
        {"use": "usual", "value": "1"}, {"use": "bogus", "value": "2"}]},
     [("Patient.identifier[1].use", "bogus", VS + "identifier-use")]),
    ("patient-telecom-system", {"resourceType": "Patient", "telecom": [{"system": "pager2", "value": "1"}]},
     [("Patient.telecom[0].system", "pager2", VS + "contact-point-system")]),
    ("bundle-request-method", {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
        {"request": {"method": "FOO", "url": "Patient/1"}}]},
     [("Bundle.entry[1].request.method", "FOO", VS + "http-verb")]),
    ("bundle-type", {"resourceType": "Bundle", "type": "pile"}, [("Bundle.type", "pile", VS + "bundle-type")]),
    ("bundle-entry-resource", {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": sr(status="bad"), "request": {"method": "POST", "url": "ServiceRequest"}}]},
     [("Bundle.entry[0].resource.status", "bad", VS + "request-status")]),
    ("bundle-in-bundle", {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Bundle", "type": "batch", "entry": [
            {"resource": {"resourceType": "Patient", "gender": "x"}}]}}]},
     [("Bundle.entry[0].resource.entry[0].resource.gender", "x", VS + "administrative-gender")]),
    ("contained", sr(contained=[{"resourceType": "Patient", "id": "p", "gender": "male"},
                                {"resourceType": "Task", "id": "t", "status": "bad", "intent": "order"}]),
     [("ServiceRequest.contained[1].status", "bad", VS + "task-status")]),
    ("observation-quantity-comparator", {
        "resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "valueQuantity": {"value": 5, "comparator": "=~"}},
     [("Observation.valueQuantity.comparator", "=~", VS + "quantity-comparator")]),
    ("observation-component-comparator", {
        "resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "component": [{"code": {"text": "a"}, "valueQuantity": {"value": 5, "comparator": "<"}},
                      {"code": {"text": "b"}, "valueQuantity": {"value": 5, "comparator": "!"}}]},
     [("Observation.component[1].valueQuantity.comparator", "!", VS + "quantity-comparator")]),
    ("extension-value", {"resourceType": "Patient", "extension": [BAD_QTY]},
     [("Patient.extension[0].valueQuantity.comparator", "~~", VS + "quantity-comparator")]),
    ("nested-extension-on-datatype", {"resourceType": "Patient", "name": [
        {"family": "X", "extension": [{"url": "http://example.org/a", "extension": [BAD_QTY]}]}]},
     [("Patient.name[0].extension[0].extension[0].valueQuantity.comparator", "~~",
       VS + "quantity-comparator")]),
    ("primitive-extension", {"resourceType": "Patient", "gender": "male", "_gender": {"extension": [BAD_QTY]}},
     [("Patient.gender.extension[0].valueQuantity.comparator", "~~", VS + "quantity-comparator")]),
    # Element-typed backbone inside a datatype (Timing.repeat), list of codes
    ("timing-day-of-week", sr(occurrenceTiming={"repeat": {"dayOfWeek": ["mon", "funday"]}}),
     [("ServiceRequest.occurrenceTiming.repeat.dayOfWeek[1]", "funday", VS + "days-of-week")]),
    # contentReference: Questionnaire.item.item is a Questionnaire.item
    ("questionnaire-nested-item", {"resourceType": "Questionnaire", "status": "active", "item": [
        {"linkId": "1", "type": "group", "item": [{"linkId": "1.1", "type": "essay"}]}]},
     [("Questionnaire.item[0].item[0].type", "essay", VS + "item-type")]),
    # Required binding on a CodeableConcept: codings from the value set's system are judged
    ("condition-clinical-status", {
        "resourceType": "Condition", "subject": {"reference": "Patient/p"},
        "clinicalStatus": {"coding": [
            {"system": "http://example.org/local", "code": "whatever"},
            {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "bogus"}]}},
     [("Condition.clinicalStatus.coding[1].code", "bogus", VS + "condition-clinical")]),
    ("condition-clinical-status-no-system", {
        "resourceType": "Condition", "subject": {"reference": "Patient/p"},
        "clinicalStatus": {"coding": [{"code": "bogus"}]}},
     [("Condition.clinicalStatus.coding[0].code", "bogus", VS + "condition-clinical")]),
]

POSITIVES = [
    ("sr-minimal", sr()),
    ("sr-full", sr(priority="stat", identifier=[{"use": "official", "value": "1"}],
                   code={"coding": [{"system": "http://loinc.org", "code": "1234-5"}]},
                   occurrenceTiming={"repeat": {"dayOfWeek": ["mon", "fri"], "periodUnit": "d"}},
                   quantityQuantity={"value": 1, "comparator": ">="})),
    ("task", {"resourceType": "Task", "status": "ready", "intent": "order"}),
    ("task-intent-other-system", {"resourceType": "Task", "status": "ready", "intent": "proposal"}),
    ("patient", {"resourceType": "Patient", "gender": "unknown", "identifier": [{"use": "old"}],
                 "_gender": {"extension": [{"url": "u", "valueQuantity": {"comparator": "<"}}]}}),
    # Non-required bindings are not judged (maritalStatus is extensible).
    ("patient-extensible", {"resourceType": "Patient", "maritalStatus": {"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "NOPE"}]}}),
    # Value sets that cannot be expanded from the core package are skipped (MIME types, UCUM).
    ("mime-type-skipped", {"resourceType": "Patient", "photo": [{"contentType": "not/a-real-type"}]}),
    ("condition-other-system", {"resourceType": "Condition", "subject": {"reference": "Patient/p"},
                                "clinicalStatus": {"coding": [{"system": "http://example.org", "code": "x"}]}}),
    ("condition-valid", {"resourceType": "Condition", "subject": {"reference": "Patient/p"}, "clinicalStatus": {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]}}),
    ("unknown-elements-ignored", sr(foo={"status": "bogus"}, _bar="x")),
    ("unknown-resource-type", {"resourceType": "Nonsense", "status": "bogus"}),
    ("no-resource-type", {"status": "bogus"}),
    ("wrong-shapes-ignored", sr(identifier={"use": 5}, contained=["x", {"resourceType": 3}])),
    ("null-in-primitive-extension-list", {"resourceType": "Patient", "name": [
        {"given": ["a", "b"], "_given": [None, {"extension": [{"url": "u", "valueString": "x"}]}]}]}),
]


@pytest.mark.parametrize("resource,expected", [c[1:] for c in NEGATIVES], ids=[c[0] for c in NEGATIVES])
def test_bad_codes_are_reported(resource: dict, expected: list) -> None:
    issues = check_required_bindings(resource)
    assert [(i.expression, i.code, i.valueset) for i in issues] == expected


@pytest.mark.parametrize("resource", [c[1] for c in POSITIVES], ids=[c[0] for c in POSITIVES])
def test_valid_codes_pass(resource: dict) -> None:
    assert check_required_bindings(resource) == []


def test_message() -> None:
    (issue,) = check_required_bindings(sr(status="bogus"))
    assert issue == BindingIssue("ServiceRequest.status", "bogus", VS + "request-status")
    assert issue.message == ("Code 'bogus' is not in the required value set "
                             "http://hl7.org/fhir/ValueSet/request-status (ServiceRequest.status)")


def test_no_coding_typed_required_binding_in_r4_core() -> None:
    # R4 core binds "required" only on code and CodeableConcept elements; if a
    # Coding-typed one ever shows up the checker handles it like a single coding.
    types = load_table("types")
    kinds = {f["t"][0] for t in types.values() if isinstance(t, dict)
             for f in t.get("e", {}).values() if "b" in f}
    assert kinds == {"code", "CodeableConcept"}


def _examples() -> list[Path]:
    return sorted(EXAMPLES.glob("*.json")) if EXAMPLES.is_dir() else []


@pytest.mark.parametrize("path", _examples() or [None], ids=lambda p: p.name if p else "absent")
def test_official_examples_pass(path: Path | None) -> None:
    if path is None:
        pytest.skip(f"official R4 examples not present at {EXAMPLES}")
    resource = json.loads(path.read_text(encoding="utf-8"))
    assert check_required_bindings(resource) == []


def test_official_example_with_bad_code_fails() -> None:
    path = EXAMPLES / "Bundle-bundle-transaction.json"
    if not path.is_file():
        pytest.skip(f"official R4 examples not present at {EXAMPLES}")
    bundle = json.loads(path.read_text(encoding="utf-8"))
    bad = copy.deepcopy(bundle)
    bad["entry"][0]["resource"]["gender"] = "robot"
    bad["entry"][2]["request"]["method"] = "PATCHY"
    issues = check_required_bindings(bad)
    assert [(i.expression, i.code) for i in issues] == [
        ("Bundle.entry[0].resource.gender", "robot"), ("Bundle.entry[2].request.method", "PATCHY")]
    assert check_required_bindings(bundle) == []
