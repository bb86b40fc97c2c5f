"""Query parsing beyond plain parameters: chains, _has, _include/_revinclude, _sort and
the result parameters (R4 search.html)."""

import pytest

from fhir_server.errors import InvalidSearch
from fhir_server.search import SearchRegistry, parse_search
from fhir_server.search.params.composite import CompositeValue
from fhir_server.search.params.date import DateValue
from fhir_server.search.params.reference import ReferenceValue
from fhir_server.search.params.string import StringValue
from fhir_server.search.plan import MAX_CHAIN_DEPTH, Clause, HasClause, Include

BASE = "http://evi.example/fhir"


@pytest.fixture(scope="module")
def registry():
    return SearchRegistry.from_spec()


def _one(registry, rtype, name, raw, **kw):
    plan = parse_search(rtype, [(name, raw)], registry, **kw)
    assert not plan.unknown, plan.unknown
    [clause] = plan.clauses
    return clause


# -- chains ---------------------------------------------------------------------------------


def test_typed_chain(registry):
    clause = _one(registry, "Observation", "subject:Patient.name", "peter")
    assert clause.param.code == "subject" and clause.modifier is None and clause.values == ()
    [(target, inner)] = clause.chain.by_type
    assert target == "Patient"
    assert isinstance(inner, Clause) and inner.param.code == "name"
    assert inner.values == (StringValue("peter", "peter"),)


def test_untyped_chain_keeps_the_targets_that_have_the_parameter(registry):
    clause = _one(registry, "Observation", "subject.name", "peter")
    types = clause.chain.target_types
    assert "Patient" in types and "Location" in types
    assert "Device" not in types and "Group" not in types  # neither has a 'name' parameter
    assert all(inner.param.code == "name" for _, inner in clause.chain.by_type)


def test_chain_values_are_parsed_by_the_last_parameter(registry):
    clause = _one(registry, "Observation", "subject:Patient.birthdate", "gt2010,lt2000")
    [(_, inner)] = clause.chain.by_type
    assert [v.prefix for v in inner.values] == ["gt", "lt"] and all(isinstance(v, DateValue) for v in inner.values)


def test_modifier_on_the_last_link(registry):
    clause = _one(registry, "Observation", "subject:Patient.name:exact", "Åsa")
    [(_, inner)] = clause.chain.by_type
    assert inner.modifier == "exact" and inner.values == (StringValue("asa", "Åsa"),)


def test_two_level_chain(registry):
    clause = _one(registry, "Observation", "subject:Patient.organization.name", "bup")
    [(_, middle)] = clause.chain.by_type
    assert middle.param.code == "organization"
    [(target, last)] = middle.chain.by_type
    assert target == "Organization" and last.param.code == "name"


def test_chain_ending_in_a_reference_is_localised(registry):
    clause = _one(registry, "Observation", "subject:Patient.organization", f"{BASE}/Organization/o1", base_url=BASE)
    [(_, inner)] = clause.chain.by_type
    assert inner.values == (ReferenceValue("Organization", "o1", None, None),)


def test_chain_into_has(registry):
    clause = _one(registry, "Observation", "subject:Patient._has:Condition:subject:code", "f43")
    [(_, inner)] = clause.chain.by_type
    assert isinstance(inner, HasClause) and inner.source_type == "Condition"


@pytest.mark.parametrize(
    "name",
    [
        "code.name",  # a token parameter cannot be chained
        "status:Patient.name",
        "subject:Nonsense.name",  # the chaining modifier must be a resource type
        "subject:exact.name",
    ],
)
def test_invalid_chains_are_refused(registry, name):
    with pytest.raises(InvalidSearch):
        parse_search("Observation", [(name, "x")], registry)


def test_unknown_parameter_at_the_end_of_a_chain_is_reported(registry):
    plan = parse_search("Observation", [("subject:Patient.nonsense", "x"), ("status", "final")], registry)
    assert [c.param.code for c in plan.clauses] == ["status"]
    assert [name for name, _ in plan.unknown] == ["subject:Patient.nonsense"]
    assert "nonsense" in plan.unknown[0][1]


def test_unknown_parameter_inside_a_long_chain_is_reported(registry):
    plan = parse_search("Observation", [("subject:Patient.organization.nonsense", "x")], registry)
    assert plan.clauses == () and [name for name, _ in plan.unknown] == ["subject:Patient.organization.nonsense"]


def test_chains_have_a_depth_limit(registry):
    link = "part-of:Task."
    deep = link * (MAX_CHAIN_DEPTH + 1) + "status"
    with pytest.raises(InvalidSearch):
        parse_search("Task", [(deep, "completed")], registry)
    ok = link * MAX_CHAIN_DEPTH + "status"
    assert len(parse_search("Task", [(ok, "completed")], registry).clauses) == 1


# -- _has -----------------------------------------------------------------------------------


def test_has(registry):
    clause = _one(registry, "Patient", "_has:Observation:patient:code", "1234-5")
    assert isinstance(clause, HasClause)
    assert clause.source_type == "Observation" and clause.reference.code == "patient"
    assert clause.inner.param.code == "code" and clause.inner.values[0].code == "1234-5"


def test_nested_has(registry):
    clause = _one(registry, "Patient", "_has:ServiceRequest:subject:_has:Task:focus:status", "completed")
    assert clause.source_type == "ServiceRequest" and clause.reference.code == "subject"
    inner = clause.inner
    assert isinstance(inner, HasClause) and inner.source_type == "Task" and inner.reference.code == "focus"
    assert inner.inner.param.code == "status"


def test_has_with_a_chain_and_modifier_inside(registry):
    clause = _one(registry, "Organization", "_has:ServiceRequest:requester:subject:Patient.family:exact", "Öberg")
    [(target, last)] = clause.inner.chain.by_type
    assert target == "Patient" and last.modifier == "exact"


@pytest.mark.parametrize(
    "name",
    [
        "_has:Observation:patient",  # no inner parameter
        "_has:Observation",
        "_has::patient:code",
        "_has:Observation::code",
        "_has:Observation:patient:",
        "_has:Nonsense:patient:code",  # not a resource type
        "_has:Observation:code:code",  # not a reference parameter
    ],
)
def test_malformed_has_is_refused(registry, name):
    with pytest.raises(InvalidSearch):
        parse_search("Patient", [(name, "x")], registry)


@pytest.mark.parametrize("name", ["_has:Observation:nonsense:code", "_has:Observation:patient:nonsense"])
def test_has_with_unknown_parameters_is_reported(registry, name):
    plan = parse_search("Patient", [(name, "x")], registry)
    assert plan.clauses == () and [n for n, _ in plan.unknown] == [name]


# -- _include / _revinclude -----------------------------------------------------------------


def _includes(registry, rtype, *params):
    return parse_search(rtype, list(params), registry).includes


def test_include_forms(registry):
    a, b, c, d, e = _includes(
        registry, "Observation",
        ("_include", "Observation:subject"),
        ("_include", "Observation:subject:Patient"),
        ("_include", "*"),
        ("_include:iterate", "Patient:organization"),
        ("_include", "Observation:*"),
    )
    assert (a.source_type, a.param.code, a.target_type, a.iterate, a.reverse) == ("Observation", "subject", None, False, False)
    assert (b.param.code, b.target_type) == ("subject", "Patient")
    assert c == Include("Observation", None, None, False, False)
    assert (d.source_type, d.param.code, d.iterate) == ("Patient", "organization", True)
    assert (e.source_type, e.param, e.target_type) == ("Observation", None, None)


def test_revinclude_forms(registry):
    a, b, c = _includes(
        registry, "Patient",
        ("_revinclude", "Observation:subject"),
        ("_revinclude:iterate", "Task:focus:ServiceRequest"),
        ("_revinclude", "*"),
    )
    assert (a.source_type, a.param.code, a.reverse, a.iterate) == ("Observation", "subject", True, False)
    assert (b.source_type, b.param.code, b.target_type, b.reverse, b.iterate) == ("Task", "focus", "ServiceRequest", True, True)
    assert c == Include("Patient", None, None, False, True)


def test_recurse_is_iterate(registry):
    [inc] = _includes(registry, "Patient", ("_include:recurse", "Patient:link"))
    assert inc.iterate


@pytest.mark.parametrize(
    "rtype, name, raw",
    [
        ("Observation", "_include", "Observation"),  # no parameter
        ("Observation", "_include", "Observation:subject:Patient:x"),
        ("Observation", "_include", "Nonsense:subject"),
        ("Observation", "_include", "Observation:code"),  # not a reference parameter
        ("Observation", "_include", "Observation:subject:Nonsense"),
        ("Observation", "_include:deep", "Observation:subject"),
        (None, "_include", "*"),  # a system search has no type for *
        ("Patient", "_revinclude", "Observation"),
    ],
)
def test_bad_includes_are_refused(registry, rtype, name, raw):
    with pytest.raises(InvalidSearch):
        parse_search(rtype, [(name, raw)], registry)


def test_include_of_an_unknown_parameter_is_reported(registry):
    plan = parse_search("Observation", [("_include", "Observation:nonsense")], registry)
    assert plan.includes == () and plan.unknown[0][0] == "_include=Observation:nonsense"


# -- _sort ----------------------------------------------------------------------------------


def test_sort_keys_in_order_with_directions(registry):
    plan = parse_search("Observation", [("_sort", "-date,status"), ("_sort", "_id")], registry)
    assert [(k.param.code, k.descending) for k in plan.sort] == [("date", True), ("status", False), ("_id", False)]


def test_unknown_sort_keys_are_reported_and_the_rest_kept(registry):
    plan = parse_search("Observation", [("_sort", "nonsense,-date,-code-value-quantity")], registry)
    assert [(k.param.code, k.descending) for k in plan.sort] == [("date", True)]
    assert [name for name, _ in plan.unknown] == ["_sort=nonsense", "_sort=-code-value-quantity"]


# -- result parameters ----------------------------------------------------------------------


@pytest.mark.parametrize("raw, expected", [("true", "true"), ("text", "text"), ("data", "data"), ("count", "count"), ("false", None)])
def test_summary(registry, raw, expected):
    plan = parse_search("Patient", [("_summary", raw)], registry)
    assert plan.summary == expected and plan.summary_count is (raw == "count")


@pytest.mark.parametrize("name, raw", [("_summary", "yes"), ("_summary", ""), ("_total", "all"), ("_total", ""), ("_contained", "maybe"), ("_count", "ten"), ("_offset", "-1")])
def test_bad_result_parameters_are_refused(registry, name, raw):
    with pytest.raises(InvalidSearch):
        parse_search("Patient", [(name, raw)], registry)


@pytest.mark.parametrize("raw", ["none", "estimate", "accurate"])
def test_total(registry, raw):
    assert parse_search("Patient", [("_total", raw)], registry).total == raw


def test_elements(registry):
    plan = parse_search("Patient", [("_elements", "id, name,,birthDate ")], registry)
    assert plan.elements == ("id", "name", "birthDate")


def test_contained(registry):
    assert parse_search("Patient", [], registry).contained == "false"
    assert parse_search("Patient", [("_contained", "false")], registry).unknown == ()
    for raw in ("true", "both"):
        plan = parse_search("Patient", [("_contained", raw)], registry)
        assert plan.contained == raw and plan.unknown[0][0] == "_contained"


def test_count_zero_and_offset(registry):
    plan = parse_search("Patient", [("_count", "0"), ("_offset", "40")], registry)
    assert (plan.count, plan.offset) == (0, 40)


def test_ignored_and_refused_parameters(registry):
    plan = parse_search("Patient", [("_format", "json"), ("_pretty", "true"), ("_text", "x"), ("_filter", "name eq x")], registry)
    assert plan.clauses == ()
    assert [name for name, _ in plan.unknown] == ["_text", "_filter"]


def test_system_search_types(registry):
    plan = parse_search(None, [("_type", "Patient,Organization"), ("_id", "a")], registry)
    assert plan.types == ("Patient", "Organization") and plan.clauses[0].param.code == "_id"
    with pytest.raises(InvalidSearch):
        parse_search(None, [("_type", "Patient,Nonsense")], registry)


# -- composite values -----------------------------------------------------------------------


def test_composite_values_with_dollar(registry):
    clause = _one(registry, "Observation", "component-code-value-quantity", "http://loinc.org|8480-6$lt60,8462-4$gt90")
    assert all(isinstance(v, CompositeValue) for v in clause.values)
    assert [(v.parts[0].code, v.parts[1].number.prefix) for v in clause.values] == [("8480-6", "lt"), ("8462-4", "gt")]


def test_composite_value_with_the_wrong_number_of_parts_is_refused(registry):
    with pytest.raises(InvalidSearch):
        parse_search("Observation", [("component-code-value-quantity", "8480-6")], registry)
