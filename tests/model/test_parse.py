import pytest

from fhir_server.errors import BadRequest, InvalidResource
from fhir_server.model import parse_json, parse_resource, validate_resource

SR = {"resourceType": "ServiceRequest", "status": "active", "intent": "order", "subject": {"reference": "Patient/1"}}


def test_valid_resource_is_returned_unchanged():
    assert validate_resource(dict(SR)) == SR


@pytest.mark.parametrize("body", [b"", b"{", b"[1]", b'"text"'])
def test_malformed_json(body):
    with pytest.raises(BadRequest):
        parse_json(body)


@pytest.mark.parametrize(
    "resource, expected_type, expression",
    [
        ({**SR, "status": "bogus"}, None, "ServiceRequest.status"),
        ({**SR, "intent": "whatever"}, None, "ServiceRequest.intent"),
        ({k: v for k, v in SR.items() if k != "status"}, None, "ServiceRequest.status"),
        ({**SR, "foo": 1}, None, "ServiceRequest.foo"),
        ({**SR, "identifier": [{"system": 5}]}, None, "ServiceRequest.identifier[0].system"),
        ({**SR, "identifier": []}, None, "ServiceRequest.identifier"),
        ({**SR, "note": None}, None, "ServiceRequest.note"),
        ({**SR, "identifier": [{}]}, None, "ServiceRequest.identifier[0]"),
        ({"resourceType": "Patient", "birthDate": "2020-13-01"}, None, "Patient.birthDate"),
        ({"resourceType": "Patient", "active": "yes"}, None, "Patient.active"),
        ({"resourceType": "Patient", "multipleBirthInteger": "3"}, None, "Patient.multipleBirthInteger"),
        ({"resourceType": "Patient", "name": [{"given": ["a", 5]}]}, None, "Patient.name[0].given[1]"),
        ({"resourceType": "Patient", "_birthDate": {"extension": [{"url": "u", "valueBoolean": "no"}]}}, None,
         "Patient.birthDate.extension[0].valueBoolean"),
        (SR, "Patient", "resourceType"),
        ({"resourceType": "Nonsense"}, None, "resourceType"),
        ({"status": "active"}, None, "resourceType"),
        ({**SR, "id": "has space"}, None, "ServiceRequest.id"),
    ],
)
def test_invalid_resources_name_the_element(resource, expected_type, expression):
    with pytest.raises(InvalidResource) as info:
        validate_resource(resource, expected_type)
    assert expression in [e for issue in info.value.issues for e in issue.expression]
    assert info.value.status == 400


def test_r4_types_without_an_r4b_model_are_not_accepted():
    with pytest.raises(InvalidResource):
        parse_resource(b'{"resourceType": "MedicinalProduct"}')


def test_nested_resources_are_validated():
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {**SR, "status": "bogus"}}]}
    with pytest.raises(InvalidResource) as info:
        validate_resource(bundle)
    assert info.value.issues[0].expression == ("Bundle.entry[0].resource.status",)
