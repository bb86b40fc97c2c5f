"""The PDL access log (``storage.audit``) of a SQLite store, in a file of its own beside
the database (``evi.db-audit``): an audit commit never waits for the main database's one
writer, and no search index of the resources grows with it.

Appends are one write transaction on the audit file (``BEGIN IMMEDIATE``): every server
process on the database serialises its appends there, so the log is one sequence and
each event's chain value follows the event really stored before it. WAL with
``synchronous = NORMAL``, as the database itself: a committed append survives a crash of
the process (kill -9); only a crash of the operating system or a power loss may lose the
last commits (sqlite.org/pragma.html#pragma_synchronous). Two indexes, for the two
queries the log answers: (patient, recorded) and (recorded); ``seq`` is the rowid.

A request's events reach the log through the process's pending file (``journal``,
``audit_pending.py``): one ``write()`` makes them durable as a commit would, and the
committer thread seals and stores what gathered meanwhile in one transaction a few
milliseconds later, recording in the same transaction how far each pending file is
stored (table ``audit_pending``). A pending file whose process is gone is stored by the
next process that starts the log (``start``). Every read of the log first stores what
this process has pending, so it never misses an answer this process gave.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from typing import Sequence

from fhir_server.storage.audit import GENESIS, AuditAnchor, AuditEntry, AuditQuery, AuditRow, Seal
from fhir_server.storage.sqlite.audit_pending import PendingFile, orphans, read_records

log = logging.getLogger("fhir_server.audit")

__all__ = ["SqliteAuditStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_event (
    seq      INTEGER PRIMARY KEY,   -- the log's order, and the event's id
    patient  TEXT,                  -- the Patient's id (NULL: an event without a patient)
    recorded TEXT NOT NULL,         -- FHIR instant, UTC, fixed width
    chain    TEXT NOT NULL,         -- the event's chain value (hex SHA-256)
    body     BLOB NOT NULL          -- the AuditEvent JSON, as sealed
);
CREATE INDEX IF NOT EXISTS audit_patient_time ON audit_event (patient, recorded);
CREATE INDEX IF NOT EXISTS audit_time ON audit_event (recorded);
CREATE TABLE IF NOT EXISTS audit_anchor (
    one       INTEGER PRIMARY KEY CHECK (one = 1),
    seq       INTEGER NOT NULL,     -- the last removed event
    chain     TEXT NOT NULL,        -- its chain value: the first kept event's predecessor
    before    TEXT NOT NULL,
    purged_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_pending (
    name     TEXT PRIMARY KEY,      -- a pending file (evi.db-audit-pending-<uuid>)
    upto     INTEGER NOT NULL       -- its records up to this number are stored
);
"""

_COLUMNS = "seq, patient, recorded, chain, body"


def _row(r) -> AuditRow:
    return AuditRow(r[0], r[1], r[2], r[3], bytes(r[4]))


class SqliteAuditStore:
    """``background_checkpoints``: the store's checkpointer thread copies the WAL back
    (off the appends' path); otherwise SQLite checkpoints inside a commit now and then."""

    #: appends go through the pending file (``journal``) once the log is started
    journaled = True
    #: pending entries that one transaction stores (their leader's, ``journal``): a
    #: transaction's fixed cost (its WAL frames of index pages) is shared among them
    BATCH = 48
    #: seconds an entry may stay pending before the committer thread stores it (when
    #: fewer than ``BATCH`` came; another process's reads see it after this long at most)
    LINGER = 0.02
    #: seconds before storing is tried again after a failure (doubling on the thread)
    RETRY_AFTER = 0.1
    #: a pending file is replaced by a fresh one once it is this large and all of it stored
    ROTATE_BYTES = 8 << 20
    #: entries per transaction when a pending file is recovered
    RECOVERY_BATCH = 2000

    def __init__(self, path: str, *, background_checkpoints: bool = False):
        self._path = path
        self._memory = path == ":memory:"
        self._writer = self._connect(path)
        # 4 KiB pages (a new file's; an existing one keeps its own): appends come in batches
        # of many small records, and a batch's rows share pages; measured (with whole events
        # stored, before records), 1 KiB pages cost a batched event ~20% more
        self._writer.execute("PRAGMA page_size = 4096")
        if not self._memory:
            self._writer.execute("PRAGMA journal_mode = WAL")
            if background_checkpoints:
                self._writer.execute("PRAGMA wal_autocheckpoint = 0")
        self._writer.executescript(_SCHEMA)
        self._write_lock = threading.Lock()
        #: the last event this connection appended (seq, chain), None: read it from the file
        self._tip: tuple[int, str] | None = None
        # one connection of :memory: is the whole database; a file gets a reader of its own,
        # so queries never wait for an append
        self._reader = self._writer if self._memory else self._connect(path)
        self._read_lock = self._write_lock if self._memory else threading.Lock()
        # the pending records (``start``, ``journal``): (file or None, record number, entries)
        self._seal: Seal | None = None
        self._file: PendingFile | None = None
        self._pending: list[tuple[PendingFile | None, int, Sequence[AuditEntry]]] = []
        self._count = 0  # entries pending
        self._retry_at = 0.0  # monotonic time before which callers do not try storing again
        self._lock = threading.Lock()  # the pending list (``journal`` takes it bare: no Python-level __enter__)
        self._queue = threading.Condition(self._lock)  # the committer waits on it for a first entry
        self._commit_lock = threading.Lock()  # held while pending records are stored
        self._retiring: list[PendingFile] = []  # replaced files, removed once all of theirs is stored
        self._idle = False  # the committer waits for a first record
        self._stopping = False
        self._closing = threading.Event()  # set by ``close``: ends the committer's lingering
        self._committer: threading.Thread | None = None

    @staticmethod
    def _connect(path: str) -> sqlite3.Connection:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    # -- the pending file and its committer ---------------------------------------------
    def start(self, seal: Seal) -> None:
        """Store what processes that are gone left pending (sealed with ``seal``), open this
        process's pending file and start its committer. Once; later calls do nothing."""
        with self._commit_lock:
            if self._seal is not None:
                return
            if not self._memory:
                self._recover(seal)
                self._file = PendingFile(self._path)
            self._seal = seal
        self._committer = threading.Thread(target=self._run, name="evi-audit-commit", daemon=True)
        self._committer.start()

    def journal(self, entries: Sequence[AuditEntry]) -> None:
        """Make ``entries`` (their contents JSON values) durable now, in one ``write()``.
        Once ``BATCH`` entries are pending, the caller that finds the log free stores them
        all (group commit, its leader this caller); what is left when requests stop, the
        committer thread stores after ``LINGER``."""
        if not entries:
            return
        with self._lock:
            if self._seal is None or self._stopping:
                raise RuntimeError("the access log is not started, or closed")
            number = self._write(entries) if self._file is not None else 0
            self._pending.append((self._file, number, entries))
            self._count += len(entries)
            due = self._count >= self.BATCH and (not self._retry_at or time.monotonic() >= self._retry_at)
            if self._idle:
                self._idle = False
                self._queue.notify()
        if due and self._commit_lock.acquire(blocking=False):  # another caller stores them: not this one
            try:
                self._drain_held()
            except Exception:  # noqa: BLE001 - this caller's entries are durable; the committer tries again
                self._retry_at = time.monotonic() + self.RETRY_AFTER
                log.exception("the access log could not store %d pending entries; trying again", self._count)
            finally:
                self._commit_lock.release()

    def _write(self, entries: Sequence[AuditEntry]) -> int:
        """Into the pending file (the caller holds the lock). A write that failed may have
        left part of a record, which would end the file's reading after a crash: what
        follows goes to a fresh file (when one can be made), and the request hears the
        failure."""
        try:
            return self._file.write(entries)
        except OSError:
            self._replace_file()
            raise

    def _replace_file(self) -> None:
        """A fresh pending file for what follows (the caller holds the lock); the old one
        is removed once all of its records are stored. When no fresh one can be made, the
        old one stays in use, and the next replacement tries again."""
        try:
            fresh = PendingFile(self._path)
        except OSError:
            log.exception("the access log could not open a fresh pending file")
            return
        self._retiring.append(self._file)  # its records stay pending until stored
        self._file = fresh

    def _run(self) -> None:
        """The committer: stores what stays pending ``LINGER`` seconds (under load the
        callers of ``journal`` store it sooner, on their own threads: no hand-over to
        this thread, which would contend with them for the interpreter)."""
        failures = 0
        while True:
            with self._queue:
                while not self._pending and not self._stopping:
                    self._idle = True
                    self._queue.wait()
                if self._stopping:
                    return  # ``close`` stores the rest
                waiting = self._pending[0]
            if self._closing.wait(self.LINGER if not failures else min(5.0, self.RETRY_AFTER * 2 ** failures)):
                return
            with self._queue:
                if not self._pending or self._pending[0] is not waiting:  # a caller stored it meanwhile
                    continue
            try:
                self._drain()
                failures = 0
            except Exception:  # noqa: BLE001 - kept pending (and in the file); tried again
                failures += 1
                log.exception("the access log could not store %d pending entries; trying again", self._count)

    def _drain(self) -> None:
        with self._commit_lock:
            self._drain_held()

    def _drain_held(self) -> None:
        """Seal and store every pending record (in one transaction, with how far each
        pending file is now stored); on failure they stay pending. The caller holds the
        commit lock."""
        with self._queue:
            items, self._pending, count, self._count = self._pending, [], self._count, 0
            if self._file is not None and self._file.size >= self.ROTATE_BYTES:
                self._replace_file()
        if items:
            progress = {f.name: n for f, n, _ in items if f is not None}
            try:
                self.append([e for _, _, entries in items for e in entries], self._seal, progress=progress)
            except BaseException:
                with self._queue:
                    self._pending[:0] = items
                    self._count += count
                raise
            self._retry_at = 0.0
        while self._retiring:  # all of a replaced file's records are stored
            self._remove(self._retiring.pop())

    def _sync(self) -> None:
        """What this process has pending, stored (before a read of the log)."""
        if self._seal is not None:
            self._drain()

    def _remove(self, file: PendingFile) -> None:
        file.close(remove=True)
        self._forget(file.name)

    def _forget(self, name: str) -> None:
        with self._write_lock:
            self._writer.execute("DELETE FROM audit_pending WHERE name = ?", (name,))

    def recover(self, seal: Seal) -> None:
        """Store the records of pending files whose processes are gone (those after what
        ``audit_pending`` says is stored), then remove the files."""
        if self._memory:
            return
        with self._commit_lock:
            self._recover(seal)

    def _recover(self, seal: Seal) -> None:
        directory = os.path.dirname(os.path.abspath(self._path))
        for path, fd in orphans(self._path, None):
            try:
                self._recover_file(path, fd, seal)
            except Exception:  # noqa: BLE001 - the file stays, and the next start tries again
                log.exception("the access log could not store what a stopped process left pending in %s; "
                              "it is kept, and tried again at the next start", os.path.basename(path))
            finally:
                os.close(fd)
        for (name,) in self._query("SELECT name FROM audit_pending"):  # files removed before their row
            if not os.path.exists(os.path.join(directory, name)):
                self._forget(name)

    def _recover_file(self, path: str, fd: int, seal: Seal) -> None:
        name = os.path.basename(path)
        row = self._query("SELECT upto FROM audit_pending WHERE name = ?", (name,))
        upto = row[0][0] if row else 0
        batch: list[AuditEntry] = []
        recovered = 0
        for number, entries in read_records(fd):
            if number <= upto:
                continue
            batch.extend(entries)
            recovered += len(entries)
            if len(batch) >= self.RECOVERY_BATCH:
                self.append(batch, seal, progress={name: number})
                batch = []
            upto = number
        if batch:
            self.append(batch, seal, progress={name: upto})
        os.unlink(path)
        self._forget(name)
        if recovered:
            log.warning("the access log stored %d events a stopped process had left pending", recovered)

    # -- appends -------------------------------------------------------------------------
    def append(self, entries: Sequence[AuditEntry], seal: Seal, *,
               progress: dict[str, int] | None = None) -> list[AuditRow]:
        """``progress``: pending files' names -> the number of their last record among
        ``entries``, recorded in the same transaction."""
        if not entries:
            return []
        with self._write_lock:
            return self._append(entries, seal, progress)

    def _append(self, entries: Sequence[AuditEntry], seal: Seal, progress: dict[str, int] | None) -> list[AuditRow]:
        """Sealed after the last event this connection knows of: when another process
        appended meanwhile, the first row's seq is taken (a primary-key conflict), and
        the entries are sealed again after the last event stored. The transaction saves
        reading the last event on every append (most appends follow this process's own)."""
        if self._tip is not None:
            try:
                return self._insert(entries, seal, self._tip, progress)
            except sqlite3.IntegrityError:  # another process appended: read where the log ends
                self._tip = None
        return self._insert(entries, seal, None, progress)

    def _insert(self, entries: Sequence[AuditEntry], seal: Seal, tip: tuple[int, str] | None,
                progress: dict[str, int] | None) -> list[AuditRow]:
        conn = self._writer
        # one write transaction: every process's appends queue for the file's write lock
        try:
            conn.execute("BEGIN IMMEDIATE")
            seq, chain = tip if tip is not None else self._head(conn)
            rows = []
            for entry in entries:
                seq += 1
                chain, body = seal(entry.content, seq, chain)
                rows.append(AuditRow(seq, entry.patient, entry.recorded, chain, body))
            conn.executemany(
                f"INSERT INTO audit_event ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                [(r.seq, r.patient, r.recorded, r.chain, r.body) for r in rows],
            )
            if progress:
                conn.executemany(
                    "INSERT INTO audit_pending (name, upto) VALUES (?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET upto = excluded.upto", list(progress.items()),
                )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._tip = (rows[-1].seq, rows[-1].chain)
        return rows

    @staticmethod
    def _head(conn: sqlite3.Connection) -> tuple[int, str]:
        """The last event's seq and chain value (after a purge of everything: the anchor's)."""
        row = conn.execute("SELECT seq, chain FROM audit_event ORDER BY seq DESC LIMIT 1").fetchone()
        if row is not None:
            return row[0], row[1]
        anchor = conn.execute("SELECT seq, chain FROM audit_anchor").fetchone()
        return (anchor[0], anchor[1]) if anchor is not None else (0, GENESIS)

    def _read(self, sql: str, args: Sequence = ()) -> list:
        self._sync()
        return self._query(sql, args)

    def _query(self, sql: str, args: Sequence = ()) -> list:
        with self._read_lock:
            return self._reader.execute(sql, args).fetchall()

    def get(self, seq: int) -> AuditRow | None:
        rows = self._read(f"SELECT {_COLUMNS} FROM audit_event WHERE seq = ?", (seq,))
        return _row(rows[0]) if rows else None

    @staticmethod
    def _where(query: AuditQuery, with_cursor: bool) -> tuple[str, list]:
        where, args = [], []
        if query.patient is not None:
            where.append("patient = ?")
            args.append(query.patient)
        if query.start is not None:
            where.append("recorded >= ?")
            args.append(query.start)
        if query.end is not None:
            where.append("recorded <= ?")
            args.append(query.end)
        if with_cursor and query.after is not None:
            where.append("(recorded > ? OR (recorded = ? AND seq > ?))")
            args.extend([query.after[0], query.after[0], query.after[1]])
        return (" WHERE " + " AND ".join(where)) if where else "", args

    def query(self, query: AuditQuery) -> list[AuditRow]:
        where, args = self._where(query, True)
        rows = self._read(
            f"SELECT {_COLUMNS} FROM audit_event{where} ORDER BY recorded, seq LIMIT ?", [*args, query.limit]
        )
        return [_row(r) for r in rows]

    def count(self, query: AuditQuery) -> int:
        where, args = self._where(query, False)
        return self._read(f"SELECT COUNT(*) FROM audit_event{where}", args)[0][0]

    def scan(self, after_seq: int, limit: int) -> list[AuditRow]:
        rows = self._read(f"SELECT {_COLUMNS} FROM audit_event WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit))
        return [_row(r) for r in rows]

    def anchor(self) -> AuditAnchor | None:
        rows = self._read("SELECT seq, chain, before, purged_at FROM audit_anchor")
        return AuditAnchor(*rows[0]) if rows else None

    def purge(self, before: str, purged_at: str) -> tuple[int, AuditAnchor | None]:
        self._sync()
        with self._write_lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                first_kept = conn.execute(
                    "SELECT MIN(seq) FROM audit_event WHERE recorded >= ?", (before,)
                ).fetchone()[0]
                bound = first_kept if first_kept is not None else conn.execute(
                    "SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_event"
                ).fetchone()[0]
                last = conn.execute(
                    "SELECT seq, chain FROM audit_event WHERE seq < ? ORDER BY seq DESC LIMIT 1", (bound,)
                ).fetchone()
                if last is None:
                    conn.execute("COMMIT")
                    return 0, None
                removed = conn.execute("DELETE FROM audit_event WHERE seq < ?", (bound,)).rowcount
                self._tip = None
                anchor = AuditAnchor(last[0], last[1], before, purged_at)
                conn.execute(
                    "INSERT OR REPLACE INTO audit_anchor (one, seq, chain, before, purged_at) VALUES (1, ?, ?, ?, ?)",
                    (anchor.seq, anchor.chain, anchor.before, anchor.purged_at),
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return removed, anchor

    def close(self) -> None:
        """Store what is pending, then close (a pending file that could not be stored
        stays, and the next start stores it)."""
        with self._queue:
            self._stopping = True
            self._queue.notify()
        self._closing.set()
        if self._committer is not None:
            self._committer.join(timeout=60)
        if self._seal is not None:
            try:
                self._drain()
                if self._file is not None:
                    self._remove(self._file)
            except Exception:  # noqa: BLE001 - left for the next start to store
                log.exception("the access log could not store what was pending at close; the next start will")
                for file in (*self._retiring, self._file):
                    if file is not None:
                        file.close(remove=False)
            self._file, self._retiring = None, []
        with self._write_lock:
            self._writer.close()
            if self._reader is not self._writer:
                with self._read_lock:
                    self._reader.close()
