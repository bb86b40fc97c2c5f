import pytest

from fhir_server.errors import InvalidSearch
from fhir_server.search import SearchLimits, SearchRegistry, parse_search, split_or


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


# ------------------------------------------------------------------ limits

LIMITS = SearchLimits(max_or_values=3, max_parameters=4, max_offset=100)


@pytest.mark.parametrize(
    "params",
    [
        [("identifier", "a,b,c,d")],
        [("_sort", "_id,_lastUpdated,identifier,-_id")],
        [("_elements", "id,meta,identifier,name")],
        [("identifier:missing", "true")] * 5,
        [("_offset", "101")],
        [("_offset", "9223372036854775808")],
    ],
)
def test_limits_are_400(registry, params):
    with pytest.raises(InvalidSearch) as info:
        parse_search("Patient", params, registry, limits=LIMITS)
    assert info.value.status == 400


def test_everything_up_to_the_limits_parses(registry):
    plan = parse_search(
        "Patient",
        [("identifier", "a,b,c"), ("_sort", "_id,-_lastUpdated,identifier"), ("_elements", "id,meta,name"),
         ("_offset", "100")],
        registry, limits=LIMITS,
    )
    assert len(plan.clauses[0].values) == 3 and len(plan.sort) == 3 and plan.offset == 100


def test_or_values_are_limited_inside_chains_and_has():
    full = SearchRegistry.from_spec()
    ok = parse_search("Observation", [("subject:Patient.identifier", "a,b,c")], full, limits=LIMITS)
    assert ok.clauses and not ok.unknown
    with pytest.raises(InvalidSearch):
        parse_search("Observation", [("subject:Patient.identifier", "a,b,c,d")], full, limits=LIMITS)
    with pytest.raises(InvalidSearch):
        parse_search("Patient", [("_has:Observation:subject:code", "a,b,c,d")], full, limits=LIMITS)


def test_type_values_are_limited(registry):
    with pytest.raises(InvalidSearch):
        parse_search(None, [("_type", "Patient,Observation,Task,Group")], registry, limits=LIMITS)
    assert parse_search(None, [("_type", "Patient,Observation,Task")], registry, limits=LIMITS).types


def test_default_limits():
    assert SearchLimits() == SearchLimits(max_or_values=100, max_parameters=30, max_offset=1_000_000)


@pytest.mark.parametrize("raw", ["１２", "1_000", " 12", "+-1", "9" * 31, "0x10"])
def test_count_and_offset_are_ascii_integers(registry, raw):
    with pytest.raises(InvalidSearch):
        parse_search("Patient", [("_count", raw)], registry)
    with pytest.raises(InvalidSearch):
        parse_search("Patient", [("_offset", raw)], registry)


@pytest.mark.parametrize(
    "name", ["_id:text", "_id:of-type", "_id:in", "_id:not-in", "_id:exact", "_lastUpdated:not", "_id:Patient"]
)
def test_column_parameters_take_only_the_modifiers_the_stores_compile(registry, name):
    with pytest.raises(InvalidSearch, match="not supported"):
        parse_search("Patient", [(name, "x")], registry)


def test_column_parameters_keep_their_modifiers(registry):
    assert parse_search("Patient", [("_id:not", "x")], registry).clauses[0].modifier == "not"
    assert parse_search("Patient", [("_lastUpdated:missing", "false")], registry).clauses[0].modifier == "missing"


def test_chains_count_once_per_target_type_against_the_term_budget():
    full = SearchRegistry.from_spec()
    assert LIMITS.max_terms == 12
    assert parse_search("Patient", [("identifier", "a,b,c")] * 4, full, limits=LIMITS).clauses
    typed = parse_search("Task", [("subject:Patient.name", "a,b,c")], full, limits=LIMITS)
    assert len(typed.clauses[0].chain.by_type) == 1
    with pytest.raises(InvalidSearch, match="name the chain's type"):
        parse_search("Task", [("subject.name", "a")], full, limits=LIMITS)  # Patient, Group, Device, ...
