"""The writer: on a journaled store (SQLite) a request's events are made durable at once
on its own thread, and stored by the store's committer; on a store that only appends
(MongoDB) through its one thread, which puts concurrent requests' events in one append
and tells each."""

import asyncio
import threading

import pytest

from fhir_server.audit import Access, AuditUnavailable, AuditWriter, RequestFacts, ServerIdentity, verify_chain
from fhir_server.storage import AuditQuery
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


def test_at_once_only_where_the_store_journals(audit_store):
    writer = AuditWriter(audit_store, SERVER)
    try:
        done = writer.try_write(_facts(), [Access("read", "p1")])
        assert done is audit_store.journaled
        # stored by the committer meanwhile, or by the read itself: a read never misses it
        assert [r.patient for r in audit_store.query(AuditQuery(patient="p1"))] == (["p1"] if done else [])
    finally:
        writer.close()


def test_concurrent_requests_are_all_stored_in_one_chain(audit_store):
    writer = AuditWriter(audit_store, SERVER)

    def request(i: int) -> None:
        writer.write_blocking(_facts(i), [Access("read", f"p{i}"), Access("read", f"q{i}")])

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
    rows = audit_store.scan(0, 100)
    assert len(rows) == 52 and {r.patient for r in rows} >= {"p3", "q3", "p"}
    assert verify_chain(audit_store).events == 52


def test_events_that_cannot_be_made_durable_withhold_the_answer(audit_store, monkeypatch):
    writer = AuditWriter(audit_store, SERVER)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    # a journaled store fails where it writes the pending file; the other where it appends
    monkeypatch.setattr(audit_store, "journal" if audit_store.journaled else "append", broken)
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
