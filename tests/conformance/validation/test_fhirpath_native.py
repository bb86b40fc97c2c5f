"""fhirpath_native: the subset agrees with fhirpathpy, expression by expression and on
whole validations (the project's examples, and the official R4 examples and HL7's
validator cases when ../shared/fhir-spec is present)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fhir_server.conformance import ig_directory, ig_resources
from fhir_server.conformance.validation import fhirpath, fhirpath_native
from fhir_server.conformance.validator import Validator, local_value_sets

ROOT = Path(__file__).resolve().parents[3]
SPEC = ROOT.parent / "shared" / "fhir-spec"

CASES = [
    ("intent = 'order' or intent = 'proposal'", {"intent": "order"}),
    ("intent = 'order' or intent = 'proposal'", {"intent": "plan"}),
    ("intent = 'order' or intent = 'proposal'", {}),
    ("a.exists() implies b.exists()", {"a": 1}),
    ("a.exists() implies b.exists()", {"a": 1, "b": [2]}),
    ("a.empty() or b.count() > 1", {"a": "x", "b": [1, 2]}),
    ("a.empty() or b.count() > 1", {"a": "x", "b": [1]}),
    ("value.code.startsWith('ref') = (intent = 'order')", {"valueCoding": {"code": "referral"}, "intent": "order"}),
    ("value.code.startsWith('ref') = (intent = 'order')", {"valueCoding": {"code": "phone"}, "intent": "order"}),
    ("extension('http://x').value.exists() xor b.exists()", {"extension": [{"url": "http://x", "valueString": "s"}]}),
    ("extension('http://x').value.exists() xor b.exists()", {"extension": [{"url": "http://y", "valueString": "s"}]}),
    ("active = true and (a != 'x').not()", {"active": True, "a": "x"}),
    ("active = true and (a != 'x').not()", {"active": 1, "a": "y"}),
    ("a.hasValue() and n >= 2.5", {"a": "v", "n": 3}),
    ("a = b", {"a": ["x", "y"], "b": ["x", "y"]}),
    ("a = b", {"a": ["x"], "b": []}),
]


@pytest.mark.parametrize("expression,data", CASES)
def test_subset_agrees_with_fhirpathpy(expression, data):
    fn = fhirpath_native.native(expression)
    assert fn is not None, expression
    tpath = "Extension" if "valueCoding" in data else "Element"  # fhirpathpy reads choices by the type
    want = fhirpath.evaluate(fhirpath.compile_expression(expression), data, tpath, {})
    assert fn([data]) == want


@pytest.mark.parametrize("expression", ["%resource.id.exists()", "name.where(use = 'official').exists()",
                                        "birthDate > @2000-01-01", "Patient.name.exists()", "$this.exists()",
                                        "code.matches('[a-z]+')"])
def test_other_shapes_are_left_to_fhirpathpy(expression):
    assert fhirpath_native.native(expression) is None


@pytest.mark.parametrize("data", [{"_a": {"extension": [{"url": "u", "valueString": "x"}]}},
                                  {"a": ["x", "y"]}, {"a": {"b": 1}}, {"a": 1}])
def test_what_fhirpath_decides_otherwise_falls_back(data):
    fn = fhirpath_native.native("a.startsWith('x') or a = 'x'")
    with pytest.raises(fhirpath_native.Fallback):
        fn([data])


def _inputs() -> list[dict]:
    out = [json.loads(p.read_text()) for p in sorted((ROOT / "examples").rglob("*.json"))]
    for folder in (SPEC / "r4-examples", SPEC / "validator-r4" / "validator"):
        for p in sorted(folder.glob("*.json")) if folder.is_dir() else ():
            try:
                out.append(json.loads(p.read_text()))
            except ValueError:
                pass
    return [r for r in out if isinstance(r, dict) and "resourceType" in r]


def test_whole_validations_agree(monkeypatch):
    guide = ig_resources(ig_directory())
    def issues():
        v = Validator(guide, local_value_sets(guide))
        return [sorted((i.severity, i.expression, i.message) for i in v.validate(r)) for r in inputs]
    inputs = _inputs()
    assert len(inputs) > 20
    fast = issues()
    monkeypatch.setattr(fhirpath_native, "native", lambda expression: None)
    assert issues() == fast
