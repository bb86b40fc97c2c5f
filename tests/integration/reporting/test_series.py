"""``measure_series`` (reporting/series.py): a row of periods in one pass per measure gives
each period the numbers ``evaluate_measure`` gives it, on the hand-built data set of
conftest.py, on SQLite and (behaviour only) on mongomock."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from fhir_server.app import build_runtime
from fhir_server.engine import RequestContext
from fhir_server.errors import BadRequest, Forbidden, NotFound
from fhir_server.reporting import evaluate_measure, measure_series
from fhir_server.reporting.series import MAX_PERIODS, SERIES
from fhir_server.settings import Settings
from tests.integration.reporting.conftest import KEY
from tests.support.evi import TEST_REGION

#: Monday 2026-08-03 to Sunday 2026-10-25, week by week, after the whole range and two
#: months (periods may overlap)
WEEKS = [(date(2026, 8, 3) + timedelta(weeks=n), date(2026, 8, 9) + timedelta(weeks=n)) for n in range(12)]
PERIODS = [(date(2026, 8, 3), date(2026, 10, 25)), (date(2026, 9, 1), date(2026, 9, 30)),
           (date(2026, 10, 1), date(2026, 10, 31)), *WEEKS]


@pytest.fixture(scope="module")
def runtimes(reporting_server):
    settings = Settings(storage=reporting_server.settings.storage, region_file=str(TEST_REGION), pseudonym_key=KEY)
    sqlite = build_runtime(settings)
    yield settings, sqlite
    sqlite.store.close()


def _summary(report: dict, measure: str) -> dict:
    group = report["group"][0]
    out = {"period": report["period"], "population": group["population"], "score": group.get("measureScore")}
    if measure == "evi-contacts":
        out["channel"] = [s for s in group["stratifier"] if s["code"][0]["text"] == "channel"]
    return out


def _per_period(runtime, measure: str) -> list[dict]:
    ctx = RequestContext(base_url="http://test/fhir")
    return [_summary(evaluate_measure(runtime, ctx, measure, period_start=s.isoformat(), period_end=e.isoformat(),
                                      key=KEY), measure) for s, e in PERIODS]


@pytest.mark.parametrize("measure", sorted(SERIES))
def test_each_period_has_the_numbers_of_its_own_evaluation(runtimes, measure):
    _, runtime = runtimes
    ctx = RequestContext(base_url="http://test/fhir")
    got = [_summary(r, measure) for r in measure_series(runtime, ctx, measure, PERIODS, key=KEY)]
    assert got == _per_period(runtime, measure)


def test_contacts_per_week_by_hand(runtimes):
    _, runtime = runtimes
    reports = measure_series(runtime, RequestContext(base_url="http://test/fhir"), "evi-contacts", PERIODS, key=KEY)
    counts = [r["group"][0]["population"][0]["count"] for r in reports]
    # whole range: sA-sF, sH (sI is 08-01, sG yesterday); September: sA-sD; October: sE, sH
    assert counts[:3] == [7, 4, 2]
    week = {s: n for (s, _), n in zip(PERIODS[3:], counts[3:])}
    # sF 08-31 (a Monday) and sA 09-05 share a week; sB 09-10; sD 09-20 (a Sunday); sC
    # (09-30 23:30), sE (10-01 00:30 in Stockholm, 09-30 in UTC) and sH 10-02 share one
    assert week[date(2026, 8, 31)] == 2 and week[date(2026, 9, 7)] == 1 and week[date(2026, 9, 14)] == 1
    assert week[date(2026, 9, 28)] == 3
    assert sum(week.values()) == 7


def test_mongodb_series_as_sqlite(runtimes):
    pytest.importorskip("mongomock")
    from fhir_server.engine.copy import copy_store
    from fhir_server.storage.mongo import MongoStore
    from tests.support.mongo_replica_set import ReplicaSet

    settings, sqlite = runtimes
    with sqlite.store.unit_of_work(write=False) as uow:
        registry = sqlite.sync_registry(uow)
    store = MongoStore(ReplicaSet(), "evi")
    copy_store(sqlite.store, store, registry, settings.public_base)
    mongo = build_runtime(settings, store=store)
    try:
        ctx = RequestContext(base_url="http://test/fhir")
        for measure in SERIES:
            got = [_summary(r, measure) for r in measure_series(mongo, ctx, measure, PERIODS, key=KEY)]
            assert got == _per_period(sqlite, measure), measure
    finally:
        mongo.store.close()


def test_refusals(runtimes):
    _, runtime = runtimes
    ctx = RequestContext(base_url="http://test/fhir")
    with pytest.raises(NotFound):
        measure_series(runtime, ctx, "evi-sip-initiated", WEEKS, key=KEY)
    with pytest.raises(BadRequest):
        measure_series(runtime, ctx, "evi-contacts", [], key=KEY)
    with pytest.raises(BadRequest):
        measure_series(runtime, ctx, "evi-contacts", WEEKS * (MAX_PERIODS // len(WEEKS) + 1), key=KEY)
    with pytest.raises(BadRequest):  # a period ending before it starts
        measure_series(runtime, ctx, "evi-contacts", [(date(2026, 9, 30), date(2026, 9, 1))], key=KEY)
    with pytest.raises(Forbidden):  # no pseudonym key: no reports (domain.md §8)
        measure_series(runtime, ctx, "evi-contacts", WEEKS, key=None)
