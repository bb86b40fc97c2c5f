"""What only the SQLite store does: merged range subqueries, the query time limit."""

import itertools
import time

import pytest

from fhir_server.errors import InvalidSearch, TooCostly
from fhir_server.search import SearchLimits, SearchRegistry, parse_search
from fhir_server.search.plan import MAX_CHAIN_DEPTH
from fhir_server.storage.sqlite import SqliteStore
from fhir_server.storage.sqlite.compile import Sql, compile_where


@pytest.fixture(scope="module")
def registry():
    return SearchRegistry.from_spec()


def _compiled(plan):
    store = SqliteStore(":memory:")
    sql = Sql(store.pids, store.keys)
    where = compile_where(plan, sql)
    store.close()
    return where, sql.args


def test_and_ed_ranges_on_a_single_valued_parameter_share_one_subquery(registry):
    single = parse_search("ServiceRequest", [("authored", "ge2026-01-01"), ("authored", "lt2026-01-08")], registry)
    where, args = _compiled(single)
    assert where.count("idx_date") == 1 and len(args) == where.count("?")
    # CarePlan.activity.detail.scheduled repeats: each clause may match a different value
    repeating = parse_search("CarePlan", [("activity-date", "ge2026-01-01"), ("activity-date", "lt2026-01-08")], registry)
    where, args = _compiled(repeating)
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


def test_a_unit_of_work_past_its_deadline_is_stopped_with_too_costly():
    import time

    store = SqliteStore(":memory:")
    with pytest.raises(TooCostly):
        with store.unit_of_work(write=False, deadline=time.monotonic() + 0.05) as uow:
            uow._conn.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c").fetchone()
    store.close()


def test_readers_do_not_wait_for_an_open_write_transaction(tmp_path):
    """WAL readers on their own connections see the last commit while a writer works."""
    import threading

    from fhir_server.storage.base import ResourceVersion

    store = SqliteStore(str(tmp_path / "r.db"))
    with store.unit_of_work(write=True) as uow:
        uow.write(ResourceVersion("Patient", "a", 1, "2026-01-01T00:00:00.000000Z", False, "PUT", b"{}"), None)
    inside, release = threading.Event(), threading.Event()

    def writer():
        with store.unit_of_work(write=True) as uow:
            uow.write(ResourceVersion("Patient", "b", 1, "2026-01-01T00:00:01.000000Z", False, "PUT", b"{}"), None)
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    assert inside.wait(10)
    with store.unit_of_work(write=False, deadline=time.monotonic() + 1) as uow:
        assert uow.current("Patient", "a") is not None  # answered at once
        assert uow.current("Patient", "b") is None  # not yet committed
    release.set()
    thread.join()
    with store.unit_of_work(write=False) as uow:
        assert uow.current("Patient", "b") is not None
    store.close()


def test_a_writer_that_cannot_get_the_lock_within_its_deadline_is_too_costly(tmp_path):
    import sqlite3

    store = SqliteStore(str(tmp_path / "w.db"))
    other = sqlite3.connect(str(tmp_path / "w.db"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(TooCostly):
            with store.unit_of_work(write=True, deadline=time.monotonic() + 0.2) as uow:
                uow.newest_instant()
    finally:
        other.execute("ROLLBACK")
        other.close()
    with store.unit_of_work(write=True) as uow:  # the store stays usable
        uow.newest_instant()
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


def test_a_date_range_reads_its_open_ended_rows_by_equality(registry):
    """The open-ended branch of a date driver (rows whose period has no start) is read
    by ``low = OPEN_LOW``: SQLite 3.40 preferred the clause's ``low < t`` range and read
    every older row of the parameter (a week of referrals: 8 ms of 10 at 1,000,000)."""
    store = SqliteStore(":memory:")
    plan = parse_search("ServiceRequest", [("authored", "ge2025-03-03"), ("authored", "lt2025-03-10")], registry)
    statements: list[str] = []
    try:
        with store.unit_of_work(write=False) as uow:
            uow._conn.set_trace_callback(statements.append)
            uow.search(plan, with_total=True, limit=20)
            uow._conn.set_trace_callback(None)
            plans = [
                detail for text in statements if text.startswith("SELECT") and "idx_date" in text
                for *_, detail in uow._conn.execute("EXPLAIN QUERY PLAN " + text).fetchall()
            ]
    finally:
        store.close()
    reads = [p for p in plans if "idx_date_low" in p]
    assert reads, plans
    # every read of the low index is bounded from below (low>? or low=?), none from above alone
    assert all("low>?" in p or "low=?" in p for p in reads), reads
    assert any("low=?" in p for p in reads), reads


class _Counts:
    """A connection answering ``SELECT COUNT(*) FROM (<driver> LIMIT n)`` from a table of
    how many rows each driver lists (the driver text is its name)."""

    def __init__(self, rows: dict[str, int]):
        self.rows, self.asked = rows, []

    def execute(self, text, args):
        import re

        driver, cap = re.match(r"SELECT COUNT\(\*\) FROM \((\w+) LIMIT (\d+)\)", text).groups()
        self.asked.append((driver, int(cap)))
        return type("Cursor", (), {"fetchone": lambda _self: (min(self.rows[driver], int(cap)),)})()


def test_a_tabulation_is_driven_by_its_smallest_condition_even_past_the_search_cap():
    from fhir_server.storage.sqlite.compile import Part
    from fhir_server.storage.sqlite.tabulate import choose_driver

    code = Part("p1", [], "code", [], rank=1)  # all 200,000 intake Tasks, ranked first
    month = Part("p2", [], "month", [], rank=5)  # one month's 8,000
    conn = _Counts({"code": 200_000, "month": 8_000})
    assert choose_driver(conn, [code, month]) is month
    assert ("month", 40_000) in conn.asked  # both reached 5,000: counted on
    small = Part("p3", [], "small", [], rank=9)
    conn = _Counts({"code": 200_000, "month": 8_000, "small": 12})
    assert choose_driver(conn, [code, month, small]) is small and max(c for _, c in conn.asked) == 5_000
    probe_only = Part("p4", [])
    assert choose_driver(conn, [probe_only]) is None and choose_driver(conn, [probe_only, code]) is code
    combo = Part("1", [], "combo", [], 0, False, (1, [[1]], None))
    assert choose_driver(conn, [code, combo]) is combo
