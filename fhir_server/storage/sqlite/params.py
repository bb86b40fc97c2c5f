"""Interned search parameters: each (resource type, parameter code) that has ever been
indexed is an integer ``pid`` in ``search_param``, and index rows carry it instead of the
two strings. A process keeps the table in memory; a parameter another process interned
since is found by reloading it (``refresh``), which the store does when a query met a
parameter it did not know."""

from __future__ import annotations

import sqlite3
import threading

__all__ = ["ParamIds"]


class ParamIds:
    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], int] = {}
        self._by_code: dict[str, list[tuple[str, int]]] = {}
        self._lock = threading.Lock()
        self._newest = 0
        #: interned inside the write transaction still open (only the writer interns)
        self._uncommitted = False

    def refresh(self, conn: sqlite3.Connection) -> None:
        rows = conn.execute("SELECT pid, type, code FROM search_param").fetchall()
        ids = {(t, c): pid for pid, t, c in rows}
        by_code: dict[str, list[tuple[str, int]]] = {}
        for (t, c), pid in ids.items():
            by_code.setdefault(c, []).append((t, pid))
        with self._lock:
            self._ids, self._by_code = ids, by_code
            self._newest = max(ids.values(), default=0)

    def stale(self, conn: sqlite3.Connection) -> bool:
        """Whether another connection interned a parameter this process has not seen."""
        newest = conn.execute("SELECT MAX(pid) FROM search_param").fetchone()[0] or 0
        return newest > self._newest

    def get(self, resource_type: str, code: str) -> int | None:
        return self._ids.get((resource_type, code))

    def of_type(self, resource_type: str) -> list[int]:
        return [pid for (t, _), pid in self._ids.items() if t == resource_type]

    def of_code(self, code: str, types: tuple[str, ...] | None = None) -> list[int]:
        """The pids of ``code`` on every type (of ``types``) that has indexed it."""
        return [pid for t, pid in self._by_code.get(code, ()) if types is None or t in types]

    def committed(self) -> None:
        self._uncommitted = False

    def rolled_back(self, conn: sqlite3.Connection) -> None:
        """Forget the ids interned by the transaction just rolled back: the next writer
        could be given the same numbers for other parameters."""
        if self._uncommitted:
            self._uncommitted = False
            self.refresh(conn)

    def intern(self, conn: sqlite3.Connection, resource_type: str, code: str) -> int:
        """The pid of a parameter, made on first use (inside the caller's write transaction)."""
        found = self._ids.get((resource_type, code))
        if found is not None:
            return found
        self._uncommitted = True
        conn.execute("INSERT OR IGNORE INTO search_param (type, code) VALUES (?, ?)", (resource_type, code))
        pid = conn.execute("SELECT pid FROM search_param WHERE type = ? AND code = ?", (resource_type, code)).fetchone()[0]
        with self._lock:
            self._ids = {**self._ids, (resource_type, code): pid}
            self._by_code = {**self._by_code, code: [*self._by_code.get(code, ()), (resource_type, pid)]}
            self._newest = max(self._newest, pid)
        return pid
