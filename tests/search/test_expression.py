"""The FHIRPath fast path agrees with fhirpathpy.

Compared on the spec's official examples (``../shared/fhir-spec/r4-examples``, skipped
when absent) and on the storage suite's dataset, for every part of every search
parameter expression that takes the fast path. Two documented differences:

- ``Resource.x`` / ``DomainResource.x``: fhirpathpy returns nothing for them on a
  concrete resource; the fast path intentionally returns the values, the same as
  ``<Type>.x``;
- ``x.where(resolve() is T)``: fhirpathpy cannot resolve; the fast path judges the
  target type from the reference text (or ``Reference.type``), as HAPI does;
- ``(x as T)`` on a collection: fhirpathpy raises (``as`` wants one item); the fast
  path keeps the items of type T, as ``x.ofType(T)`` does.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import fhirpathpy
import pytest
from fhirpathpy.models import models

from fhir_server.search import SearchRegistry
from fhir_server.search.expression import compile_expression, split_union
from tests.storage.helpers import DATASET, DELETED_OBSERVATION

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT.parent / "shared" / "fhir-spec" / "r4-examples"

_PATH = r"[A-Z][A-Za-z]+(?:\.[a-z][A-Za-z]*)+"
#: the forms the fast path documents (search/expression.py)
FAST_FORMS = [
    re.compile(rf"^{_PATH}$"),
    re.compile(rf"^\({_PATH} as [A-Za-z]+\)$"),
    re.compile(rf"^{_PATH}\.(?:as|ofType)\([A-Za-z]+\)$"),
]
AS_FORM = re.compile(rf"^\(?({_PATH})(?: as |\.as\()([A-Za-z]+)\)$")
RESOLVE_IS = re.compile(rf"^({_PATH})\.where\(resolve\(\) is ([A-Z][A-Za-z]+)\)$")
COMMON = ("Resource.", "DomainResource.")


def _plain(values: list) -> str:
    return json.dumps(values, default=lambda v: float(v) if isinstance(v, Decimal) else str(v), sort_keys=True)


def _fhirpath(resource: dict, expression: str) -> list:
    return fhirpathpy.evaluate(resource, expression, {}, models["r4"])


def _resources(bundle_or_resource: dict):
    yield bundle_or_resource
    for entry in bundle_or_resource.get("entry") or ():
        if isinstance(entry.get("resource"), dict):
            yield from _resources(entry["resource"])


def _parts(registry: SearchRegistry, resource_type: str):
    """(code, part) for every expression part of the type's indexed parameters."""
    for d in registry.supported_for(resource_type):
        if d.column or not d.expression or d.type == "composite":
            continue
        for part in split_union(d.expression):
            bare = part.lstrip("(")
            if bare.startswith((f"{resource_type}.", *COMMON)):
                yield d.code, part


def _compare(resources) -> tuple[int, list[str]]:
    registry = SearchRegistry.from_spec()
    compared, disagreements = 0, []
    for resource in resources:
        rtype = resource["resourceType"]
        for code, part in _parts(registry, rtype):
            fast = compile_expression(part)(resource)
            bare = part.lstrip("(")
            if bare.startswith(COMMON):
                # the fast path answers as the typed expression would
                typed = part.replace("DomainResource.", f"{rtype}.").replace("Resource.", f"{rtype}.")
                expected = _fhirpath(resource, typed)
            elif m := RESOLVE_IS.match(part):
                target = m.group(2)
                expected = [
                    ref for ref in _fhirpath(resource, m.group(1))
                    if isinstance(ref, dict) and (
                        re.match(rf"^(.*/)?{target}/[^/]+(/_history/.*)?$", ref.get("reference") or "")
                        or ref.get("type") == target
                    )
                ]
            elif any(f.match(part) for f in FAST_FORMS):
                try:
                    expected = _fhirpath(resource, part)
                except ValueError:
                    # FHIRPath's ``as`` wants a single item; on a collection (Observation.component.value)
                    # the fast path keeps the items of that type, which is what ``ofType`` returns
                    m = AS_FORM.match(part)
                    assert m, part
                    expected = _fhirpath(resource, f"{m.group(1)}.ofType({m.group(2)})")
            else:
                continue  # not a fast form: fhirpathpy itself evaluates it
            compared += 1
            if _plain(fast) != _plain(expected):
                disagreements.append(f"{rtype}/{resource.get('id')} {code}: {part}\n  fast: {_plain(fast)}\n  fhirpathpy: {_plain(expected)}")
    return compared, disagreements


def test_fast_path_agrees_with_fhirpathpy_on_the_official_examples():
    if not EXAMPLES.is_dir():
        pytest.skip(f"official FHIR R4 examples not present at {EXAMPLES}")
    resources = [r for f in sorted(EXAMPLES.glob("*.json")) for r in _resources(json.loads(f.read_text()))]
    compared, disagreements = _compare(resources)
    assert compared > 300, f"only {compared} expression parts were compared"
    assert not disagreements, "\n".join(disagreements)


def test_fast_path_agrees_with_fhirpathpy_on_the_storage_dataset():
    compared, disagreements = _compare([*DATASET, DELETED_OBSERVATION])
    assert compared > 200
    assert not disagreements, "\n".join(disagreements)


OBSERVATION = {
    "resourceType": "Observation", "id": "o", "status": "final",
    "code": {"text": "weight"},
    "subject": {"reference": "Patient/p"},
    "effectivePeriod": {"start": "2026-01-01"},
    "valueQuantity": {"value": 42.5, "unit": "kg"},
    "component": [
        {"code": {"text": "a"}, "valueString": "x"},
        {"code": {"text": "b"}, "valueQuantity": {"value": 1}},
    ],
}


@pytest.mark.parametrize(
    "expression, expected",
    [
        ("Observation.status", ["final"]),
        ("Observation.value", [{"value": 42.5, "unit": "kg"}]),
        ("Observation.effective", [{"start": "2026-01-01"}]),
        ("(Observation.value as Quantity)", [{"value": 42.5, "unit": "kg"}]),
        ("(Observation.value as string)", []),
        ("Observation.value.as(Quantity)", [{"value": 42.5, "unit": "kg"}]),
        ("Observation.effective.ofType(Period)", [{"start": "2026-01-01"}]),
        ("Observation.effective.ofType(dateTime)", []),
        ("Observation.component.value", ["x", {"value": 1}]),
        ("Observation.component.code", [{"text": "a"}, {"text": "b"}]),
        ("Observation.nothing.here", []),
        ("Patient.name", []),  # another type's expression
        ("Resource.id", ["o"]),
        ("DomainResource.id", ["o"]),
        ("Observation.subject.where(resolve() is Patient)", [{"reference": "Patient/p"}]),
        ("Observation.subject.where(resolve() is Group)", []),
        ("Observation.status | Observation.code", ["final", {"text": "weight"}]),
    ],
)
def test_fast_forms(expression, expected):
    assert compile_expression(expression)(OBSERVATION) == expected


@pytest.mark.parametrize(
    "reference, target, matches",
    [
        ({"reference": "Patient/p"}, "Patient", True),
        ({"reference": "http://other.example/fhir/Patient/p"}, "Patient", True),
        ({"reference": "Patient/p/_history/2"}, "Patient", True),
        ({"reference": "Group/p"}, "Patient", False),
        ({"reference": "RelatedPatient/p"}, "Patient", False),
        ({"type": "Patient", "identifier": {"value": "1"}}, "Patient", True),
        ({"identifier": {"value": "1"}}, "Patient", False),
    ],
)
def test_resolve_is_judges_the_reference_text(reference, target, matches):
    task = {"resourceType": "Task", "for": reference}
    found = compile_expression(f"Task.for.where(resolve() is {target})")(task)
    assert found == ([reference] if matches else [])


def test_other_forms_fall_back_to_fhirpathpy():
    patient = {"resourceType": "Patient", "deceasedBoolean": True, "name": [{"family": "A", "use": "official"}, {"family": "B"}]}
    assert compile_expression("Patient.deceased.exists() and Patient.deceased != false")(patient) == [True]
    assert compile_expression("Patient.name.where(use = 'official').family")(patient) == ["A"]


@pytest.mark.parametrize(
    "expression, parts",
    [
        ("A.x | B.y", ["A.x", "B.y"]),
        ("(A.x as Quantity) | (A.x as SampledData)", ["(A.x as Quantity)", "(A.x as SampledData)"]),
        ("A.x.where(y = 'a|b') | A.z", ["A.x.where(y = 'a|b')", "A.z"]),
        ("A.x.where((y | z).exists())", ["A.x.where((y | z).exists())"]),
        ("  A.x  ", ["A.x"]),
    ],
)
def test_split_union(expression, parts):
    assert split_union(expression) == parts


FILTERED_CASES = [
    # (expression, resource)
    ("ServiceRequest.extension('http://x.org/a.b/c').value",
     {"resourceType": "ServiceRequest", "extension": [
         {"url": "http://x.org/a.b/c", "valueCoding": {"system": "s", "code": "phone"}},
         {"url": "http://x.org/other", "valueString": "no"},
         {"url": "http://x.org/a.b/c", "valueString": "second"}]}),
    ("ServiceRequest.extension('http://x.org/a.b/c').value",
     {"resourceType": "ServiceRequest", "extension": [{"url": "http://x.org/other", "valueBoolean": True}]}),
    ("ServiceRequest.extension('http://x.org/a.b/c').value", {"resourceType": "ServiceRequest"}),
    ("ServiceRequest.extension('http://x.org/a.b/c').value", {"resourceType": "Patient", "extension": [
        {"url": "http://x.org/a.b/c", "valueString": "wrong type"}]}),
    ("ServiceRequest.extension('u').extension('type').value",
     {"resourceType": "ServiceRequest", "extension": [
         {"url": "u", "extension": [{"url": "type", "valueCoding": {"code": "pvv"}},
                                    {"url": "start", "valueDate": "2026-01-01"}]},
         {"url": "u", "extension": [{"url": "type", "valueCoding": {"code": "medical"}}]},
         {"url": "v", "extension": [{"url": "type", "valueCoding": {"code": "no"}}]}]}),
    ("Patient.extension('u').extension('responsibleMunicipality').value",
     {"resourceType": "Patient", "extension": [{"url": "u", "extension": [
         {"url": "responsibleMunicipality", "valueReference": {"reference": "Organization/1"}}]}]}),
    ("Measure.relatedArtifact.where(type='composed-of').resource",
     {"resourceType": "Measure", "relatedArtifact": [
         {"type": "composed-of", "resource": "http://a/1"}, {"type": "depends-on", "resource": "http://a/2"},
         {"type": "composed-of", "resource": "http://a/3"}, {"type": "composed-of"}]}),
    ("Measure.relatedArtifact.where(type = 'depends-on').resource",
     {"resourceType": "Measure", "relatedArtifact": [{"type": "depends-on", "resource": "http://a/2"}]}),
]


@pytest.mark.parametrize("expression,resource", FILTERED_CASES)
def test_filtering_steps_agree_with_fhirpathpy(expression, resource):
    """``extension('u')`` is compared as ``extension.where(url = 'u')``, which the FHIRPath
    spec defines it to be: fhirpathpy's own ``extension()`` keeps only the first match."""
    fast = compile_expression(expression)
    spelled_out = re.sub(r"extension\('([^']*)'\)", r"extension.where(url = '\1')", expression)
    assert _plain(fast(resource)) == _plain(_fhirpath(resource, spelled_out))


def test_the_guides_extension_parameters_take_the_fast_path(monkeypatch):
    """Every guide parameter on an extension or a ``where(x = 'y')`` step is compiled
    without fhirpathpy (each fallback cost ~100 µs per indexed resource)."""
    import fhir_server.search.expression as expression_module

    def refuse(part, model):
        raise AssertionError(f"fell back to fhirpathpy: {part}")

    monkeypatch.setattr(expression_module.fhirpathpy, "compile", refuse)
    for expression in (
        "ServiceRequest.extension('https://evi-fhir.org/fhir/StructureDefinition/evi-contact-channel').value",
        "ServiceRequest.extension('https://evi-fhir.org/fhir/StructureDefinition/evi-wait-deviation').extension('type').value",
        "Measure.relatedArtifact.where(type='composed-of').resource",
    ):
        compile_expression(expression)


def _examples() -> list[dict]:
    if not EXAMPLES.is_dir():
        return []
    found = []
    for path in sorted(EXAMPLES.glob("*.json")):
        try:
            found.extend(_resources(json.loads(path.read_text())))
        except (ValueError, UnicodeDecodeError):
            continue
    return found


def test_skipping_parameters_whose_roots_are_absent_changes_no_index():
    """``Extractor.roots`` lets indexing skip a parameter whose top-level elements a
    resource lacks: the index must be exactly what evaluating every parameter gives, on
    the official examples (when present) and the storage suite's dataset."""
    from dataclasses import replace

    from fhir_server.search import extract_index

    with_roots = SearchRegistry.from_spec()
    without = SearchRegistry.from_spec()
    resources = [r for r in (*_examples(), *DATASET, DELETED_OBSERVATION) if isinstance(r, dict) and "resourceType" in r]
    skipped = 0
    for resource in resources:
        rtype = resource["resourceType"]
        try:
            extractors = without.extractors(rtype)
        except KeyError:
            continue
        without._extractors[rtype] = [replace(e, roots=None) for e in extractors]
        skipped += sum(1 for e in with_roots.extractors(rtype)
                       if e.roots is not None and not any(k in resource for k in e.roots))
        assert extract_index(with_roots, resource) == extract_index(without, resource), f"{rtype}/{resource.get('id')}"
    assert skipped > len(resources)  # most parameters are skipped on most resources
