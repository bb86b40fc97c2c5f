"""The job store (``storage.jobs``) of a SQLite store, in the side file of the search
snapshots (``evi.db-pages``): a job's progress is saved often, and on the database itself
each save would wait for the one writer. A claim is one ``BEGIN IMMEDIATE`` transaction
(select the oldest free job, take its lease), so two processes claiming at once cannot
both win: SQLite serialises them and the second finds the lease taken."""

from __future__ import annotations

import threading
import time

from fhir_server.storage.jobs import RUNNABLE, Job
from fhir_server.storage.sqlite.pages import open_side_file

__all__ = ["SqliteJobStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS job (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    owner       TEXT NOT NULL,
    status      TEXT NOT NULL,
    request     BLOB NOT NULL,
    state       BLOB NOT NULL,
    created     REAL NOT NULL,   -- seconds since the epoch (wall clock: shared by processes)
    expires     REAL,
    holder      TEXT,
    lease_until REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS job_runnable ON job (kind, status, created);
CREATE INDEX IF NOT EXISTS job_expires ON job (expires);
"""

_COLUMNS = "id, kind, owner, status, request, state, created, expires, holder, lease_until"
_MARKS = ", ".join("?" for _ in RUNNABLE)
#: the oldest job of a kind that is runnable and held by nobody
_FREE = (f"SELECT {{columns}} FROM job WHERE kind = ? AND status IN ({_MARKS}) AND lease_until < ? "
         "ORDER BY created, id LIMIT 1")


def _job(row) -> Job:
    return Job(row[0], row[1], row[2], row[3], bytes(row[4]), bytes(row[5]), row[6], row[7], row[8], row[9])


class SqliteJobStore:
    def __init__(self, path: str):
        self._conn = open_side_file(path, _SCHEMA)
        self._lock = threading.Lock()

    def add(self, job: Job) -> None:
        with self._lock:
            self._conn.execute(
                f"INSERT INTO job ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job.id, job.kind, job.owner, job.status, job.request, job.state, job.created, job.expires,
                 job.holder, job.lease_until),
            )

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._conn.execute(f"SELECT {_COLUMNS} FROM job WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def claim(self, kind: str, worker: str, lease_seconds: float) -> Job | None:
        now = time.time()
        with self._lock:
            # idle workers ask every second: a plain read first, the write lock only when there is work
            if self._conn.execute(_FREE.replace("{columns}", "1"), (kind, *RUNNABLE, now)).fetchone() is None:
                return None
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                row = self._conn.execute(_FREE.replace("{columns}", _COLUMNS), (kind, *RUNNABLE, now)).fetchone()
                if row is not None:
                    self._conn.execute(
                        "UPDATE job SET holder = ?, lease_until = ?, status = 'running' WHERE id = ?",
                        (worker, now + lease_seconds, row[0]),
                    )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        if row is None:
            return None
        claimed = _job(row)
        return Job(claimed.id, claimed.kind, claimed.owner, "running", claimed.request, claimed.state,
                   claimed.created, claimed.expires, worker, now + lease_seconds)

    def save(self, job_id: str, worker: str, *, state: bytes, status: str, lease_seconds: float,
             expires: float | None = None) -> bool:
        lease = time.time() + lease_seconds if lease_seconds > 0 else 0.0
        with self._lock:
            changed = self._conn.execute(
                "UPDATE job SET state = ?, status = ?, lease_until = ?, expires = COALESCE(?, expires) "
                "WHERE id = ? AND holder = ?",
                (state, status, lease, expires, job_id, worker),
            ).rowcount
        return changed == 1

    def remove(self, job_id: str) -> bool:
        with self._lock:
            return self._conn.execute("DELETE FROM job WHERE id = ?", (job_id,)).rowcount == 1

    def sweep(self, now: float) -> list[str]:
        with self._lock:
            ids = [r[0] for r in self._conn.execute("SELECT id FROM job WHERE expires < ?", (now,)).fetchall()]
            # another process may sweep at the same time: each id is reported by the one that removed it
            return [i for i in ids if self._conn.execute(
                "DELETE FROM job WHERE id = ? AND expires < ?", (i, now)).rowcount == 1]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

