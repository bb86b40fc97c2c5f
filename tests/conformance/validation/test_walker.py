"""The walk over resources held in resources (parameters.html, bundle.html,
references.html#contained): resources in Parameters (at any depth of parts), in
Bundles, contained ones and Bundles inside Parameters are validated against their own
type and the profiles they claim, with issues at their path in the outer resource."""

from __future__ import annotations

from fhir_server.conformance.structure import SD_PREFIX
from fhir_server.conformance.validator import Validator

EX = "http://example.org/fhir/StructureDefinition/"
NAMED = {"resourceType": "StructureDefinition", "url": EX + "named", "name": "Named", "status": "active",
         "kind": "resource", "abstract": False, "type": "Patient", "baseDefinition": SD_PREFIX + "Patient",
         "derivation": "constraint", "differential": {"element": [{"id": "Patient.name", "path": "Patient.name",
                                                                    "min": 1}]}}


def errors(resource: dict, validator: Validator | None = None) -> set[str]:
    return {i.expression for i in (validator or Validator()).validate(resource) if i.severity == "error"}


def test_resources_in_parameters_and_their_parts_are_validated():
    params = {"resourceType": "Parameters", "parameter": [
        {"name": "patient", "resource": {"resourceType": "Patient", "gender": "often"}},
        {"name": "group", "part": [{"name": "obs", "resource": {"resourceType": "Observation"}},
                                   {"name": "deeper", "part": [{"name": "p", "resource": {
                                       "resourceType": "Patient", "birthDate": "2020-13-01"}}]}]}]}
    assert errors(params) == {"Parameters.parameter[0].resource.gender",
                              "Parameters.parameter[1].part[0].resource.status",
                              "Parameters.parameter[1].part[0].resource.code",
                              "Parameters.parameter[1].part[1].part[0].resource.birthDate"}


def test_a_parameter_has_exactly_one_of_value_resource_and_part():
    both = {"resourceType": "Parameters", "parameter": [{"name": "a", "valueString": "x",
                                                         "resource": {"resourceType": "Patient"}}]}
    found = [i for i in Validator().validate(both) if i.severity == "error"]
    assert [(i.expression, i.constraint) for i in found] == [("Parameters.parameter[0]", "inv-1")]


def test_profiles_claimed_by_nested_resources_are_applied():
    v = Validator([NAMED])
    nested = {"resourceType": "Patient", "meta": {"profile": [EX + "named"]}}
    params = {"resourceType": "Parameters", "parameter": [{"name": "p", "resource": nested}]}
    assert errors(params, v) == {"Parameters.parameter[0].resource.name"}
    inner = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:00000001-0000-4000-8000-000000000000", "resource": nested}]}
    assert errors({"resourceType": "Parameters", "parameter": [{"name": "b", "resource": inner}]}, v) == {
        "Parameters.parameter[0].resource.entry[0].resource.name"}
    named = {**nested, "name": [{"family": "A"}]}
    assert errors({"resourceType": "Parameters", "parameter": [{"name": "p", "resource": named}]}, v) == set()


def test_contained_resources_are_validated_unless_switched_off():
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": "#p"},
           "contained": [{"resourceType": "Patient", "id": "p", "gender": "often"}]}
    assert errors(obs) == {"Observation.contained[0].gender"}
    assert errors(obs, Validator(contained=False)) == set()
