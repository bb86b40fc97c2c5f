"""The embedded default store: one SQLite file (or memory), WAL mode.

One connection serves the process behind a lock: SQLite has a single writer
anyway, and with the GIL a second connection buys little. ``BEGIN IMMEDIATE``
takes the database write lock at the start of a write unit of work, so the
read-check-write of a version is atomic across threads and across processes
that share the file.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from typing import Iterator

from fhir_server.search.index import IndexSet
from fhir_server.search.plan import SearchPlan
from fhir_server.storage.base import (
    HistoryPage,
    HistoryQuery,
    ResourceVersion,
    SearchResult,
    VersionConflict,
)
from fhir_server.storage.sqlite.compile import compile_order, compile_where
from fhir_server.storage.sqlite.schema import SCHEMA

__all__ = ["SqliteStore", "SqliteUnitOfWork"]

_CURRENT = (
    "SELECT r.version_id, r.last_updated, r.deleted, h.method, h.body "
    "FROM resource r JOIN history h ON h.seq = r.seq WHERE r.type = ? AND r.id = ?"
)


class SqliteStore:
    def __init__(self, path: str):
        self.path = path
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._conn.execute("PRAGMA busy_timeout = 30000")
        if path != ":memory:":
            self._conn.execute("PRAGMA journal_mode = WAL")
        # WAL + NORMAL: a commit survives a process crash; only an OS crash or
        # power loss may lose the last transactions (sqlite.org/pragma.html#pragma_synchronous)
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.executescript(SCHEMA)

    @contextmanager
    def unit_of_work(self, *, write: bool) -> Iterator["SqliteUnitOfWork"]:
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield SqliteUnitOfWork(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _version(resource_type: str, id: str, row) -> ResourceVersion:
    version_id, last_updated, deleted, method, body = row
    return ResourceVersion(resource_type, id, version_id, last_updated, bool(deleted), method, body)


class SqliteUnitOfWork:
    def __init__(self, conn: sqlite3.Connection):
        self._conn = conn

    def current(self, resource_type: str, id: str) -> ResourceVersion | None:
        row = self._conn.execute(_CURRENT, (resource_type, id)).fetchone()
        return _version(resource_type, id, row) if row else None

    def version(self, resource_type: str, id: str, version_id: int) -> ResourceVersion | None:
        row = self._conn.execute(
            "SELECT version_id, last_updated, deleted, method, body FROM history "
            "WHERE type = ? AND id = ? AND version_id = ?",
            (resource_type, id, version_id),
        ).fetchone()
        return _version(resource_type, id, row) if row else None

    def write(self, version: ResourceVersion, index: IndexSet | None) -> None:
        conn = self._conn
        t, i = version.resource_type, version.id
        try:
            seq = conn.execute(
                "INSERT INTO history (type, id, version_id, last_updated, method, deleted, body) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (t, i, version.version_id, version.last_updated, version.method, int(version.deleted), version.body),
            ).lastrowid
        except sqlite3.IntegrityError:
            raise VersionConflict(f"{t}/{i} version {version.version_id} already exists") from None
        conn.execute(
            "INSERT INTO resource (type, id, version_id, last_updated, deleted, seq) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (type, id) DO UPDATE SET version_id = excluded.version_id, "
            "last_updated = excluded.last_updated, deleted = excluded.deleted, seq = excluded.seq",
            (t, i, version.version_id, version.last_updated, int(version.deleted), seq),
        )
        if version.version_id > 1:
            conn.execute("DELETE FROM idx_token WHERE type = ? AND id = ?", (t, i))
            conn.execute("DELETE FROM idx_date WHERE type = ? AND id = ?", (t, i))
        if index is not None:
            if index.tokens:
                conn.executemany(
                    "INSERT INTO idx_token (type, id, param, system, code) VALUES (?, ?, ?, ?, ?)",
                    [(t, i, e.param, e.system, e.code) for e in index.tokens],
                )
            if index.dates:
                conn.executemany(
                    "INSERT INTO idx_date (type, id, param, low, high) VALUES (?, ?, ?, ?, ?)",
                    [(t, i, e.param, e.low, e.high) for e in index.dates],
                )

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
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        total = self._conn.execute(f"SELECT COUNT(*) FROM history{clause}", args).fetchone()[0]
        if query.before_cursor is not None:
            clause += (" AND " if where else " WHERE ") + "seq < ?"
            args.append(query.before_cursor)
        rows = self._conn.execute(
            "SELECT seq, type, id, version_id, last_updated, deleted, method, body "
            f"FROM history{clause} ORDER BY seq DESC LIMIT ?",
            [*args, query.count + 1],
        ).fetchall()
        more = len(rows) > query.count
        rows = rows[: query.count]
        versions = [ResourceVersion(r[1], r[2], r[3], r[4], bool(r[5]), r[6], r[7]) for r in rows]
        return HistoryPage(versions, total, rows[-1][0] if more and rows else None)

    def search(self, plan: SearchPlan, *, with_total: bool) -> SearchResult:
        where, args = compile_where(plan)
        total = None
        if with_total:
            total = self._conn.execute(f"SELECT COUNT(*) FROM resource r WHERE {where}", args).fetchone()[0]
        if plan.count == 0:
            return SearchResult([], total)
        rows = self._conn.execute(
            f"SELECT r.id FROM resource r WHERE {where} ORDER BY {compile_order(plan)} LIMIT ? OFFSET ?",
            [*args, plan.count, plan.offset],
        ).fetchall()
        return SearchResult([r[0] for r in rows], total)

    def load(self, resource_type: str, ids: list[str]) -> list[ResourceVersion]:
        if not ids:
            return []
        found: dict[str, ResourceVersion] = {}
        for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
            chunk = ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            rows = self._conn.execute(
                "SELECT r.id, r.version_id, r.last_updated, r.deleted, h.method, h.body "
                f"FROM resource r JOIN history h ON h.seq = r.seq WHERE r.type = ? AND r.id IN ({marks})",
                [resource_type, *chunk],
            ).fetchall()
            for row in rows:
                if not row[3]:
                    found[row[0]] = _version(resource_type, row[0], row[1:])
        return [found[i] for i in ids if i in found]

    def newest_instant(self) -> str | None:
        row = self._conn.execute("SELECT last_updated FROM history ORDER BY seq DESC LIMIT 1").fetchone()
        return row[0] if row else None
