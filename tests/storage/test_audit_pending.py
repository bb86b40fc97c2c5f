"""The journaled way into the access log: entries made durable in a process's pending
file, stored by its committer, read back at once by the same process, and stored by the
next start when the process died first (a real SIGKILL) — never twice, never a torn
record, never a live process's file."""

from __future__ import annotations

import glob
import os
import signal
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


@pytest.fixture
def held(tmp_path):
    """A started log whose committer thread never gets to storing: reads and full batches do."""
    store = SqliteAuditStore(str(tmp_path / "evi.db-audit"))
    store.LINGER = 3600
    store.start(_seal)
    yield store
    store.close()


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


def test_recover_alone_stores_it_too_and_leaves_a_live_process_file_alone(held):
    path = held._path
    held.journal([_entry(7)])
    _killed_process(path, stored=0, pending=2)
    other = SqliteAuditStore(path)  # `evi-fhir audit verify`, say, while a server runs
    try:
        other.recover(_seal)
        assert _ns(other) == [0, 1000, 1, 1001]  # the dead one's; the live one's stays pending
        assert _pending_files(path) == [held._file.path]
        assert _ns(held) == [0, 1000, 1, 1001, 7]  # its own read stores it
    finally:
        other.close()


def test_a_replaced_pending_file_is_removed_once_all_of_it_is_stored(held):
    held.ROTATE_BYTES = 200
    first = held._file.path
    for n in range(5):
        held.journal([_entry(n)])
    assert held.count(AuditQuery()) == 5  # stored, and the file replaced
    assert _pending_files(held._path) == [held._file.path] and held._file.path != first
    held.journal([_entry(5)])
    assert held.count(AuditQuery()) == 6
    names = [name for (name,) in held._read("SELECT name FROM audit_pending")]
    assert names == [os.path.basename(held._file.path)]  # no row of a removed file


def _failing(*args, **kwargs):
    raise OSError("disk full")


def test_a_failed_commit_keeps_everything_pending_and_the_read_fails(held, monkeypatch):
    held.journal([_entry(0)])
    real = held.append
    monkeypatch.setattr(held, "append", _failing)
    with pytest.raises(OSError):
        held.scan(0, 10)  # it must not answer as if the log were complete
    held.journal([_entry(1)])  # still durable meanwhile
    monkeypatch.setattr(held, "append", real)
    assert _ns(held) == [0, 1]


def test_journal_after_close_is_refused(tmp_path):
    store = SqliteAuditStore(str(tmp_path / "evi.db-audit"))
    store.start(_seal)
    store.close()
    with pytest.raises(RuntimeError):
        store.journal([_entry(0)])


def test_a_failed_write_sends_what_follows_to_a_fresh_file(held, monkeypatch):
    """A write that failed may have left part of a record, which would end the file's
    reading after a crash: the records that follow must not be behind it."""
    from fhir_server.storage.sqlite.audit_pending import PendingFile

    held.journal([_entry(0)])
    broken = held._file
    real = PendingFile.write
    monkeypatch.setattr(PendingFile, "write", _failing)
    with pytest.raises(OSError):
        held.journal([_entry(1)])  # its request is answered 503
    monkeypatch.setattr(PendingFile, "write", real)
    held.journal([_entry(2)])
    assert held._file is not broken
    assert sorted(_pending_files(held._path)) == sorted([broken.path, held._file.path])
    assert _ns(held) == [0, 2]
    assert _pending_files(held._path) == [held._file.path]  # the replaced one: stored, removed


def test_a_pending_file_that_cannot_be_stored_stays_and_the_log_starts(tmp_path, monkeypatch):
    path = str(tmp_path / "evi.db-audit")
    _killed_process(path, stored=0, pending=2)
    store = SqliteAuditStore(path)
    real = store.append
    monkeypatch.setattr(store, "append", _failing)
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


def test_two_processes_journaling_at_once_make_one_chain(tmp_path):
    """Two server processes on one log (here two stores, each with its own pending file and
    connections): their leaders' batches interleave in one sequence, every entry once."""
    import threading

    path = str(tmp_path / "evi.db-audit")
    stores = [SqliteAuditStore(path), SqliteAuditStore(path)]
    for store in stores:
        store.BATCH = 5  # many small batches: each side's remembered tip is often taken by the other
        store.start(_seal)

    def run(k: int) -> None:
        for n in range(200):
            stores[k % 2].journal([_entry(k * 1000 + n, f"p{k}")])

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for store in stores:
        store.close()
    assert _pending_files(path) == []
    log = SqliteAuditStore(path)
    try:
        assert sorted(_ns(log)) == sorted(k * 1000 + n for k in range(4) for n in range(200))
        assert verify_chain(log).broken is None and verify_chain(log).events == 800
        assert log._query("SELECT name FROM audit_pending") == []
    finally:
        log.close()


def test_a_replacement_file_that_cannot_be_made_keeps_the_old_one_and_loses_nothing(held, monkeypatch):
    from fhir_server.storage.sqlite import audit as sqlite_audit

    held.ROTATE_BYTES = 200
    first = held._file
    for n in range(5):
        held.journal([_entry(n)])
    real = sqlite_audit.PendingFile
    monkeypatch.setattr(sqlite_audit, "PendingFile", lambda path: _failing())
    assert _ns(held) == [0, 1, 2, 3, 4]  # stored, though no fresh file could be made
    assert held._file is first and _pending_files(held._path) == [first.path]
    held.journal([_entry(5)])
    monkeypatch.setattr(sqlite_audit, "PendingFile", real)
    assert _ns(held) == [0, 1, 2, 3, 4, 5]
    assert held._file is not first and _pending_files(held._path) == [held._file.path]
