"""The replay cache (``storage.replay``) of a SQLite store, in the side file of the
search snapshots (``evi.db-pages``): recording a key is a write, and on the database
itself it would wait for the one writer. One statement decides, so two processes
offering the same key at once cannot both win: SQLite serialises the writes and the
second one finds the row."""

from __future__ import annotations

import threading
import time

from fhir_server.storage.sqlite.pages import open_side_file

__all__ = ["SqliteReplayCache"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS used_once (
    key     TEXT PRIMARY KEY,
    expires REAL NOT NULL   -- seconds since the epoch (wall clock: shared by processes)
);
CREATE INDEX IF NOT EXISTS used_once_expires ON used_once (expires);
"""

#: a new key, or one whose earlier use expired, takes the row; a live one changes nothing
_OFFER = (
    "INSERT INTO used_once (key, expires) VALUES (?, ?) "
    "ON CONFLICT (key) DO UPDATE SET expires = excluded.expires WHERE used_once.expires <= ?"
)

#: expired keys are swept once per this many offers
_SWEEP_EVERY = 500


class SqliteReplayCache:
    def __init__(self, path: str):
        self._conn = open_side_file(path, _SCHEMA)
        self._lock = threading.Lock()
        self._offers = 0

    def once(self, key: str, ttl_seconds: float) -> bool:
        now = time.time()
        with self._lock:
            changed = self._conn.execute(_OFFER, (key, now + ttl_seconds, now)).rowcount
            self._offers += 1
            if self._offers % _SWEEP_EVERY == 0:
                self._conn.execute("DELETE FROM used_once WHERE expires <= ?", (now,))
        return changed == 1

    def close(self) -> None:
        with self._lock:
            self._conn.close()
