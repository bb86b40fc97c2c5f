"""The notification outbox (``storage.outbox``) of a SQLite store: two tables of the main
database (``schema.py``: ``notify_stream``, ``notify_event``), so an event commits or rolls
back with the write that caused it. Every write unit of work holds SQLite's one write lock,
which serialises numbering and leasing across threads and processes sharing the file."""

from __future__ import annotations

import sqlite3
from typing import Callable

import orjson

from fhir_server.storage.outbox import STREAM_STATE, Event, Stream, StreamConfig

__all__ = ["SqliteOutbox", "OUTBOX_SCHEMA"]

OUTBOX_SCHEMA = """
CREATE TABLE IF NOT EXISTS notify_stream (
    name          TEXT PRIMARY KEY,     -- Subscription/{id} or relay/{key}
    topic         TEXT NOT NULL,
    criteria      TEXT NOT NULL,        -- JSON array of filter criteria
    owner         TEXT,                 -- notify's JSON of the owning caller (NULL: unrestricted)
    status        TEXT NOT NULL,
    heartbeat     INTEGER,
    numbered      INTEGER NOT NULL DEFAULT 0,
    delivered     INTEGER NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_attempt  REAL NOT NULL DEFAULT 0,
    failing_since REAL,
    last_error    TEXT,
    last_success  REAL,
    last_sent     REAL,
    lease_owner   TEXT,
    lease_until   REAL NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- events in the order they were appended (seq); number is NULL until numbered
CREATE TABLE IF NOT EXISTS notify_event (
    seq           INTEGER PRIMARY KEY,
    stream        TEXT NOT NULL,
    number        INTEGER,
    topic         TEXT NOT NULL,
    focus_type    TEXT NOT NULL,
    focus_id      TEXT NOT NULL,
    focus_version INTEGER NOT NULL,
    at            TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notify_event_number ON notify_event (stream, number);
CREATE INDEX IF NOT EXISTS notify_event_unnumbered ON notify_event (stream, seq) WHERE number IS NULL;
"""

_STREAM_COLUMNS = (
    "name, topic, criteria, owner, status, heartbeat, numbered, delivered, attempts, next_attempt, "
    "failing_since, last_error, last_success, last_sent, lease_owner, lease_until"
)
_RESTART = "attempts = 0, next_attempt = 0, failing_since = NULL, last_error = NULL"


def _stream(row) -> Stream:
    (name, topic, criteria, owner, status, heartbeat, numbered, delivered, attempts, next_attempt,
     failing_since, last_error, last_success, last_sent, lease_owner, lease_until) = row
    config = StreamConfig(name, topic, tuple(orjson.loads(criteria)), owner, status, heartbeat)
    return Stream(config, numbered, delivered, attempts, next_attempt, failing_since, last_error, last_success,
                  last_sent, lease_owner, lease_until)


class SqliteOutbox:
    """Bound to one unit of work: ``connection()`` starts its transaction on first use."""

    def __init__(self, connection: Callable[[], sqlite3.Connection]):
        self._connection = connection

    @property
    def _conn(self) -> sqlite3.Connection:
        return self._connection()

    def save_stream(self, config: StreamConfig, *, restart: bool = False) -> None:
        c = config
        self._conn.execute(
            "INSERT INTO notify_stream (name, topic, criteria, owner, status, heartbeat) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET topic = excluded.topic, criteria = excluded.criteria, "
            "owner = excluded.owner, status = excluded.status, heartbeat = excluded.heartbeat"
            + (f", {_RESTART}" if restart else ""),
            (c.name, c.topic, orjson.dumps(list(c.criteria)).decode(), c.owner, c.status, c.heartbeat),
        )

    def drop_stream(self, name: str) -> None:
        self._conn.execute("DELETE FROM notify_event WHERE stream = ?", (name,))
        self._conn.execute("DELETE FROM notify_stream WHERE name = ?", (name,))

    def stream(self, name: str) -> Stream | None:
        row = self._conn.execute(f"SELECT {_STREAM_COLUMNS} FROM notify_stream WHERE name = ?", (name,)).fetchone()
        return _stream(row) if row else None

    def streams(self, statuses: tuple[str, ...] | None = None) -> list[Stream]:
        if statuses is None:
            rows = self._conn.execute(f"SELECT {_STREAM_COLUMNS} FROM notify_stream ORDER BY name").fetchall()
        else:
            marks = ", ".join("?" for _ in statuses)
            rows = self._conn.execute(
                f"SELECT {_STREAM_COLUMNS} FROM notify_stream WHERE status IN ({marks}) ORDER BY name", statuses
            ).fetchall()
        return [_stream(r) for r in rows]

    def append(self, stream: str, topic: str, focus: tuple[str, str, int], at: str) -> None:
        self._conn.execute(
            "INSERT INTO notify_event (stream, topic, focus_type, focus_id, focus_version, at) VALUES (?, ?, ?, ?, ?, ?)",
            (stream, topic, *focus, at),
        )

    def number(self, stream: str) -> int:
        conn = self._conn
        row = conn.execute("SELECT numbered FROM notify_stream WHERE name = ?", (stream,)).fetchone()
        if row is None:  # the stream is gone: its late events have no one to go to
            conn.execute("DELETE FROM notify_event WHERE stream = ? AND number IS NULL", (stream,))
            return 0
        last = row[0]
        seqs = [r[0] for r in conn.execute(
            "SELECT seq FROM notify_event WHERE stream = ? AND number IS NULL ORDER BY seq", (stream,)
        ).fetchall()]
        if not seqs:
            return last
        conn.executemany("UPDATE notify_event SET number = ? WHERE seq = ?",
                         [(last + i, seq) for i, seq in enumerate(seqs, 1)])
        last += len(seqs)
        conn.execute("UPDATE notify_stream SET numbered = ? WHERE name = ?", (last, stream))
        return last

    def unnumbered(self) -> dict[str, int]:
        rows = self._conn.execute(
            "SELECT stream, COUNT(*) FROM notify_event WHERE number IS NULL GROUP BY stream"
        ).fetchall()
        return dict(rows)

    def events(self, stream: str, first: int, last: int | None, limit: int) -> list[Event]:
        rows = self._conn.execute(
            "SELECT number, topic, focus_type, focus_id, focus_version, at FROM notify_event "
            "WHERE stream = ? AND number >= ? AND number <= ? ORDER BY number LIMIT ?",
            (stream, max(first, 1), last if last is not None else 2**62, limit),
        ).fetchall()
        return [Event(stream, *r) for r in rows]

    def claim(self, owner: str, now: float, until: float, limit: int) -> list[Stream]:
        conn = self._conn
        names = [r[0] for r in conn.execute(
            "SELECT name FROM notify_stream WHERE lease_until <= ? AND ("
            " status = 'requested'"
            " OR (status = 'active' AND delivered < numbered AND next_attempt <= ?)"
            " OR (status = 'active' AND heartbeat IS NOT NULL AND COALESCE(last_sent, 0) + heartbeat <= ?)"
            ") ORDER BY next_attempt, name LIMIT ?",
            (now, now, now, limit),
        ).fetchall()]
        if not names:
            return []
        conn.executemany("UPDATE notify_stream SET lease_owner = ?, lease_until = ? WHERE name = ?",
                         [(owner, until, n) for n in names])
        return [s for s in (self.stream(n) for n in names) if s is not None]

    def settle(self, name: str, owner: str, **state) -> bool:
        unknown = set(state) - STREAM_STATE
        if unknown:
            raise ValueError(f"not delivery state: {', '.join(sorted(unknown))}")
        sets = "".join(f"{key} = ?, " for key in state)
        changed = self._conn.execute(
            f"UPDATE notify_stream SET {sets}lease_owner = NULL, lease_until = 0 WHERE name = ? AND lease_owner = ?",
            (*state.values(), name, owner),
        ).rowcount
        return changed == 1
