"""Search limits (search/limits.py), as parse_search applies them."""

import pytest

from fhir_server.errors import InvalidSearch
from fhir_server.search import SearchLimits, SearchRegistry, parse_search
from fhir_server.search.limits import integer, split_values


@pytest.fixture(scope="module")
def registry():
    return SearchRegistry.from_spec(frozenset({"identifier"}))


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


def test_chains_count_once_per_target_type_against_the_term_budget():
    full = SearchRegistry.from_spec()
    assert LIMITS.max_terms == 12
    assert parse_search("Patient", [("identifier", "a,b,c")] * 4, full, limits=LIMITS).clauses
    typed = parse_search("Task", [("subject:Patient.name", "a,b,c")], full, limits=LIMITS)
    assert len(typed.clauses[0].chain.by_type) == 1
    with pytest.raises(InvalidSearch, match="name the chain's type"):
        parse_search("Task", [("subject.name", "a")], full, limits=LIMITS)  # Patient, Group, Device, ...


def test_split_values_keeps_escaped_commas():
    assert split_values("x", r"a,b\,c", SearchLimits(max_or_values=2)) == ["a", r"b\,c"]


def test_integer_bounds():
    assert integer("n", "-5", -10) == -5
    with pytest.raises(InvalidSearch, match="at most 3"):
        integer("n", "4", 0, 3)
