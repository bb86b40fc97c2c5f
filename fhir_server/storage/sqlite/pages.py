"""Search snapshots (the state behind ``next`` links) kept where every server process
on the same database finds them, and where a restart does not lose them.

They live in a file of their own beside the database (``evi.db-pages``): saving one is
a write, and on the database itself it would wait for the one writer (a long
transaction would stall the first page of every search). ``:memory:`` keeps them in
the process (``storage.pages.MemoryPageStore``), as it keeps everything.
"""

from __future__ import annotations

import sqlite3
import threading
import time

__all__ = ["SqlitePageStore", "open_side_file"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshot (
    token   TEXT PRIMARY KEY,
    expires REAL NOT NULL,   -- seconds since the epoch (wall clock: shared by processes)
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS snapshot_expires ON snapshot (expires);
"""

#: expired snapshots are swept once per this many saves
_SWEEP_EVERY = 200


def open_side_file(path: str, schema: str) -> sqlite3.Connection:
    """A connection to a small file beside the database (snapshots, replay keys, export
    jobs share ``evi.db-pages``), in WAL mode so that its writes never wait for the
    database's writer, with ``schema`` made."""
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.executescript(schema)
    return conn


class SqlitePageStore:
    def __init__(self, path: str):
        self._conn = open_side_file(path, _SCHEMA)
        self._lock = threading.Lock()
        self._saves = 0

    def put(self, token: str, payload: bytes, ttl_seconds: float) -> None:
        now = time.time()
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO snapshot (token, expires, payload) VALUES (?, ?, ?)",
                (token, now + ttl_seconds, payload),
            )
            self._saves += 1
            if self._saves % _SWEEP_EVERY == 0:
                self._conn.execute("DELETE FROM snapshot WHERE expires < ?", (now,))

    def get(self, token: str) -> bytes | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT payload FROM snapshot WHERE token = ? AND expires >= ?", (token, time.time())
            ).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        with self._lock:
            self._conn.close()
