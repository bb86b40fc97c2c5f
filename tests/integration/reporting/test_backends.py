"""The same reports from MongoDB: the data set of conftest.py copied into a mongomock
replica set (``engine.copy``), every measure and the SKR report evaluated on both stores."""

from __future__ import annotations

import pytest

from fhir_server.app import build_runtime
from fhir_server.engine import RequestContext
from fhir_server.engine.copy import copy_store
from fhir_server.reporting import MEASURES, evaluate_measure, skr_csv, skr_wait_times
from fhir_server.settings import Settings
from tests.integration.reporting.conftest import KEY
from tests.support.evi import TEST_REGION

PERIODS = [("2026-09-01", "2026-09-30"), ("2026-01-01", "2026-01-31"), ("2026-08-15", "2026-10-15")]


def _without_date(report: dict) -> dict:
    return {k: v for k, v in report.items() if k != "date"}


def test_mongodb_answers_as_sqlite(reporting_server):
    pytest.importorskip("mongomock")
    from fhir_server.storage.mongo import MongoStore
    from tests.support.mongo_replica_set import ReplicaSet

    settings = Settings(storage=reporting_server.settings.storage, region_file=str(TEST_REGION), pseudonym_key=KEY)
    sqlite = build_runtime(settings)
    mongo = None
    try:
        with sqlite.store.unit_of_work(write=False) as uow:
            registry = sqlite.sync_registry(uow)
        store = MongoStore(ReplicaSet(), "evi")
        copy_store(sqlite.store, store, registry, settings.public_base)
        mongo = build_runtime(settings, store=store)
        ctx = RequestContext(base_url=settings.public_base)
        for measure in MEASURES:
            for start, end in PERIODS:
                for kind in ("summary", "subject-list"):
                    answers = [_without_date(evaluate_measure(rt, ctx, measure, period_start=start, period_end=end,
                                                              report_type=kind, key=KEY)) for rt in (sqlite, mongo)]
                    assert answers[0] == answers[1], (measure, start, kind)
        for month in ("2026-09", "2026-10"):
            csvs = [skr_csv(skr_wait_times(rt, ctx, month, key=KEY, detail=True)) for rt in (sqlite, mongo)]
            assert csvs[0] == csvs[1]
            assert csvs[0].count("\n") > 3
    finally:
        sqlite.store.close()
        if mongo is not None:
            mongo.store.close()
