"""conformance/parameters.py: operation inputs from a query string and a Parameters body."""

import pytest

from fhir_server.conformance.parameters import operation_inputs, parse_expand, parse_lookup, parse_validate_code
from fhir_server.errors import BadRequest


def test_query_and_body_are_merged_and_http_parameters_dropped():
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "count", "valueInteger": 5},
        {"name": "valueSet", "resource": {"resourceType": "ValueSet", "status": "active"}},
    ]}
    inputs = operation_inputs([("url", "urn:x"), ("_format", "json"), ("_pretty", "true")], body)
    assert inputs == {"url": ["urn:x"], "count": [5], "valueSet": [{"resourceType": "ValueSet", "status": "active"}]}
    request = parse_expand(inputs)
    assert request.url == "urn:x" and request.count == 5 and request.value_set["resourceType"] == "ValueSet"


@pytest.mark.parametrize("body", [
    {"resourceType": "Patient"},
    {"resourceType": "Parameters", "parameter": [{"valueString": "x"}]},
    {"resourceType": "Parameters", "parameter": [{"name": "url"}]},
    {"resourceType": "Parameters", "parameter": [{"name": "url", "valueUri": "a", "valueString": "b"}]},
])
def test_malformed_bodies(body):
    with pytest.raises(BadRequest):
        operation_inputs([], body)


@pytest.mark.parametrize("query,message", [
    ([("count", "-1")], "non-negative integer"),
    ([("offset", "x")], "non-negative integer"),
    ([("activeOnly", "yes")], "true or false"),
    ([("url", "a"), ("url", "b")], "only once"),
    ([("context", "Patient.gender")], "context"),
])
def test_bad_expand_inputs(query, message):
    with pytest.raises(BadRequest, match=message):
        parse_expand(operation_inputs(query, None))


def test_expand_defaults_and_flags():
    request = parse_expand(operation_inputs([("includeDesignations", "true"), ("designation", "en"),
                                             ("displayLanguage", "en"), ("filter", "bup")], None))
    assert request.include_designations and request.designations == ("en",)
    assert request.offset == 0 and request.count is None and request.filter == "bup"


def test_lookup_from_system_and_code_or_coding():
    assert parse_lookup({"system": ["urn:s"], "code": ["a"], "property": ["x", "y"]}).properties == ("x", "y")
    request = parse_lookup({"coding": [{"system": "urn:s", "code": "a", "version": "1"}]})
    assert (request.system, request.code, request.version) == ("urn:s", "a", "1")
    for bad in ({"code": ["a"]}, {"system": ["urn:s"]}, {"coding": [{"system": "urn:s"}]},
                {"coding": [{"system": "urn:s", "code": "a"}], "code": ["a"]}):
        with pytest.raises(BadRequest):
            parse_lookup(bad)


def test_validate_code_needs_exactly_one_kind_of_code():
    request = parse_validate_code({"url": ["urn:vs"], "system": ["urn:s"], "code": ["a"], "display": ["A"]})
    assert request.codings == (("urn:s", "a", None, "A"),)
    concept = {"coding": [{"system": "urn:s", "code": "a"}, {"system": "urn:t", "code": "b", "display": "B"}]}
    assert parse_validate_code({"codeableConcept": [concept]}).codings == (("urn:s", "a", None, None), ("urn:t", "b", None, "B"))
    for bad in ({}, {"code": ["a"]}, {"display": ["A"], "coding": [{"system": "s", "code": "a"}]},
                {"code": ["a"], "system": ["s"], "coding": [{"system": "s", "code": "a"}]},
                {"codeableConcept": [{"text": "no codings"}]}, {"system": ["s"], "code": ["a"], "abstract": ["maybe"]}):
        with pytest.raises(BadRequest):
            parse_validate_code(bad)
    # on a CodeSystem the system is the CodeSystem itself
    assert parse_validate_code({"code": ["a"], "version": ["2"]}, code_system=True).codings == ((None, "a", "2", None),)
