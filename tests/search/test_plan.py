import pytest

from fhir_server.errors import InvalidSearch
from fhir_server.search import SearchRegistry, parse_search, split_or


@pytest.fixture(scope="module")
def registry():
    return SearchRegistry.from_spec(frozenset({"identifier"}))


def test_repeated_parameters_and_commas_or(registry):
    plan = parse_search("Patient", [("identifier", "a|1,b|2"), ("identifier", "c|3")], registry)
    assert len(plan.clauses) == 2
    assert [v.code for v in plan.clauses[0].values] == ["1", "2"]
    assert plan.clauses[1].values[0].system == "c"


def test_unknown_and_unsupported_parameters_are_collected_not_dropped(registry):
    plan = parse_search("Patient", [("nonsense", "1"), ("name", "x"), ("identifier", "1")], registry)
    assert [c.param.code for c in plan.clauses] == ["identifier"]
    assert [name for name, _ in plan.unknown] == ["nonsense", "name"]
    assert "not supported" in plan.unknown[1][1]


def test_result_parameters(registry):
    plan = parse_search(
        "Patient", [("_count", "5"), ("_offset", "10"), ("_sort", "-_lastUpdated,_id"), ("_total", "none")], registry
    )
    assert (plan.count, plan.offset, plan.total) == (5, 10, "none")
    assert [(k.param.code, k.descending) for k in plan.sort] == [("_lastUpdated", True), ("_id", False)]


def test_count_is_capped(registry):
    assert parse_search("Patient", [("_count", "100000")], registry, max_count=50).count == 50


@pytest.mark.parametrize(
    "params",
    [[("_count", "x")], [("_count", "-1")], [("_total", "all")], [("identifier:exact", "1")], [("_id:missing", "maybe")], [("_lastUpdated", "gtsoon")]],
)
def test_bad_parameters_are_refused(registry, params):
    with pytest.raises(InvalidSearch):
        parse_search("Patient", params, registry)


def test_missing_modifier(registry):
    plan = parse_search("Patient", [("identifier:missing", "true")], registry)
    assert plan.clauses[0].modifier == "missing" and plan.clauses[0].values == (True,)


def test_split_or_respects_escapes():
    assert split_or(r"a,b\,c,d") == ["a", r"b\,c", "d"]


@pytest.mark.parametrize(
    "name", ["_id:text", "_id:of-type", "_id:in", "_id:not-in", "_id:exact", "_lastUpdated:not", "_id:Patient"]
)
def test_column_parameters_take_only_the_modifiers_the_stores_compile(registry, name):
    with pytest.raises(InvalidSearch, match="not supported"):
        parse_search("Patient", [(name, "x")], registry)


def test_column_parameters_keep_their_modifiers(registry):
    assert parse_search("Patient", [("_id:not", "x")], registry).clauses[0].modifier == "not"
    assert parse_search("Patient", [("_lastUpdated:missing", "false")], registry).clauses[0].modifier == "missing"
