"""What only the SQLite store does: merged range subqueries, the query time limit."""

import pytest

from fhir_server.errors import TooCostly
from fhir_server.search import SearchRegistry, parse_search
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
