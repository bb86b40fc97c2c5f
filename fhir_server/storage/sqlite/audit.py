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
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Sequence

from fhir_server.storage.audit import GENESIS, AuditAnchor, AuditEntry, AuditQuery, AuditRow, Seal
from fhir_server.storage.base import WouldBlock

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
"""

_COLUMNS = "seq, patient, recorded, chain, body"


def _row(r) -> AuditRow:
    return AuditRow(r[0], r[1], r[2], r[3], bytes(r[4]))


class SqliteAuditStore:
    """``background_checkpoints``: the store's checkpointer thread copies the WAL back
    (off the appends' path); otherwise SQLite checkpoints inside a commit now and then."""

    #: a small append takes well under a millisecond and can tell at once that it would
    #: wait: the writer runs it on the event loop (``AuditWriter``)
    inline = True

    def __init__(self, path: str, *, background_checkpoints: bool = False):
        self._memory = path == ":memory:"
        self._writer = self._connect(path)
        # small pages (a new file's; an existing one keeps its own): a commit writes every page
        # it changed to the WAL whole, and one event changes a page of the table and one of
        # each index; at 1 KiB an append writes about a quarter of what 4 KiB pages cost
        self._writer.execute("PRAGMA page_size = 1024")
        if not self._memory:
            self._writer.execute("PRAGMA journal_mode = WAL")
            if background_checkpoints:
                self._writer.execute("PRAGMA wal_autocheckpoint = 0")
        self._writer.executescript(_SCHEMA)
        self._write_lock = threading.Lock()
        self._busy_ms = 30_000  # the writer connection's busy timeout, as last set
        #: the last event this connection appended (seq, chain), None: read it from the file
        self._tip: tuple[int, str] | None = None
        # one connection of :memory: is the whole database; a file gets a reader of its own,
        # so queries never wait for an append
        self._reader = self._writer if self._memory else self._connect(path)
        self._read_lock = self._write_lock if self._memory else threading.Lock()

    @staticmethod
    def _connect(path: str) -> sqlite3.Connection:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def append(self, entries: Sequence[AuditEntry], seal: Seal, *, wait: bool = True) -> list[AuditRow]:
        if not entries:
            return []
        if not self._write_lock.acquire(blocking=wait):
            raise WouldBlock("another append of this process is under way")
        try:
            return self._append(entries, seal, wait)
        finally:
            self._write_lock.release()

    def _append(self, entries: Sequence[AuditEntry], seal: Seal, wait: bool) -> list[AuditRow]:
        """Sealed after the last event this connection knows of: when another process
        appended meanwhile, the first row's seq is taken (a primary-key conflict), and
        the entries are sealed again after the last event stored. The transaction saves
        reading the last event on every append (most appends follow this process's own)."""
        self._wait_for_others(wait)
        if self._tip is not None:
            try:
                return self._insert(entries, seal, self._tip, wait)
            except sqlite3.IntegrityError:  # another process appended: read where the log ends
                self._tip = None
        return self._insert(entries, seal, None, wait)

    def _insert(self, entries: Sequence[AuditEntry], seal: Seal, tip: tuple[int, str] | None,
                wait: bool) -> list[AuditRow]:
        conn = self._writer
        # one row after a known tip is one statement (its own transaction); anything else one
        # write transaction: every process's appends queue for the file's write lock
        single = tip is not None and len(entries) == 1
        try:
            if not single:
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
            if not single:
                conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if not wait and ("locked" in str(exc) or "busy" in str(exc)):
                raise WouldBlock(str(exc)) from None  # nothing was stored
            raise
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._tip = (rows[-1].seq, rows[-1].chain)
        return rows

    def _wait_for_others(self, wait: bool) -> None:
        """Another process's append: wait up to 30 s, or (on the event loop) not at all.
        Set only when it changes (the caller holds the write lock)."""
        wanted = 30_000 if wait else 0
        if self._busy_ms != wanted:
            self._busy_ms = wanted
            self._writer.execute(f"PRAGMA busy_timeout = {wanted}")

    @staticmethod
    def _head(conn: sqlite3.Connection) -> tuple[int, str]:
        """The last event's seq and chain value (after a purge of everything: the anchor's)."""
        row = conn.execute("SELECT seq, chain FROM audit_event ORDER BY seq DESC LIMIT 1").fetchone()
        if row is not None:
            return row[0], row[1]
        anchor = conn.execute("SELECT seq, chain FROM audit_anchor").fetchone()
        return (anchor[0], anchor[1]) if anchor is not None else (0, GENESIS)

    def _read(self, sql: str, args: Sequence = ()) -> list:
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
        with self._write_lock:
            conn = self._writer
            self._wait_for_others(True)
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
        with self._write_lock:
            self._writer.close()
            if self._reader is not self._writer:
                with self._read_lock:
                    self._reader.close()
