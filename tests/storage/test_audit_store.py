"""The audit store of every backend (``Store.audit``): appends in one sequence with the
chain sealed in order, the two queries (patient + time, time), reads by id, scans,
purge with its anchor, and that the log lives apart from the resources."""

from __future__ import annotations

import threading

import orjson
import pytest

from fhir_server.audit import seal, verify_chain
from fhir_server.storage import GENESIS, AuditEntry, AuditQuery


def _entry(patient: str | None, recorded: str, n: int = 0) -> AuditEntry:
    return AuditEntry(patient, recorded, {"resourceType": "AuditEvent", "recorded": recorded, "n": n})


def _seal(content, seq, previous):
    return seal(dict(content), seq, previous)


def _times(rows):
    return [r.recorded for r in rows]


def test_append_numbers_and_chains_in_order(store):
    rows = store.audit.append([_entry("p1", "2026-01-01T00:00:00.000000Z", i) for i in range(3)], _seal)
    more = store.audit.append([_entry(None, "2026-01-02T00:00:00.000000Z")], _seal)
    assert [r.seq for r in rows + more] == [1, 2, 3, 4]
    previous = GENESIS
    for row in rows + more:
        body = orjson.loads(row.body)
        assert body["id"] == row.id and row.chain == body["extension"][0]["valueString"]
        assert store.audit.get(row.seq) == row
        previous = row.chain
    assert store.audit.get(99) is None
    report = verify_chain(store.audit)
    assert (report.events, report.broken, report.last_chain) == (4, None, previous)


def test_an_empty_append_stores_nothing(store):
    assert store.audit.append([], _seal) == []
    assert store.audit.scan(0, 10) == []


def test_queries_by_patient_and_time_oldest_first_with_cursor(store):
    times = [f"2026-03-0{d}T10:00:00.000000Z" for d in range(1, 6)]
    store.audit.append([_entry("a" if i % 2 == 0 else "b", t, i) for i, t in enumerate(times)], _seal)
    store.audit.append([_entry("a", times[0], 9)], _seal)  # same time, later seq
    audit = store.audit
    assert _times(audit.query(AuditQuery(patient="a"))) == [times[0], times[0], times[2], times[4]]
    assert [r.seq for r in audit.query(AuditQuery(patient="a"))][:2] == [1, 6]
    assert _times(audit.query(AuditQuery(patient="b", start=times[2]))) == [times[3]]
    assert _times(audit.query(AuditQuery(start=times[1], end=times[3]))) == times[1:4]
    assert audit.count(AuditQuery(patient="a", end=times[2])) == 3
    first = audit.query(AuditQuery(patient="a", limit=2))
    rest = audit.query(AuditQuery(patient="a", after=(first[-1].recorded, first[-1].seq), limit=10))
    assert [r.seq for r in first + rest] == [1, 6, 3, 5]
    assert audit.query(AuditQuery(patient="nobody")) == []


def test_purge_keeps_the_chain_verifiable_from_the_first_kept_event(store):
    audit = store.audit
    old = audit.append([_entry("p", f"2019-0{m}-01T00:00:00.000000Z", m) for m in range(1, 4)], _seal)
    new = audit.append([_entry("p", "2025-01-01T00:00:00.000000Z")], _seal)
    removed, anchor = audit.purge("2020-01-01T00:00:00.000000Z", "2026-12-01T00:00:00.000000Z")
    assert removed == 3 and (anchor.seq, anchor.chain) == (old[-1].seq, old[-1].chain)
    assert audit.anchor() == anchor and [r.seq for r in audit.scan(0, 10)] == [new[0].seq]
    later = audit.append([_entry("p", "2026-01-01T00:00:00.000000Z")], _seal)
    assert later[0].seq == new[0].seq + 1
    report = verify_chain(audit)
    assert (report.events, report.broken, report.anchor) == (2, None, anchor)
    assert audit.purge("2018-01-01T00:00:00.000000Z", "2026-12-01T00:00:00.000000Z") == (0, None)


def test_purging_everything_continues_the_sequence_after_the_anchor(store):
    audit = store.audit
    rows = audit.append([_entry("p", "2010-01-01T00:00:00.000000Z", i) for i in range(2)], _seal)
    removed, anchor = audit.purge("2011-01-01T00:00:00.000000Z", "2026-12-01T00:00:00.000000Z")
    assert removed == 2 and anchor.chain == rows[-1].chain and audit.scan(0, 10) == []
    after = audit.append([_entry("p", "2026-01-01T00:00:00.000000Z")], _seal)
    assert after[0].seq == 3
    assert verify_chain(audit).broken is None


def test_concurrent_appends_form_one_unbroken_chain(store):
    def run(k: int) -> None:
        for i in range(10):
            store.audit.append([_entry(f"p{k}", "2026-01-01T00:00:00.000000Z", i)] * 2, _seal)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = store.audit.scan(0, 1000)
    assert [r.seq for r in rows] == list(range(1, 81))
    assert verify_chain(store.audit).events == 80


def test_the_log_is_not_in_the_resource_tables(store):
    store.audit.append([_entry("p", "2026-01-01T00:00:00.000000Z")], _seal)
    with store.unit_of_work(write=False) as uow:
        assert uow.current("AuditEvent", "1") is None


def _second_store(store, tmp_path):
    """Another process's view of the same log: a second audit store on the same file/database."""
    if hasattr(store, "db"):  # MongoDB
        from fhir_server.storage.mongo.audit import MongoAuditStore

        return MongoAuditStore(store.db)
    if store.path == ":memory:":
        pytest.skip("an in-memory database has no second process")
    from fhir_server.storage.sqlite.audit import SqliteAuditStore

    return SqliteAuditStore(store.path + "-audit")


def test_two_processes_append_to_one_chain(store, tmp_path):
    other = _second_store(store, tmp_path)
    try:
        for i in range(5):  # each side's remembered tip is taken by the other in turn
            store.audit.append([_entry("a", "2026-01-01T00:00:00.000000Z", i)], _seal)
            other.append([_entry("b", "2026-01-01T00:00:00.000000Z", i)] * 2, _seal)
        assert [r.seq for r in store.audit.scan(0, 100)] == list(range(1, 16))
        assert verify_chain(store.audit).events == 15
    finally:
        if not hasattr(store, "db"):
            other.close()
