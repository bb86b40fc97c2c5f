"""The journaled way into the access log: entries made durable in a process's pending
file, stored by its committer, read back at once by the same process, and stored by the
next start when the process died first (a real SIGKILL) — never twice, never a torn
record, never a live process's file."""

from __future__ import annotations

import glob
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from fhir_server.audit import seal, verify_chain
from fhir_server.storage import AuditEntry, AuditQuery
from fhir_server.storage.sqlite.audit import SqliteAuditStore
from fhir_server.storage.sqlite.audit_pending import INFIX


def _entry(n: int, patient: str = "p") -> AuditEntry:
    recorded = "2026-12-03T10:00:00.000000Z"
    return AuditEntry(patient, recorded, {"resourceType": "AuditEvent", "recorded": recorded, "n": n})


def _seal(content, seq, previous):
    return seal(dict(content), seq, previous)


def _pending_files(path: str) -> list[str]:
    return glob.glob(glob.escape(path) + INFIX + "*")


def _ns(store) -> list[int]:
    import orjson

    return [orjson.loads(r.body)["n"] for r in store.scan(0, 10_000)]


def test_journaled_entries_are_seen_by_the_next_read(store):
    audit = store.audit
    if not audit.journaled:
        pytest.skip("this store only appends")
    audit.start(_seal)
    for n in range(3):
        audit.journal([_entry(n), _entry(n, "q")])
    assert [r.patient for r in audit.query(AuditQuery(patient="q"))] == ["q"] * 3
    assert verify_chain(audit).events == 6


_CHILD = textwrap.dedent("""
    import os, signal, sys
    from fhir_server.audit import seal
    from fhir_server.storage import AuditEntry
    from fhir_server.storage.sqlite.audit import SqliteAuditStore

    path, stored, pending, torn = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "torn"
    SqliteAuditStore.LINGER = 3600  # the committer never gets to what is pending
    store = SqliteAuditStore(path)
    store.start(lambda c, s, p: seal(dict(c), s, p))
    def entry(n):
        return AuditEntry("p", "2026-12-03T10:00:00.000000Z", {"resourceType": "AuditEvent", "n": n})
    for n in range(stored):
        store.journal([entry(n)])
    store.scan(0, 1)  # a read stores what is pending
    for n in range(stored, stored + pending):
        store.journal([entry(n), entry(n + 1000)])
    if torn:  # a record the operating system cut short: its request was never answered
        with open(store._file.path, "ab") as f:
            f.write(b"\\x40\\x00\\x00\\x00\\x01\\x02")
    print("ready", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
""")


def _killed_process(path: str, stored: int, pending: int, torn: bool = False) -> None:
    proc = subprocess.run([sys.executable, "-c", _CHILD, path, str(stored), str(pending), "torn" if torn else "-"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL and "ready" in proc.stdout, proc.stderr


def test_what_a_killed_process_left_pending_is_stored_once_by_the_next_start(tmp_path):
    path = str(tmp_path / "evi.db-audit")
    _killed_process(path, stored=3, pending=4, torn=True)
    assert len(_pending_files(path)) == 1
    store = SqliteAuditStore(path)
    try:
        assert len(store.scan(0, 100)) == 3  # only what the dead process had stored
        store.start(_seal)
        assert _ns(store) == [0, 1, 2, 3, 1003, 4, 1004, 5, 1005, 6, 1006]  # in order, none twice
        assert verify_chain(store).broken is None
        assert _pending_files(path) == [store._file.path]
        assert store._read("SELECT name FROM audit_pending") == []  # nothing stored from its own file yet
    finally:
        store.close()
    assert _pending_files(path) == []  # closed cleanly: everything stored, the file removed


def test_recover_alone_stores_it_too_and_leaves_a_live_process_file_alone(tmp_path):
    path = str(tmp_path / "evi.db-audit")
    live = SqliteAuditStore(path)
    live.LINGER = 3600
    live.start(_seal)
    live.journal([_entry(7)])
    _killed_process(path, stored=0, pending=2)
    other = SqliteAuditStore(path)  # `evi-fhir audit verify`, say, while a server runs
    try:
        other.recover(_seal)
        assert _ns(other) == [0, 1000, 1, 1001]  # the dead one's; the live one's stays pending
        assert _pending_files(path) == [live._file.path]
        assert _ns(live) == [0, 1000, 1, 1001, 7]  # its own read stores it
    finally:
        other.close()
        live.close()


def test_a_replaced_pending_file_is_removed_once_all_of_it_is_stored(tmp_path):
    path = str(tmp_path / "evi.db-audit")
    store = SqliteAuditStore(path)
    store.LINGER = 3600
    store.ROTATE_BYTES = 200
    store.start(_seal)
    try:
        first = store._file.path
        for n in range(5):
            store.journal([_entry(n)])
        assert store.count(AuditQuery()) == 5  # stored, and the file replaced
        assert _pending_files(path) == [store._file.path] and store._file.path != first
        store.journal([_entry(5)])
        assert store.count(AuditQuery()) == 6
        names = [name for (name,) in store._read("SELECT name FROM audit_pending")]
        assert names == [os.path.basename(store._file.path)]  # no row of a removed file
    finally:
        store.close()


def test_a_failed_commit_keeps_everything_pending_and_the_read_fails(tmp_path, monkeypatch):
    path = str(tmp_path / "evi.db-audit")
    store = SqliteAuditStore(path)
    store.LINGER = 3600
    store.start(_seal)
    try:
        store.journal([_entry(0)])
        real = store.append
        monkeypatch.setattr(store, "append", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
        with pytest.raises(OSError):
            store.scan(0, 10)  # it must not answer as if the log were complete
        store.journal([_entry(1)])  # still durable meanwhile
        monkeypatch.setattr(store, "append", real)
        assert _ns(store) == [0, 1]
    finally:
        store.close()


def test_journal_after_close_is_refused(tmp_path):
    store = SqliteAuditStore(str(tmp_path / "evi.db-audit"))
    store.start(_seal)
    store.close()
    with pytest.raises(RuntimeError):
        store.journal([_entry(0)])


def test_a_failed_write_sends_what_follows_to_a_fresh_file(tmp_path, monkeypatch):
    """A write that failed may have left part of a record, which would end the file's
    reading after a crash: the records that follow must not be behind it."""
    from fhir_server.storage.sqlite.audit_pending import PendingFile

    path = str(tmp_path / "evi.db-audit")
    store = SqliteAuditStore(path)
    store.LINGER = 3600
    store.start(_seal)
    try:
        store.journal([_entry(0)])
        broken = store._file
        real = PendingFile.write
        monkeypatch.setattr(PendingFile, "write", lambda self, entries: (_ for _ in ()).throw(OSError("disk full")))
        with pytest.raises(OSError):
            store.journal([_entry(1)])  # its request is answered 503
        monkeypatch.setattr(PendingFile, "write", real)
        store.journal([_entry(2)])
        assert store._file is not broken and sorted(_pending_files(path)) == sorted([broken.path, store._file.path])
        assert _ns(store) == [0, 2]
        assert _pending_files(path) == [store._file.path]  # the replaced one: stored, removed
    finally:
        store.close()


def test_a_pending_file_that_cannot_be_stored_stays_and_the_log_starts(tmp_path, monkeypatch):
    path = str(tmp_path / "evi.db-audit")
    _killed_process(path, stored=0, pending=2)
    store = SqliteAuditStore(path)
    real = store.append
    monkeypatch.setattr(store, "append", lambda *a, **k: (_ for _ in ()).throw(sqlite3.OperationalError("disk I/O error")))
    store.start(_seal)  # logs the failure, keeps the file
    try:
        assert len(_pending_files(path)) == 2  # the dead one's, and this store's own
        monkeypatch.setattr(store, "append", real)
        other = SqliteAuditStore(path)  # the next start
        try:
            other.recover(_seal)
            assert _ns(other) == [0, 1000, 1, 1001]
        finally:
            other.close()
    finally:
        store.close()
