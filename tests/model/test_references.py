"""Reference targets (model/references.py): a literal reference names a type its
element allows, read as the profile validator reads it (``$validate`` agrees)."""

from __future__ import annotations

import pytest

from fhir_server.conformance.validator import Validator
from fhir_server.errors import InvalidResource
from fhir_server.model import validate_resource
from fhir_server.model.references import REFERENCE_RE

VALIDATOR = Validator()
SR = {"resourceType": "ServiceRequest", "status": "active", "intent": "order"}
ORG = {"resourceType": "Organization", "id": "o", "name": "x"}


def _validator_says(resource: dict) -> list[str]:
    return [i.expression for i in VALIDATOR.validate(resource) if i.message.startswith("Invalid reference type")]


@pytest.mark.parametrize("resource, where", [
    ({**SR, "subject": {"reference": "Organization/1"}}, "ServiceRequest.subject"),
    ({**SR, "subject": {"reference": "http://other.example/fhir/Organization/1/_history/2"}}, "ServiceRequest.subject"),
    ({**SR, "subject": {"reference": "#o"}, "contained": [ORG]}, "ServiceRequest.subject"),
    ({**SR, "subject": {"reference": "Patient/1"}, "basedOn": [{"reference": "Patient/2"}]}, "ServiceRequest.basedOn[0]"),
    ({**SR, "subject": {"reference": "MedicinalProduct/1"}}, "ServiceRequest.subject"),  # an R4 type we do not serve
    ({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:0c3d8a8e-0000-4000-8000-000000000001", "resource": {**ORG, "id": "o1"}},
        {"fullUrl": "urn:uuid:0c3d8a8e-0000-4000-8000-000000000002",
         "resource": {**SR, "subject": {"reference": "urn:uuid:0c3d8a8e-0000-4000-8000-000000000001"}}}]},
     "Bundle.entry[1].resource.subject"),
])
def test_a_reference_to_a_type_its_element_does_not_allow_is_refused(resource, where):
    with pytest.raises(InvalidResource, match="Invalid reference type") as info:
        validate_resource(resource)
    assert info.value.issues[0].expression == (where,)
    assert _validator_says(resource) == [where]


@pytest.mark.parametrize("resource", [
    {**SR, "subject": {"reference": "Patient/1"}, "requester": {"reference": "Organization/2"}},
    {**SR, "subject": {"reference": "urn:uuid:0c3d8a8e-0000-4000-8000-000000000001"}},  # no type named
    {**SR, "subject": {"reference": "#missing"}},  # ref-1's business
    {**SR, "subject": {"display": "x"}, "supportingInfo": [{"reference": "Organization/1"}]},  # Reference(Any)
    {"resourceType": "Patient", "extension": [{"url": "http://x", "valueReference": {"reference": "Task/1"}}]},
])
def test_references_the_element_allows_or_that_name_no_type_pass(resource):
    validate_resource(resource)
    assert _validator_says(resource) == []


def test_the_reference_pattern():
    assert REFERENCE_RE.match("Patient/1").groups() == ("Patient", "1")
    assert REFERENCE_RE.match("https://x.example/fhir/Patient/a.b-c/_history/3").groups() == ("Patient", "a.b-c")
    assert REFERENCE_RE.match("patient/1") is None and REFERENCE_RE.match("Patient/1?x") is None
