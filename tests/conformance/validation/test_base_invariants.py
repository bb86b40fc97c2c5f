"""The base invariants a write evaluates (conformance/validation/base_invariants.py):
where the structure walk notes them, and that they agree with ``$validate``'s walk.

The property test builds resources from the constructs whose invariants the guards
reason about -- Periods written many ways, Quantities, ContactPoints, Attachments,
local references and contained resources, narratives, Patient contacts, Consents,
QuestionnaireResponse items, Appointments -- and holds the write's invariant errors
to be exactly the profile validator's (the same keys at the same places): a guard
that skipped a failing invariant, or a native verdict that differed from FHIRPath,
shows up as a difference.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_server.conformance.validation.base_invariants import EXTENSION, evaluate, invariant_sites
from fhir_server.conformance.validator import Validator
from fhir_server.errors import InvalidResource, Unprocessable
from fhir_server.model import validate_resource

VALIDATOR = Validator()
XHTML = 'xmlns="http://www.w3.org/1999/xhtml"'


def _write_issues(resource: dict) -> set[tuple[str, str]]:
    sites = invariant_sites()
    validate_resource(resource, sites=sites)
    issues, _ = evaluate(VALIDATOR, sites)
    return {(i.constraint, i.expression) for i in issues}


def _validate_issues(resource: dict) -> set[tuple[str, str]]:
    return {(i.constraint, i.expression) for i in VALIDATOR.validate(resource, claims=False)
            if i.severity == "error" and i.constraint}


def _keys(resource: dict) -> set[str]:
    return {key for key, _ in _write_issues(resource)}


# ---------------------------------------------------------------------------- where sites are noted


SR = {"resourceType": "ServiceRequest", "status": "active", "intent": "order", "subject": {"reference": "Patient/1"},
      "requester": {"reference": "Organization/2"}, "code": {"coding": [{"system": "http://snomed.info/sct", "code": "1"}]},
      "identifier": [{"system": "urn:x", "value": "1"}]}


def test_a_plain_small_resource_needs_no_invariant():
    sites = invariant_sites()
    validate_resource(SR, sites=sites)
    assert sites.found == []


@pytest.mark.parametrize("resource, key, path", [
    ({**SR, "occurrencePeriod": {"start": "2024-02-01", "end": "2024-01-01"}}, "per-1", "ServiceRequest.occurrencePeriod"),
    ({**SR, "quantityQuantity": {"value": 1, "code": "mg"}}, "qty-3", "ServiceRequest.quantityQuantity"),
    ({**SR, "requester": {"reference": "#nope"}}, "ref-1", "ServiceRequest.requester"),
    ({**SR, "orderDetail": [{"text": "x"}], "code": None}, "prr-1", "ServiceRequest"),
    ({**SR, "text": {"status": "generated", "div": f"<div {XHTML}><script>x</script></div>"}}, "txt-1",
     "ServiceRequest.text.div"),
    ({**SR, "text": {"status": "generated", "div": "<p>not a div</p>"}}, "txt-1", "ServiceRequest.text.div"),
    ({**SR, "contained": [{"resourceType": "Organization", "id": "o", "name": "x",
                           "contained": [{"resourceType": "Organization", "id": "p", "name": "y"}]}],
      "requester": {"reference": "#o"}}, "dom-2", "ServiceRequest"),
    ({**SR, "contained": [{"resourceType": "Organization", "id": "o", "name": "x", "meta": {"versionId": "1"}}],
      "requester": {"reference": "#o"}}, "dom-4", "ServiceRequest"),
    ({**SR, "contained": [{"resourceType": "Organization", "id": "o", "name": "x",
                           "meta": {"security": [{"system": "urn:s", "code": "x"}]}}],
      "requester": {"reference": "#o"}}, "dom-5", "ServiceRequest"),
    ({"resourceType": "Patient", "contact": [{"gender": "male"}]}, "pat-1", "Patient.contact[0]"),
    ({"resourceType": "Patient", "telecom": [{"value": "123"}]}, "cpt-2", "Patient.telecom[0]"),
    ({"resourceType": "Organization", "telecom": [{"system": "phone", "value": "1", "use": "home"}], "name": "x"},
     "org-3", "Organization.telecom[0]"),
    ({"resourceType": "QuestionnaireResponse", "status": "completed",
      "item": [{"linkId": "1", "answer": [{"valueString": "a"}], "item": [{"linkId": "2"}]}]},
     "qrs-1", "QuestionnaireResponse.item[0]"),
])
def test_each_gap_is_found_where_validate_finds_it(resource, key, path):
    resource = {k: v for k, v in resource.items() if v is not None}
    assert (key, path) in _write_issues(resource)
    assert (key, path) in _validate_issues(resource)


def test_a_contained_resource_resolves_in_its_container_and_a_bundle_entry_in_itself():
    patient = {"resourceType": "Patient", "id": "p", "managingOrganization": {"reference": "#o"}}
    ok = {**SR, "contained": [{"resourceType": "Organization", "id": "o", "name": "x"}, patient],
          "subject": {"reference": "#p"}}
    assert _keys(ok) == set()
    entry = {"resourceType": "Bundle", "type": "collection", "entry": [{"fullUrl": "urn:uuid:1", "resource": patient}]}
    assert _write_issues(entry) == _validate_issues(entry) == {("ref-1", "Bundle.entry[0].resource.managingOrganization")}


def test_extensions_with_a_known_definition_are_reported_to_the_caller():
    core = {"url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace", "valueAddress": {"city": "x"}}
    unknown = {"url": "https://other.example/ext", "valueString": "x"}
    for extensions, known in (([core], True), ([unknown], False)):
        sites = invariant_sites()
        validate_resource({"resourceType": "Patient", "extension": extensions}, sites=sites)
        assert [s.rule for s in sites.found] == [EXTENSION]
        assert evaluate(VALIDATOR, sites) == ([], known)


def test_an_element_with_only_an_id_breaks_ele_1_in_the_walk():
    with pytest.raises(InvalidResource, match="ele-1"):
        validate_resource({**SR, "code": {"id": "a"}})
    assert any(i.constraint == "ele-1" for i in VALIDATOR.validate({**SR, "code": {"id": "a"}}))
    validate_resource({"resourceType": "Patient", "_birthDate": {"id": "a"}, "birthDate": "2000"})  # a primitive's part


# ---------------------------------------------------------------------------- agreement with $validate

DATES = st.sampled_from([
    "2024", "2025", "2024-01", "2024-02", "2024-01-01", "2024-01-02", "2023-12-31",
    "2024-01-01T10:00:00Z", "2024-01-01T09:00:00Z", "2024-01-01T10:00:00.5Z", "2024-01-01T10:00:00.25Z",
    "2024-01-01T10:00:00+01:00", "2024-01-01T11:00:00+01:00", "2024-01-01T10:00:00-05:00", "2024-01-01T04:00:00-05:00",
])


def _maybe(draw, key: str, strategy) -> dict:
    return {key: draw(strategy)} if draw(st.booleans()) else {}


@st.composite
def periods(draw) -> dict:
    period = {**_maybe(draw, "start", DATES), **_maybe(draw, "end", DATES)}
    if draw(st.booleans()):
        period["_start"] = {"extension": [{"url": "urn:x", "valueString": "x"}]}
    return period or {"start": "2024"}


@st.composite
def quantities(draw) -> dict:
    q = {**_maybe(draw, "value", st.sampled_from([1, 2.5])), **_maybe(draw, "code", st.just("mg")),
         **_maybe(draw, "system", st.just("http://unitsofmeasure.org")), **_maybe(draw, "unit", st.just("mg"))}
    return q or {"unit": "mg"}


@st.composite
def telecoms(draw) -> dict:
    t = {**_maybe(draw, "system", st.sampled_from(["phone", "email"])), **_maybe(draw, "value", st.just("1")),
         **_maybe(draw, "use", st.sampled_from(["home", "work"]))}
    return t or {"rank": 1}


@st.composite
def narratives(draw) -> dict:
    div = draw(st.sampled_from([f"<div {XHTML}>ok</div>", f"<div {XHTML}><script>x</script></div>", "<p>x</p>",
                                f"<div {XHTML}><a href=\"javascript:x()\">x</a></div>", f"<div {XHTML}> </div>",
                                "<div>no namespace</div>", f"<div {XHTML}><b onclick=\"x\">x</b></div>"]))
    return {"status": "generated", "div": div}


@st.composite
def service_requests(draw) -> dict:
    sr = {"resourceType": "ServiceRequest", "status": "active", "intent": "order", "subject": {"reference": "Patient/1"}}
    sr.update(_maybe(draw, "code", st.just({"text": "x"})))
    sr.update(_maybe(draw, "orderDetail", st.just([{"text": "d"}])))
    sr.update(_maybe(draw, "occurrencePeriod", periods()))
    sr.update(_maybe(draw, "quantityQuantity", quantities()))
    sr.update(_maybe(draw, "text", narratives()))
    if draw(st.booleans()):
        org = {"resourceType": "Organization", "id": "o", **_maybe(draw, "name", st.just("x")),
               **_maybe(draw, "telecom", st.lists(telecoms(), min_size=1, max_size=2))}
        org.update(_maybe(draw, "meta", st.sampled_from([{"versionId": "1"}, {"lastUpdated": "2024-01-01T00:00:00Z"},
                                                          {"security": [{"code": "x"}]}, {"tag": [{"code": "x"}]}])))
        org.update(_maybe(draw, "contained", st.just([{"resourceType": "Patient", "id": "q"}])))
        sr["contained"] = [org]
    sr.update(_maybe(draw, "requester", st.sampled_from([{"reference": "#o"}, {"reference": "#x"},
                                                         {"reference": "Organization/1"}, {"display": "x"}])))
    return sr


@st.composite
def patients(draw) -> dict:
    patient = {"resourceType": "Patient"}
    patient.update(_maybe(draw, "telecom", st.lists(telecoms(), min_size=1, max_size=2)))
    contact = {**_maybe(draw, "name", st.just({"family": "x"})), **_maybe(draw, "telecom", st.lists(telecoms(), min_size=1)),
               **_maybe(draw, "organization", st.just({"reference": "Organization/1"})),
               **_maybe(draw, "period", periods())}
    patient.update({"contact": [contact or {"gender": "male"}]} if draw(st.booleans()) else {})
    patient.update(_maybe(draw, "name", st.lists(st.builds(lambda p: {"family": "x", "period": p}, periods()),
                                                  min_size=1, max_size=2)))
    return patient


@st.composite
def others(draw) -> dict:
    kind = draw(st.sampled_from(["Consent", "Appointment", "QuestionnaireResponse", "DocumentReference"]))
    if kind == "Consent":
        return {"resourceType": "Consent", "status": "active",
                "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
                "category": [{"text": "c"}], **_maybe(draw, "patient", st.just({"reference": "Patient/1"})),
                **_maybe(draw, "policyRule", st.just({"text": "r"})),
                **_maybe(draw, "provision", st.builds(lambda p: {"period": p}, periods()))}
    if kind == "Appointment":
        return {"resourceType": "Appointment", "status": draw(st.sampled_from(["booked", "proposed", "cancelled"])),
                "participant": [{"status": "accepted", **_maybe(draw, "actor", st.just({"reference": "Patient/1"})),
                                 **_maybe(draw, "type", st.just([{"text": "t"}]))}],
                **_maybe(draw, "start", st.just("2024-01-01T10:00:00Z")), **_maybe(draw, "end", st.just("2024-01-01T09:00:00Z")),
                **_maybe(draw, "cancelationReason", st.just({"text": "x"}))}
    if kind == "QuestionnaireResponse":
        item = {"linkId": "1", **_maybe(draw, "answer", st.just([{"valueString": "a"}])),
                **_maybe(draw, "item", st.just([{"linkId": "2", "answer": [{"valueString": "b"}]}]))}
        return {"resourceType": "QuestionnaireResponse", "status": "completed", "item": [item]}
    attachment = {**_maybe(draw, "data", st.just("aGVsbG8=")), **_maybe(draw, "contentType", st.just("text/plain"))}
    return {"resourceType": "DocumentReference", "status": "current", "content": [{"attachment": attachment or {"title": "t"}}]}


@settings(max_examples=400, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(resource=st.one_of(service_requests(), patients(), others()))
def test_the_write_finds_exactly_the_invariant_errors_validate_finds(resource):
    try:
        validate_resource(resource)
    except InvalidResource:
        return  # the models refuse it before any invariant
    assert _write_issues(resource) == _validate_issues(resource)


@pytest.mark.parametrize(("start", "end"), [(s, e) for s in DATES.elements for e in DATES.elements])
def test_per_1_natively_or_by_fhirpath_as_validate_decides(start, end):
    resource = {"resourceType": "Patient", "name": [{"family": "x", "period": {"start": start, "end": end}}]}
    assert _write_issues(resource) == _validate_issues(resource)


SPEC = Path(__file__).resolve().parents[3].parent / "shared" / "fhir-spec"
SPEC_FILES = sorted((SPEC / "validator-r4" / "validator").glob("*.json")) + sorted((SPEC / "r4-examples").glob("*.json"))


@pytest.mark.skipif(not SPEC_FILES, reason=f"the R4 examples and validator cases are not present at {SPEC} "
                                           "(../shared/fhir-spec is not part of the product)")
def test_the_r4_examples_and_validator_cases_agree():
    checked = found = 0
    for path in SPEC_FILES:
        try:
            resource = orjson.loads(path.read_bytes())
            validate_resource(resource)
        except (orjson.JSONDecodeError, InvalidResource, Unprocessable, AttributeError):
            continue  # not JSON, not a resource, or refused before any invariant (422: a Swedish identifier)
        expected = _validate_issues(resource)
        assert _write_issues(resource) == expected, path.name
        checked, found = checked + 1, found + len(expected)
    assert checked >= 60 and found >= 4  # opd-3, txt-1, que-12, ras-2 among them
