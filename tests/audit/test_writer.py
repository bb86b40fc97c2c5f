"""The group-commit writer: appends at once where nothing waits, else through its one
thread, which puts concurrent requests' events in one transaction and tells each."""

import asyncio
import threading

import pytest

from fhir_server.audit import Access, AuditUnavailable, AuditWriter, RequestFacts, ServerIdentity, verify_chain
from fhir_server.storage.sqlite.audit import SqliteAuditStore

SERVER = ServerIdentity("http://127.0.0.1/fhir")


def _facts(i: int = 0) -> RequestFacts:
    return RequestFacts("2026-12-03T10:00:00.000000Z", f"req-{i}", 200)


@pytest.fixture(params=["sqlite", "mongomock"])
def audit_store(request, tmp_path):
    if request.param == "sqlite":
        store = SqliteAuditStore(str(tmp_path / "evi.db-audit"))
        yield store
        store.close()
    else:
        from fhir_server.storage.mongo.audit import MongoAuditStore
        from tests.support.mongo_replica_set import ReplicaSet

        yield MongoAuditStore(ReplicaSet()["evi"])


def test_inline_only_where_the_store_allows_it(audit_store):
    writer = AuditWriter(audit_store, SERVER)
    try:
        done = writer.try_write(_facts(), [Access("read", "p1")])
        assert done is audit_store.inline
        assert writer.try_write(_facts(), [Access("read", "p1")] * (AuditWriter.INLINE_EVENTS + 1)) is False
    finally:
        writer.close()


def test_concurrent_requests_share_batches_and_each_is_told(audit_store):
    writer = AuditWriter(audit_store, SERVER)
    rows: list = []
    lock = threading.Lock()

    def request(i: int) -> None:
        stored = writer.write_blocking(_facts(i), [Access("read", f"p{i}"), Access("read", f"q{i}")])
        with lock:
            rows.extend(stored)

    async def on_loop() -> None:
        await asyncio.gather(*(writer.write(_facts(100 + i), [Access("create", "p")]) for i in range(20)))

    try:
        threads = [threading.Thread(target=request, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        asyncio.run(on_loop())
        for t in threads:
            t.join()
    finally:
        writer.close()
    assert len(rows) == 32 and {r.patient for r in rows} >= {"p3", "q3"}
    assert verify_chain(audit_store).events == 52


def test_a_failed_append_is_told_to_every_waiting_request(audit_store, monkeypatch):
    writer = AuditWriter(audit_store, SERVER)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(audit_store, "append", broken)
    try:
        with pytest.raises(AuditUnavailable):
            writer.write_blocking(_facts(), [Access("read", "p1")])

        async def on_loop():
            await writer.write(_facts(), [Access("read", "p1")])

        with pytest.raises(AuditUnavailable):
            asyncio.run(on_loop())
    finally:
        writer.close()
    with pytest.raises(AuditUnavailable, match="shutting down"):
        writer.write_blocking(_facts(), [Access("read", "p1")])
