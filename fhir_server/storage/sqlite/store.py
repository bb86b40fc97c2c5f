"""The embedded default store: one SQLite file (or memory), WAL mode.

Writers: one connection behind a lock, taken when a write unit of work first touches
the store (parsing and validation never hold it), then ``BEGIN IMMEDIATE`` takes the
database write lock, so the read-check-write of a version is atomic across threads
and across processes that share the file. Readers: a pool of connections of their
own; under WAL a reader never waits for the writer and sees the last commit as of its
first statement. ``:memory:`` has one connection for everything (another connection
would open another, empty database).

Every unit of work may carry a deadline (the request's time budget): a statement that
runs past it is interrupted, the unit of work rolls back, and the caller gets 503
too-costly; a writer that cannot get the write lock before it gets the same.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from fhir_server.errors import TooCostly
from fhir_server.search.index import IndexSet
from fhir_server.search.plan import SearchPlan
from fhir_server.storage.base import (
    HistoryPage,
    HistoryQuery,
    ResourceVersion,
    SearchResult,
    VersionConflict,
    WouldBlock,
    group_by_type,
)
from fhir_server.storage.jobs import MemoryJobStore
from fhir_server.storage.pages import MemoryPageStore
from fhir_server.storage.replay import MemoryReplayCache
from fhir_server.storage.sqlite.audit import SqliteAuditStore
from fhir_server.storage.sqlite.compile import Sql, compile_parts, compile_where
from fhir_server.storage.sqlite.combos import combo_rows
from fhir_server.storage.sqlite.combos import ensure as ensure_combos
from fhir_server.storage.sqlite.jobs import SqliteJobStore
from fhir_server.storage.sqlite.planner import Planned, plan_sql
from fhir_server.storage.sqlite.migrate import open_schema
from fhir_server.storage.sqlite.outbox import OUTBOX_SCHEMA, SqliteOutbox
from fhir_server.storage.sqlite.pages import SqlitePageStore
from fhir_server.storage.sqlite.params import ParamIds
from fhir_server.storage.sqlite.replay import SqliteReplayCache
from fhir_server.storage.sqlite.schema import INDEX_TABLES, SPAN_UPSERT, Keys, index_rows, spans
from fhir_server.storage.sqlite.tabulate import assemble, choose_driver, compile_columns
from fhir_server.storage.tabulation import Tabulation

__all__ = ["SqliteStore", "SqliteUnitOfWork", "SqliteTuning"]

_CURRENT = (
    "SELECT r.version_id, r.last_updated, r.deleted, h.method, h.body, h.patients "
    "FROM resource r JOIN history h ON h.seq = r.seq WHERE r.type = ? AND r.id = ?"
)


@dataclass(frozen=True)
class SqliteTuning:
    """Memory per connection (the storage URL's ``cache_mb``, ``reader_cache_mb`` and
    ``mmap_mb``, docs/storage.md): the writer's page cache, each reader's (up to
    ``READERS`` of them), and the bytes of the file each connection maps. Mapping is off
    by default: at 1,000,000 resources it measured no faster than the page caches
    (benchmarks/scale.py), and every mapped page read counts in the server's resident
    memory (a full ``$export`` of that store: 1.36 GB resident with a 4 GiB mapping). The
    writer's cache holds the index pages creates land in: at 1,000,000 resources 256 MB
    measured about 5% more creates per second than 64 MB (benchmarks/scale.py); SQLite
    fills it only as pages are written, so a server that mostly reads stays small."""

    writer_cache_kb: int = 256 * 1024
    reader_cache_kb: int = 16 * 1024
    mmap_bytes: int = 0


def _connect(path: str, *, readonly: bool = False, tuning: SqliteTuning = SqliteTuning()) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    conn.execute("PRAGMA busy_timeout = 30000")
    # WAL + NORMAL: a commit survives a process crash; only an OS crash or
    # power loss may lose the last transactions (sqlite.org/pragma.html#pragma_synchronous)
    conn.execute("PRAGMA synchronous = NORMAL")
    # SQLite's default page cache is 2 MB per connection: a million-resource file (1.2 GB)
    # was read through system calls again and again (issue 16: 485 GB read over one load).
    # The writer keeps a larger cache of its own (the index pages it updates).
    conn.execute(f"PRAGMA cache_size = -{(tuning.reader_cache_kb if readonly else tuning.writer_cache_kb)}")
    conn.execute(f"PRAGMA mmap_size = {tuning.mmap_bytes}")
    if readonly:
        conn.execute("PRAGMA query_only = 1")
    return conn


class SqliteStore:
    #: seconds a unit of work without a deadline of its own may run (one runaway search
    #: must not hold a worker for ever)
    QUERY_TIMEOUT = 30.0
    #: reader connections kept open (each serves one unit of work at a time)
    READERS = 8

    def __init__(self, path: str, *, query_timeout: float | None = None, readers: int | None = None,
                 tuning: SqliteTuning = SqliteTuning()):
        self.path = path
        self.query_timeout = query_timeout or self.QUERY_TIMEOUT
        self._memory = path == ":memory:"
        self._tuning = tuning
        self._writer = _connect(path, tuning=tuning)
        if not self._memory:
            self._writer.execute("PRAGMA journal_mode = WAL")
        #: the salted hashes of token and reference values, and the interned parameter ids
        self.keys: Keys = open_schema(self._writer)
        ensure_combos(self._writer)
        self.pids = ParamIds()
        self.pids.refresh(self._writer)
        self._writer.executescript(OUTBOX_SCHEMA)
        self._write_lock = threading.Lock()
        self._writer_busy = [30_000]  # the writer connection's busy timeout, as last set
        #: per connection (its id), what it last read of the counters and the newest version
        self.facts: dict[int, _Facts] = {}
        self._readers: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._reader_slots = threading.BoundedSemaphore(readers or self.READERS)
        self._all_readers: list[sqlite3.Connection] = []
        #: units of work on the event loop (``inline``): reads take a connection of their own
        #: (only the loop uses it), writers try the write lock without waiting
        self.inline = True
        self._inline_reader: sqlite3.Connection | None = None
        self.pages = MemoryPageStore() if self._memory else SqlitePageStore(path + "-pages")
        self.replay = MemoryReplayCache() if self._memory else SqliteReplayCache(path + "-pages")
        self.jobs = MemoryJobStore() if self._memory else SqliteJobStore(path + "-pages")
        #: the PDL access log, in a file of its own (``evi.db-audit``): its commits never
        #: wait for this database's writer
        self.audit = SqliteAuditStore(":memory:" if self._memory else path + "-audit",
                                      background_checkpoints=not self._memory)
        self._checkpointers = [] if self._memory else [_Checkpointer(path), _Checkpointer(path + "-audit")]
        if self._checkpointers:
            # checkpoints (and their fsync) run in the background, not inside a request's COMMIT
            self._writer.execute("PRAGMA wal_autocheckpoint = 0")
            for checkpointer in self._checkpointers:
                checkpointer.start()

    def _deadline(self, deadline: float | None) -> float:
        own = time.monotonic() + self.query_timeout
        return own if deadline is None else min(deadline, own)

    @contextmanager
    def unit_of_work(
        self, *, write: bool, deadline: float | None = None, inline: bool = False
    ) -> Iterator["SqliteUnitOfWork"]:
        deadline = self._deadline(deadline)
        if inline and not write and not self._memory:
            if self._inline_reader is None:
                self._inline_reader = _connect(self.path, readonly=True, tuning=self._tuning)
                self._inline_reader.execute("PRAGMA busy_timeout = 0")  # the loop waits for nothing
            with self._run(SqliteUnitOfWork(self._inline_reader, False, self, deadline=deadline, wait=False)) as uow:
                yield uow
            return
        if write or self._memory:
            uow = SqliteUnitOfWork(
                self._writer, write, self, lock=self._write_lock, deadline=deadline, wait=not inline, busy_ms=self._writer_busy
            )
            with self._run(uow) as ran:
                yield ran
            return
        conn = self._reader(deadline)
        try:
            with self._run(SqliteUnitOfWork(conn, False, self, deadline=deadline)) as uow:
                yield uow
        finally:
            self._readers.put(conn)
            self._reader_slots.release()

    def _reader(self, deadline: float) -> sqlite3.Connection:
        if not self._reader_slots.acquire(timeout=max(deadline - time.monotonic(), 0)):
            raise TooCostly("The server is busy: no database reader became free within the request's time budget")
        try:
            return self._readers.get_nowait()
        except queue.Empty:
            conn = _connect(self.path, readonly=True, tuning=self._tuning)
            self._all_readers.append(conn)
            return conn

    @contextmanager
    def _run(self, uow: "SqliteUnitOfWork") -> Iterator["SqliteUnitOfWork"]:
        try:
            yield uow
        except sqlite3.OperationalError as exc:
            uow.rollback()
            busy = "locked" in str(exc) or "busy" in str(exc)
            if busy and not uow.waits:  # on the event loop: nothing changed, run it elsewhere
                raise WouldBlock(str(exc)) from None
            if "interrupted" in str(exc):
                raise TooCostly("The request ran past its time budget and was stopped; nothing was changed") from None
            if busy:  # another process held the write lock too long
                raise TooCostly("The database stayed busy with another writer past the request's time "
                                "budget; nothing was changed, try again") from None
            raise
        except BaseException:
            uow.rollback()
            raise
        else:
            uow.commit()
        finally:
            uow.release()

    def close(self) -> None:
        for checkpointer in self._checkpointers:
            checkpointer.stop()
        with self._write_lock:
            self._writer.close()
        for conn in [*self._all_readers, *([self._inline_reader] if self._inline_reader else [])]:
            conn.close()
        self.pages.close()
        self.replay.close()
        self.audit.close()
        self.jobs.close()


class _Checkpointer(threading.Thread):
    """Copies the WAL back into the database once a second, on its own connection.

    PASSIVE checkpoints never block writers or readers; when the WAL has grown
    large, a RESTART checkpoint (waits for readers briefly) keeps it bounded. A RESTART
    blocks the writer until it is done, and its new WAL header makes every connection
    drop its page cache: at ~19 pages per create (one page of each B-tree it touches)
    a bound of 20,000 pages restarted every second or two of steady creates. 100,000
    pages (400 MB of WAL at 4 KiB pages) restarts every five seconds or more.
    """

    INTERVAL = 1.0
    LARGE_WAL_PAGES = 100_000

    def __init__(self, path: str):
        super().__init__(name="sqlite-checkpointer", daemon=True)
        self._path = path
        self._stopped = threading.Event()

    def run(self) -> None:
        conn = sqlite3.connect(self._path, timeout=30, isolation_level=None)
        try:
            while not self._stopped.wait(self.INTERVAL):
                self._checkpoint(conn)
            self._checkpoint(conn, "TRUNCATE")
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection, mode: str = "PASSIVE") -> None:
        try:
            busy, wal_pages, _ = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
            if mode == "PASSIVE" and wal_pages > self.LARGE_WAL_PAGES:
                conn.execute("PRAGMA wal_checkpoint(RESTART)")
        except sqlite3.Error:
            pass  # the next round tries again; SQLite stays consistent either way

    def stop(self) -> None:
        self._stopped.set()
        self.join(timeout=30)


def _version(resource_type: str, id: str, row) -> ResourceVersion:
    version_id, last_updated, deleted, method, body, patients = row
    return ResourceVersion(resource_type, id, version_id, last_updated, bool(deleted), method, body,
                           None if patients is None else tuple(patients.split()))


def _patients_column(patients: tuple[str, ...] | None) -> str | None:
    return None if patients is None else " ".join(patients)  # ids have no spaces (R4 id)


_UNKNOWN = object()


class _Facts:
    """What one connection read of the counters and of the newest stored instant, and the
    ``PRAGMA data_version`` it read them under: while that number stays, no other
    connection (of this process or another) has committed, and the connection's own
    commits keep the facts up to date (``SqliteUnitOfWork.commit``). Every unit of work
    asks both (the registry's generation, and a write's lastUpdated): one cheap pragma
    instead of two statements."""

    __slots__ = ("data_version", "counters", "newest")

    def __init__(self, data_version: int):
        self.data_version = data_version
        self.counters: dict[str, int] = {}
        self.newest: object = _UNKNOWN


class SqliteUnitOfWork:
    """Begins its SQLite transaction on first use, so that work done before touching
    the store (parsing, validation) never holds the database write lock."""

    def __init__(
        self, conn: sqlite3.Connection, write: bool, store: SqliteStore, *, lock: threading.Lock | None = None,
        deadline: float, wait: bool = True, busy_ms: list[int] | None = None,
    ):
        self._raw = conn
        self._keys = store.keys
        self._pids = store.pids
        self._busy_ms = busy_ms if busy_ms is not None else [30_000]
        #: False on the event loop: where it would wait, raise WouldBlock (nothing changed yet)
        self._wait = wait
        self._write = write
        self._lock = lock
        self._deadline = deadline
        self._locked = False
        self._handler = False
        self.started = False
        self._all_facts = store.facts
        self._facts: _Facts | None = None  # checked in this transaction
        self._bumped = False
        self._newest_written: str | None = None

    @property
    def _conn(self) -> sqlite3.Connection:
        if not self.started:
            if self._lock is not None and not self._locked:
                if not self._wait:
                    if not self._lock.acquire(blocking=False):
                        raise WouldBlock("the write lock is taken")
                elif not self._lock.acquire(timeout=max(self._deadline - time.monotonic(), 0)):
                    raise TooCostly("The server is busy: the database write lock did not become free within "
                                    "the request's time budget; nothing was changed")
                self._locked = True
            # only now is the connection this unit of work's (the writer's is shared)
            deadline = self._deadline
            self._raw.set_progress_handler(lambda: time.monotonic() > deadline, 10_000)
            self._handler = True
            if self._write:  # another process's writer: wait for it no longer than the budget
                self._set_busy_timeout(int(max(self._deadline - time.monotonic(), 0) * 1000) if self._wait else 0)
            try:
                self._raw.execute("BEGIN IMMEDIATE" if self._write else "BEGIN")
            except sqlite3.OperationalError as exc:
                if not self._wait and ("locked" in str(exc) or "busy" in str(exc)):
                    raise WouldBlock(str(exc)) from None
                raise
            self.started = True
        return self._raw

    def _set_busy_timeout(self, ms: int) -> None:
        """Only when it moves by more than a second (or to or from 0): a PRAGMA per write
        was a measurable share of a small create."""
        current = self._busy_ms[0]  # the connection's, kept by the store; only the lock holder writes it
        if abs(current - ms) > 1000 or (current == 0) != (ms == 0):
            self._raw.execute(f"PRAGMA busy_timeout = {ms}")
            self._busy_ms[0] = ms

    @property
    def waits(self) -> bool:
        return self._wait

    @property
    def outbox(self) -> SqliteOutbox:
        """The notification outbox, in this unit of work's transaction."""
        return SqliteOutbox(lambda: self._conn)

    def commit(self) -> None:
        if self.started:
            self._raw.execute("COMMIT")
            self.started = False
            if self._write:
                self._pids.committed()
                self._committed_facts()

    def rollback(self) -> None:
        if self.started:
            self.started = False
            if self._raw.in_transaction:  # an interrupted write may have rolled back already
                self._raw.execute("ROLLBACK")
            if self._write:
                self._pids.rolled_back(self._raw)
            # what it read after its own writes was never committed
            self._all_facts.pop(id(self._raw), None)
        self._facts, self._bumped, self._newest_written = None, False, None

    def _committed_facts(self) -> None:
        """Its own commit does not move the connection's data_version: the facts follow it."""
        facts = self._facts or self._all_facts.get(id(self._raw))
        if facts is not None:
            if self._bumped:
                facts.counters.clear()
            if self._newest_written is not None and facts.newest is not _UNKNOWN:
                facts.newest = max(facts.newest or "", self._newest_written)  # type: ignore[type-var]
        self._facts, self._bumped, self._newest_written = None, False, None

    def _checked_facts(self) -> _Facts:
        """The connection's facts, valid for this transaction (read at its first use)."""
        if self._facts is None:
            data_version = self._conn.execute("PRAGMA data_version").fetchone()[0]
            facts = self._all_facts.get(id(self._raw))
            if facts is None or facts.data_version != data_version:
                facts = self._all_facts[id(self._raw)] = _Facts(data_version)
            self._facts = facts
        return self._facts

    def release(self) -> None:
        if self._handler:
            self._handler = False
            self._raw.set_progress_handler(None, 0)
        if self._locked:
            self._locked = False
            self._lock.release()

    # -- counters: a number per name that writers raise, so that every process sees a change
    def generation(self, name: str) -> int:
        facts = self._checked_facts()
        found = facts.counters.get(name)
        if found is None:
            row = self._conn.execute("SELECT n FROM counters WHERE name = ?", (name,)).fetchone()
            found = facts.counters[name] = row[0] if row else 0
        return found

    def bump(self, name: str) -> None:
        self._conn.execute(
            "INSERT INTO counters (name, n) VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET n = n + 1", (name,)
        )
        self._bumped = True
        self._checked_facts().counters.pop(name, None)  # read again, this transaction's value

    def current(self, resource_type: str, id: str) -> ResourceVersion | None:
        row = self._conn.execute(_CURRENT, (resource_type, id)).fetchone()
        return _version(resource_type, id, row) if row else None

    def version(self, resource_type: str, id: str, version_id: int) -> ResourceVersion | None:
        row = self._conn.execute(
            "SELECT version_id, last_updated, deleted, method, body, patients FROM history "
            "WHERE type = ? AND id = ? AND version_id = ?",
            (resource_type, id, version_id),
        ).fetchone()
        return _version(resource_type, id, row) if row else None

    def write(self, version: ResourceVersion, index: IndexSet | None) -> None:
        conn = self._conn
        t, i = version.resource_type, version.id
        try:
            seq = conn.execute(
                "INSERT INTO history (type, id, version_id, last_updated, method, deleted, body, patients) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (t, i, version.version_id, version.last_updated, version.method, int(version.deleted), version.body,
                 _patients_column(version.patients)),
            ).lastrowid
        except sqlite3.IntegrityError:
            raise VersionConflict(f"{t}/{i} version {version.version_id} already exists") from None
        if self._newest_written is None or version.last_updated > self._newest_written:
            self._newest_written = version.last_updated
        rid = conn.execute(
            "INSERT INTO resource (type, id, version_id, last_updated, deleted, seq, hkey) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (type, id) DO UPDATE SET version_id = excluded.version_id, "
            "last_updated = excluded.last_updated, deleted = excluded.deleted, seq = excluded.seq RETURNING rid",
            (t, i, version.version_id, version.last_updated, int(version.deleted), seq, self._keys.resource(t, i)),
        ).fetchone()[0]
        if version.version_id > 1:
            self._delete_index(rid)
        if index is not None:
            self._insert_index(rid, t, index)

    def _delete_index(self, rid: int) -> None:
        for table in (*INDEX_TABLES.values(), "idx_combo"):
            self._conn.execute(f"DELETE FROM {table} WHERE rid = ?", (rid,))

    def _insert_index(self, rid: int, t: str, index: IndexSet) -> None:
        conn = self._conn
        pids = self._pids

        def pid_of(code: str) -> int:
            return pids.intern(conn, t, code)

        for kind, (sql, rows) in index_rows(rid, pid_of, index.entries, self._keys).items():
            conn.executemany(sql, rows)
            if kind == "date":  # in the same transaction: a range query relies on it
                conn.executemany(SPAN_UPSERT, list(spans(rows).items()))
        combined = combo_rows(rid, t, index.entries, self._keys)
        if combined:
            conn.executemany("INSERT OR IGNORE INTO idx_combo (cid, k1, k2, k3, high, rid) VALUES (?, ?, ?, ?, ?, ?)", combined)

    def reindex(self, resource_type: str, id: str, index: IndexSet) -> None:
        row = self._conn.execute("SELECT rid FROM resource WHERE type = ? AND id = ?", (resource_type, id)).fetchone()
        if row is None:
            return
        self._delete_index(row[0])
        self._insert_index(row[0], resource_type, index)

    def current_ids(self, resource_type: str, after: str | None, limit: int) -> list[str]:
        rows = self._conn.execute(
            "SELECT id FROM resource WHERE type = ? AND deleted = 0 AND id > ? ORDER BY id LIMIT ?",
            (resource_type, after or "", limit),
        ).fetchall()
        return [r[0] for r in rows]

    def deleted_ids(self, resource_type: str, since: str, after: str | None, limit: int) -> list[str]:
        rows = self._conn.execute(
            "SELECT id FROM resource WHERE type = ? AND deleted = 1 AND last_updated > ? AND id > ? ORDER BY id LIMIT ?",
            (resource_type, since, after or "", limit),
        ).fetchall()
        return [r[0] for r in rows]

    def history(self, query: HistoryQuery) -> HistoryPage:
        where, args = [], []
        if query.resource_type is not None:
            where.append("type = ?")
            args.append(query.resource_type)
        if query.id is not None:
            where.append("id = ?")
            args.append(query.id)
        if query.since is not None:
            where.append("last_updated >= ?")
            args.append(query.since)
        if query.at is not None:
            # current during [low, high]: written by high, and not replaced before low
            where.append(
                "last_updated <= ? AND NOT EXISTS (SELECT 1 FROM history later WHERE later.type = history.type "
                "AND later.id = history.id AND later.version_id > history.version_id AND later.last_updated <= ?)"
            )
            args.extend([query.at[1], query.at[0]])
        if query.visible is not None:
            sql = self._sql()
            visible = compile_where(query.visible, sql)
            where.append(f"(type, id) IN (SELECT r.type, r.id FROM resource r WHERE {visible})")
            args.extend(sql.args)
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        total = self._conn.execute(f"SELECT COUNT(*) FROM history{clause}", args).fetchone()[0]
        if query.before_cursor is not None:
            clause += (" AND " if where else " WHERE ") + "seq < ?"
            args.append(query.before_cursor)
        rows = self._conn.execute(
            "SELECT seq, type, id, version_id, last_updated, deleted, method, body, patients "
            f"FROM history{clause} ORDER BY seq DESC LIMIT ?",
            [*args, query.count + 1],
        ).fetchall()
        more = len(rows) > query.count
        rows = rows[: query.count]
        versions = [_version(r[1], r[2], r[3:]) for r in rows]  # (seq, type, id, then _version's row)
        return HistoryPage(versions, total, rows[-1][0] if more and rows else None)

    def _sql(self) -> Sql:
        return Sql(self._pids, self._keys)

    def _compiled(self, compile):
        """``compile(sql)`` with the parameter ids as of this transaction: compiled again
        after a refresh when it met a parameter this process had not seen interned."""
        sql = self._sql()
        text = compile(sql)
        if sql.missed and self._pids.stale(self._conn):
            self._pids.refresh(self._conn)
            sql = self._sql()
            text = compile(sql)
        return text, sql.args

    def _planned(self, plan: SearchPlan) -> Planned:
        def compile(sql):
            base, base_args, parts = compile_parts(plan, sql)
            return plan_sql(plan, sql, base, base_args, parts)

        return self._compiled(compile)[0]

    #: pages after the first may start from a cursor (``after``) and leave out later
    #: creates (``high_water``): see storage/sqlite/planner.py
    keyset = True

    def search(
        self, plan: SearchPlan, *, with_total: bool, limit: int | None = None, offset: int | None = None,
        after: list | None = None, high_water: int | None = None,
    ) -> SearchResult:
        planned = self._planned(plan)
        total = planned.count(self._conn) if with_total else None
        limit = plan.count if limit is None else limit
        if limit == 0:
            return SearchResult([], total)
        rows = planned.page(self._conn, limit, plan.offset if offset is None else offset, after, high_water)
        return SearchResult([(t, i) for t, i, _ in rows], total, [c for _, _, c in rows])

    def count(self, plan: SearchPlan, cap: int | None = None, *, estimate: bool = False) -> int:
        """Matches of ``plan``, or ``cap`` when there are at least that many; with
        ``estimate``, possibly more (see ``Planned.estimate``)."""
        planned = self._planned(plan)
        return planned.estimate(self._conn) if estimate else planned.count(self._conn, cap)

    def high_water(self) -> int:
        """The largest resource rid: what a search starting now can see."""
        return self._conn.execute("SELECT COALESCE(MAX(rid), 0) FROM resource").fetchone()[0]

    def tabulate(self, tabulation: Tabulation) -> list[tuple]:
        """Driven by its smallest condition (``tabulate.choose_driver``: a date range read
        between its bounds, one reference target...), so a month's tabulation reads the
        month's index rows and probes the other conditions, not every resource of the type."""
        def compile(sql):
            # columns first: their placeholders come first in the text (sql.args)
            return compile_columns(tabulation, sql), *compile_parts(tabulation.plan, sql)

        (columns, base, base_args, parts), column_args = self._compiled(compile)
        text, args = assemble(columns, base, base_args, parts, choose_driver(self._conn, parts))
        return [tuple(row) for row in self._conn.execute(text, [*column_args, *args]).fetchall()]

    def load(self, resource_type: str, ids: list[str]) -> list[ResourceVersion]:
        if not ids:
            return []
        found: dict[str, ResourceVersion] = {}
        for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
            chunk = ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            rows = self._conn.execute(
                "SELECT r.id, r.version_id, r.last_updated, r.deleted, h.method, h.body, h.patients "
                f"FROM resource r JOIN history h ON h.seq = r.seq WHERE r.type = ? AND r.id IN ({marks})",
                [resource_type, *chunk],
            ).fetchall()
            for row in rows:
                if not row[3]:
                    found[row[0]] = _version(resource_type, row[0], row[1:])
        return [found[i] for i in ids if i in found]

    def load_refs(self, refs: list[tuple[str, str]]) -> list[ResourceVersion]:
        by_type = group_by_type(refs)
        found = {(v.resource_type, v.id): v for t, ids in by_type.items() for v in self.load(t, ids)}
        return [found[r] for r in refs if r in found]

    def references_from(self, source_type, ids, param, target_type) -> list[tuple[str, str]]:
        if param is not None:
            pid = self._pid(source_type, param)
            if pid is None:
                return []
        out: list[tuple[str, str]] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            sql = (
                "SELECT x.target_type, x.target_id FROM resource r CROSS JOIN idx_reference x ON x.rid = r.rid "
                f"WHERE r.type = ? AND r.id IN ({', '.join('?' for _ in chunk)}) "
                "AND x.url IS NULL AND x.target_type IS NOT NULL"
            )
            args: list = [source_type, *chunk]
            if param is not None:
                sql += " AND x.pid = ?"
                args.append(pid)
            if target_type is not None:
                sql += " AND x.target_type = ?"
                args.append(target_type)
            out.extend((r[0], r[1]) for r in self._conn.execute(sql, args).fetchall())
        return list(dict.fromkeys(out))

    def references_to(self, source_type, param, targets) -> list[tuple[str, str]]:
        if param is not None:
            pid = self._pid(source_type, param)
            pids = [pid] if pid is not None else []
        else:
            pids = self._pids_of_type(source_type)
        if not pids:
            return []
        out: list[tuple[str, str]] = []
        keys = [self._keys.resource(t, i) for t, i in targets]
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            rows = self._conn.execute(
                "SELECT r.type, r.id FROM idx_reference x CROSS JOIN resource r ON r.rid = x.rid "
                f"WHERE x.pid IN ({', '.join('?' for _ in pids)}) AND x.htarget IN ({', '.join('?' for _ in chunk)}) "
                "AND x.url IS NULL ORDER BY x.rid",
                [*pids, *chunk],
            ).fetchall()
            out.extend((r[0], r[1]) for r in rows)
        return list(dict.fromkeys(out))

    def _pid(self, resource_type: str, code: str) -> int | None:
        found = self._pids.get(resource_type, code)
        if found is None and self._pids.stale(self._conn):
            self._pids.refresh(self._conn)
            found = self._pids.get(resource_type, code)
        return found

    def _pids_of_type(self, resource_type: str) -> list[int]:
        if self._pids.stale(self._conn):
            self._pids.refresh(self._conn)
        return self._pids.of_type(resource_type)

    def versions_since(self, after: int | None, limit: int) -> list[tuple[int, ResourceVersion]]:
        rows = self._conn.execute(
            "SELECT seq, type, id, version_id, last_updated, deleted, method, body, patients FROM history "
            "WHERE seq > ? ORDER BY seq LIMIT ?",
            (after or 0, limit),
        ).fetchall()
        return [(r[0], _version(r[1], r[2], r[3:])) for r in rows]

    def statistics(self) -> dict[str, tuple[int, int]]:
        current = dict(self._conn.execute("SELECT type, COUNT(*) FROM resource WHERE deleted = 0 GROUP BY type").fetchall())
        versions = dict(self._conn.execute("SELECT type, COUNT(*) FROM history GROUP BY type").fetchall())
        return {t: (current.get(t, 0), versions[t]) for t in versions}

    def guard(self, key: str) -> None:
        # a write unit of work holds SQLite's one write lock (BEGIN IMMEDIATE) from its
        # first statement, which serializes it with every other writer of the file
        self._conn  # noqa: B018  (starts the transaction)

    def newest_instant(self) -> str | None:
        facts = self._checked_facts()
        if facts.newest is _UNKNOWN:  # read in this transaction: its own writes included
            row = self._conn.execute("SELECT last_updated FROM history ORDER BY seq DESC LIMIT 1").fetchone()
            facts.newest = row[0] if row else None
        newest = facts.newest
        if self._newest_written is not None and (newest is None or newest < self._newest_written):
            return self._newest_written  # written after the facts were read
        return newest  # type: ignore[return-value]
