"""Version races between server processes sharing one MongoDB database.

Two ``MongoStore`` instances on one mongomock client stand for two processes.
A real server runs every single-document operation atomically; mongomock,
driven from several threads, does not (it finds, then modifies, in Python), so
the threaded tests wrap the client in ``AtomicClient``, which runs each
operation under one lock, like the server would. The store's own logic (the
conditional replace, the unique history index, the undo) is what is tested.
"""

from __future__ import annotations

import json
import threading

import mongomock
import pytest

from fhir_server.search import IndexSet
from fhir_server.storage import HistoryQuery, ResourceVersion, VersionConflict
from fhir_server.storage.mongo import EMULATED, STANDALONE, MongoStore

_LOCK = threading.RLock()


class _AtomicCollection:
    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        target = getattr(self._inner, name)
        if not callable(target):
            return target

        def call(*args, **kwargs):
            with _LOCK:
                result = target(*args, **kwargs)
                if hasattr(result, "__next__"):  # a cursor: fetch it while holding the lock
                    result = list(result)
                return result

        return call


class _AtomicDatabase:
    def __init__(self, inner):
        self._inner = inner
        self.name = inner.name

    def __getitem__(self, name):
        return _AtomicCollection(self._inner[name])


class AtomicClient:
    """Each operation of a shared mongomock client runs alone, as on a real server."""

    def __init__(self, inner):
        self._inner = inner
        self.admin = inner.admin

    def __getitem__(self, name):
        return _AtomicDatabase(self._inner[name])


def _v(i, vid, second, body: dict, method="PUT"):
    ts = f"2026-01-01T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}.000000Z"
    return ResourceVersion("Patient", i, vid, ts, False, method, json.dumps(body).encode())


@pytest.fixture(params=[EMULATED, STANDALONE])
def two_processes(request):
    client = mongomock.MongoClient()
    return MongoStore(client, "evi", transactions=request.param), MongoStore(client, "evi", transactions=request.param)


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
    assert len(lost) == 1  # who loses depends on the mode (at write, or at commit); one always does
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


@pytest.mark.parametrize("mode", [EMULATED, STANDALONE])
def test_many_threads_on_two_stores_lose_no_update(mode):
    """8 threads over 2 store instances each add 15 versions to the same resource,
    re-reading and retrying on VersionConflict: every version number is stored
    exactly once and each version names its predecessor (no lost update)."""
    shared = AtomicClient(mongomock.MongoClient())
    stores = [MongoStore(shared, "evi", transactions=mode) for _ in range(2)]
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
