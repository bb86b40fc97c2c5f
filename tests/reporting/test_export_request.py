"""Kick-off parameters as the Bulk Data IG 2.0 defines them, parsed into ExportRequest."""

import pytest

from fhir_server.errors import BadRequest
from fhir_server.reporting import ExportRequest, TypeFilter, parameters_to_pairs, parse_export_request


@pytest.mark.parametrize("fmt", ["application/fhir+ndjson", "application/ndjson", "ndjson"])
def test_the_output_formats_the_ig_requires_are_accepted(fmt):
    assert parse_export_request("system", [("_outputFormat", fmt)]).level == "system"


@pytest.mark.parametrize("fmt", ["application/fhir+json", "text/csv", ""])
def test_other_output_formats_are_refused(fmt):
    with pytest.raises(BadRequest, match="_outputFormat"):
        parse_export_request("system", [("_outputFormat", fmt)])


def test_types_repeated_or_comma_separated_are_one_list_without_repeats():
    request = parse_export_request("system", [("_type", "Patient,Task"), ("_type", "Task"), ("_type", "Appointment")])
    assert request.types == ("Patient", "Task", "Appointment")


def test_an_unknown_type_is_refused_or_with_lenient_ignored():
    with pytest.raises(BadRequest, match="Pateint"):
        parse_export_request("system", [("_type", "Patient,Pateint")])
    lenient = parse_export_request("system", [("_type", "Patient,Pateint")], lenient=True)
    assert lenient.types == ("Patient",)
    assert lenient.ignored == (("_type", "_type names 'Pateint', which is not a resource type"),)


def test_type_filters_split_at_queries_not_at_or_values():
    # as the IG's example: each query URL-encoded by the client, the server has decoded it once
    value = ("MedicationRequest?status=active,completed,"
             "MedicationRequest?status=completed&date=gt2018-07-01T00%3A00%3A00Z,Condition?code=1%2C2")
    request = parse_export_request("system", [("_typeFilter", value), ("_typeFilter", "Task?owner=Organization/x")])
    assert request.type_filters == (
        TypeFilter("MedicationRequest", (("status", "active,completed"),)),
        TypeFilter("MedicationRequest", (("status", "completed"), ("date", "gt2018-07-01T00:00:00Z"))),
        TypeFilter("Condition", (("code", "1,2"),)),
        TypeFilter("Task", (("owner", "Organization/x"),)),
    )
    assert [f.params for f in request.filters_for("MedicationRequest")] == [(("status", "active,completed"),),
                                                                            (("status", "completed"), ("date", "gt2018-07-01T00:00:00Z"))]


@pytest.mark.parametrize("value, why", [
    ("status=active", "Type?parameters"),
    ("Nothing?status=active", "Type?parameters"),
    ("Task?", "no search parameters"),
])
def test_malformed_type_filters_are_refused(value, why):
    with pytest.raises(BadRequest, match=why.replace("?", r"\?")):
        parse_export_request("system", [("_typeFilter", value)])


@pytest.mark.parametrize("query", ["Task?status=ready&_include=Task:owner", "Task?_sort=date", "Task?_count=5"])
def test_search_result_parameters_in_a_type_filter_are_refused(query):
    with pytest.raises(BadRequest, match="search result parameters"):
        parse_export_request("system", [("_typeFilter", query)])
    assert parse_export_request("system", [("_typeFilter", query)], lenient=True).type_filters == ()


def test_a_type_filter_for_a_type_that_type_leaves_out_is_refused():
    with pytest.raises(BadRequest, match="Task"):
        parse_export_request("system", [("_type", "Patient"), ("_typeFilter", "Task?status=ready")])


@pytest.mark.parametrize("since", ["2024-01-31T00:00:00Z", "2024-01-31T10:15:00.123+01:00", "2024-01-31T10:15:00-05:00"])
def test_since_is_a_fhir_instant(since):
    assert parse_export_request("system", [("_since", since)]).since == since


@pytest.mark.parametrize("since", ["2024-01-31", "2024-01-31T00:00:00", "yesterday", "2024-02-30T00:00:00Z"])
def test_since_without_time_and_zone_or_impossible_is_refused(since):
    with pytest.raises(BadRequest, match="_since"):
        parse_export_request("system", [("_since", since)])


def test_pseudonymize_is_true_or_false():
    assert parse_export_request("system", [("_pseudonymize", "true")]).pseudonymize is True
    assert parse_export_request("system", [("_pseudonymize", "false")]).pseudonymize is False
    with pytest.raises(BadRequest, match="_pseudonymize"):
        parse_export_request("system", [("_pseudonymize", "yes")])


@pytest.mark.parametrize("name", ["_elements", "patient", "includeAssociatedData", "_count", "whatever"])
def test_unsupported_parameters_are_refused_unless_lenient(name):
    with pytest.raises(BadRequest, match="lenient"):
        parse_export_request("patient", [(name, "x")])
    assert parse_export_request("patient", [(name, "x")], lenient=True).ignored[0][0] == name


def test_format_and_pretty_change_nothing():
    assert parse_export_request("system", [("_format", "json"), ("_pretty", "true")]) == ExportRequest("system")


def test_a_request_survives_its_json_form():
    request = parse_export_request(
        "group", [("_type", "Patient,Task"), ("_since", "2024-01-01T00:00:00Z"), ("_typeFilter", "Task?status=ready"),
                  ("_elements", "id"), ("_pseudonymize", "true")],
        group_id="g1", url="http://x/fhir/Group/g1/$export", lenient=True)
    assert ExportRequest.from_json(request.to_json()) == request


def test_a_parameters_body_becomes_pairs():
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "_type", "valueString": "Patient"},
        {"name": "_since", "valueInstant": "2024-01-01T00:00:00Z"},
        {"name": "_pseudonymize", "valueBoolean": True},
        {"name": "patient", "valueReference": {"reference": "Patient/1"}},
    ]}
    assert parameters_to_pairs(body) == [("_type", "Patient"), ("_since", "2024-01-01T00:00:00Z"),
                                         ("_pseudonymize", "true"), ("patient", "")]
    with pytest.raises(BadRequest):
        parameters_to_pairs({"resourceType": "Patient"})
    with pytest.raises(BadRequest):
        parameters_to_pairs({"resourceType": "Parameters", "parameter": [{"valueString": "x"}]})
