"""Version races between server processes sharing one MongoDB database.

Two ``MongoStore`` instances on one client stand for two processes. The client is
mongomock dressed as a replica set (``tests/support/mongo_replica_set.py``), which
runs each operation under one lock, as a real server runs single-document
operations atomically, and takes back an aborted transaction's writes; it has no
isolation and no WriteConflict between transactions, so what is tested is the
store's own logic: the conditional replace and the unique history index.
"""

from __future__ import annotations

import json
import threading

import pytest

from fhir_server.search import IndexSet
from fhir_server.storage import HistoryQuery, ResourceVersion, VersionConflict
from fhir_server.storage.mongo import MongoStore
from tests.support.mongo_replica_set import ReplicaSet


def _v(i, vid, second, body: dict, method="PUT"):
    ts = f"2026-01-01T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}.000000Z"
    return ResourceVersion("Patient", i, vid, ts, False, method, json.dumps(body).encode())


@pytest.fixture
def two_processes():
    client = ReplicaSet()
    return MongoStore(client, "evi"), MongoStore(client, "evi")


def test_two_creates_of_one_id_one_wins(two_processes):
    a, b = two_processes
    with a.unit_of_work(write=True) as uow:
        uow.write(_v("x", 1, 1, {"by": "a"}, "POST"), IndexSet())
    with pytest.raises(VersionConflict):
        with b.unit_of_work(write=True) as uow:
            uow.write(_v("x", 1, 2, {"by": "b"}, "POST"), IndexSet())
    with b.unit_of_work(write=False) as uow:
        assert json.loads(uow.current("Patient", "x").body) == {"by": "a"}
        assert uow.history(HistoryQuery("Patient", "x")).total == 1


def test_the_second_writer_of_a_version_loses(two_processes):
    a, b = two_processes
    with a.unit_of_work(write=True) as uow:
        uow.write(_v("x", 1, 1, {"n": 1}, "POST"), IndexSet())
    lost = []
    try:
        with a.unit_of_work(write=True) as first:
            try:
                with b.unit_of_work(write=True) as second:
                    # both read version 1, both write version 2
                    assert first.current("Patient", "x").version_id == second.current("Patient", "x").version_id == 1
                    first.write(_v("x", 2, 2, {"by": "a"}), IndexSet())
                    second.write(_v("x", 2, 3, {"by": "b"}), IndexSet())
            except VersionConflict:
                lost.append("b")
    except VersionConflict:
        lost.append("a")
    assert len(lost) == 1  # at write here; on a real server possibly at commit (ConcurrentWrite); one always does
    with b.unit_of_work(write=False) as uow:
        page = uow.history(HistoryQuery("Patient", "x"))
        # exactly one version 2, consistent with the current document
        assert [v.version_id for v in page.versions] == [2, 1]
        assert uow.current("Patient", "x").body == page.versions[0].body


def test_an_older_version_never_replaces_a_newer_one(two_processes):
    a, b = two_processes
    with a.unit_of_work(write=True) as uow:
        uow.write(_v("x", 1, 1, {"n": 1}, "POST"), IndexSet())
    with a.unit_of_work(write=True) as uow:
        uow.write(_v("x", 2, 2, {"n": 2}), IndexSet())
    with pytest.raises(VersionConflict):
        with b.unit_of_work(write=True) as uow:
            uow.write(_v("x", 2, 3, {"n": "stale"}), IndexSet())
    with b.unit_of_work(write=False) as uow:
        assert json.loads(uow.current("Patient", "x").body) == {"n": 2}


def test_many_threads_on_two_stores_lose_no_update():
    """8 threads over 2 store instances each add 15 versions to the same resource,
    re-reading and retrying on VersionConflict: every version number is stored
    exactly once and each version names its predecessor (no lost update)."""
    shared = ReplicaSet()
    stores = [MongoStore(shared, "evi") for _ in range(2)]
    with stores[0].unit_of_work(write=True) as uow:
        uow.write(_v("x", 1, 0, {"prev": 0}, "POST"), IndexSet())
    threads_n, per_thread = 8, 15
    conflicts = [0] * threads_n
    clock = iter(range(1, 100_000))
    clock_lock = threading.Lock()
    start = threading.Barrier(threads_n)

    def worker(n: int) -> None:
        store = stores[n % 2]
        start.wait()
        done = 0
        while done < per_thread:
            try:
                with store.unit_of_work(write=True) as uow:
                    current = uow.current("Patient", "x")
                    with clock_lock:
                        second = next(clock)
                    uow.write(_v("x", current.version_id + 1, second, {"prev": current.version_id, "by": n}), IndexSet())
                done += 1
            except VersionConflict:
                conflicts[n] += 1

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    total = 1 + threads_n * per_thread
    with stores[1].unit_of_work(write=False) as uow:
        assert uow.current("Patient", "x").version_id == total
        versions = []
        page = uow.history(HistoryQuery("Patient", "x", count=1000))
        versions = sorted(page.versions, key=lambda v: v.version_id)
    assert [v.version_id for v in versions] == list(range(1, total + 1))
    assert all(json.loads(v.body)["prev"] == v.version_id - 1 for v in versions)
    assert sum(conflicts) > 0, "the threads never raced: the test proves nothing"
