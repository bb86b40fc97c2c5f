"""What only the SQLite store does: merged range subqueries, the query time limit."""

import itertools

import pytest

from fhir_server.errors import InvalidSearch, TooCostly
from fhir_server.search import SearchLimits, SearchRegistry, parse_search
from fhir_server.search.plan import MAX_CHAIN_DEPTH
from fhir_server.storage.sqlite import SqliteStore
from fhir_server.storage.sqlite.compile import compile_where


@pytest.fixture(scope="module")
def registry():
    return SearchRegistry.from_spec()


def test_and_ed_ranges_on_a_single_valued_parameter_share_one_subquery(registry):
    single = parse_search("ServiceRequest", [("authored", "ge2026-01-01"), ("authored", "lt2026-01-08")], registry)
    where, args = compile_where(single)
    assert where.count("idx_date") == 1 and len(args) == where.count("?")
    # CarePlan.activity.detail.scheduled repeats: each clause may match a different value
    repeating = parse_search("CarePlan", [("activity-date", "ge2026-01-01"), ("activity-date", "lt2026-01-08")], registry)
    where, args = compile_where(repeating)
    assert where.count("idx_date") == 2 and len(args) == where.count("?")


def test_a_read_past_the_time_limit_is_stopped_with_too_costly():
    store = SqliteStore(":memory:", query_timeout=0.05)
    with pytest.raises(TooCostly):
        with store.unit_of_work(write=False) as uow:
            # an endless recursive query: only the progress handler ends it
            uow._conn.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c").fetchone()
    with store.unit_of_work(write=False) as uow:  # the store stays usable
        assert uow.newest_instant() is None
    store.close()


_LINKS = ("_has:Task:focus:", "subject:Patient.", "subject.", "part-of:Task.", "_has:Observation:subject:")


def _runs(store, plan) -> None:
    with store.unit_of_work(write=False) as uow:
        assert uow.search(plan, with_total=True).total == 0


@pytest.mark.parametrize("resource_type", ["Patient", "Task", "Observation"])
def test_the_deepest_chains_the_planner_allows_run(registry, resource_type):
    """MAX_CHAIN_DEPTH keeps SQLite inside its parser stack: every combination of
    chain and _has links at the deepest allowed depth compiles and runs."""
    store, ran = SqliteStore(":memory:"), 0
    for combo in itertools.product(_LINKS, repeat=MAX_CHAIN_DEPTH + 1):
        try:
            plan = parse_search(resource_type, [("".join(combo) + "status", "a,b"), ("_id", "a")], registry)
        except InvalidSearch:
            continue  # e.g. no status on the last type
        _runs(store, plan)
        ran += 1
    with pytest.raises(InvalidSearch, match="deeper"):
        parse_search(resource_type, [(_LINKS[0] * (MAX_CHAIN_DEPTH + 2) + "status", "a")], registry)
    store.close()
    assert ran >= 10


def test_the_widest_searches_the_planner_allows_run(registry):
    """The OR-value, parameter and term limits keep SQLite inside its expression depth
    and variable count."""
    limits, store = SearchLimits(), SqliteStore(":memory:")
    values = ",".join(f"s|{i}" for i in range(limits.max_or_values))
    _runs(store, parse_search("Patient", [("identifier", values)] * limits.max_parameters, registry, limits=limits))
    fan_out = parse_search("Task", [("subject.status", "x")], registry).clauses[0]
    branches = len(fan_out.chain.by_type)  # every type with a status: ~90
    most = limits.max_terms // branches
    _runs(store, parse_search("Task", [("subject.status", ",".join(f"v{i}" for i in range(most)))], registry))
    with pytest.raises(InvalidSearch, match="at most"):
        parse_search("Task", [("subject.status", ",".join(f"v{i}" for i in range(most + 1)))], registry)
    store.close()
