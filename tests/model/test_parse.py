import orjson
import pytest

from fhir_server.errors import BadRequest, InvalidResource

from fhir_server.model import (
    MAX_JSON_DEPTH,
    MAX_RESOURCE_DEPTH,
    check_json_depth,
    parse_json,
    parse_resource,
    validate_resource,
)

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


# ------------------------------------------------------------------ nesting depth


def _nested(depth: int) -> bytes:
    """A Patient whose JSON nests exactly ``depth`` objects/arrays (extensions in extensions)."""
    levels, odd = divmod(depth - 3, 2)  # Patient {, extension [, then { [ per level, the leaf {
    leaf = '{"url":"http://y","valueCodeableConcept":{"text":"v"}}' if odd else '{"url":"http://y","valueString":"v"}'
    body = '{"resourceType":"Patient","extension":[' + '{"url":"http://x","extension":[' * levels + leaf
    return (body + "]}" * levels + "]}").encode()


@pytest.mark.parametrize("depth", [11, 63, 64])
def test_bodies_up_to_the_depth_limit_parse(depth):
    assert parse_json(_nested(depth), max_depth=64)
    with pytest.raises(BadRequest):
        parse_json(_nested(depth), max_depth=depth - 1)


def test_depth_counts_objects_and_arrays():
    check_json_depth({"a": [{"b": [1]}]}, 4)
    with pytest.raises(BadRequest, match="deeper than 3"):
        check_json_depth({"a": [{"b": [1]}]}, 3)
    check_json_depth({"a": 1, "b": "x"}, 1)


def test_a_body_past_the_limit_is_400_before_any_recursion():
    with pytest.raises(BadRequest) as info:
        parse_json(_nested(65))
    assert info.value.status == 400 and "64" in info.value.message
    assert MAX_JSON_DEPTH == 64


def test_the_depth_check_is_iterative():
    value: object = "leaf"
    for _ in range(100_000):  # far past Python's recursion limit
        value = [value]
    with pytest.raises(BadRequest):
        check_json_depth({"x": value}, MAX_JSON_DEPTH)


def test_validate_resource_refuses_resources_deeper_than_its_ceiling():
    # a patched resource never passed parse_json: validation holds it to the ceiling
    deep = orjson.loads(_nested(MAX_RESOURCE_DEPTH + 1))
    with pytest.raises(InvalidResource) as info:
        validate_resource(deep)
    assert info.value.status == 400
    assert validate_resource(orjson.loads(_nested(MAX_RESOURCE_DEPTH)))
    with pytest.raises(InvalidResource):
        validate_resource(orjson.loads(_nested(MAX_JSON_DEPTH + 1)), max_depth=MAX_JSON_DEPTH)


def test_deep_resources_at_the_ceiling_validate_with_stack_to_spare():
    """At the ceiling, validation needs fewer than half of Python's default 1,000 frames (about 420)."""
    import sys
    import threading

    result: list = []

    def run():
        previous = sys.getrecursionlimit()
        sys.setrecursionlimit(500)
        try:
            result.append(validate_resource(orjson.loads(_nested(MAX_RESOURCE_DEPTH))))
        finally:
            sys.setrecursionlimit(previous)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert result and result[0]["resourceType"] == "Patient"


@pytest.mark.parametrize("value", [None, 1, "x", True, [], {}])
def test_scalars_and_empty_containers_have_no_depth_to_refuse(value):
    check_json_depth(value, 1)
