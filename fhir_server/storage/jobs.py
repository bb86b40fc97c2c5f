"""Background jobs that outlive a request and a process (the Bulk Data export's, domain.md
§8): every backend offers a ``JobStore`` as ``Store.jobs``, shared by every server process
on the same database.

The store keeps a job's record; what the job does, and its progress, are opaque bytes
(``request``, ``state``) that only the job's owner package reads. One process at a time
works on a job: it holds a **lease** (``holder`` until ``lease_until``, wall clock, shared
by processes) that it renews with every ``save``. A process that dies stops renewing; once
the lease has run out, ``claim`` hands the job to another process (or to the restarted
one), which resumes from the last saved state. A save by a holder whose lease was taken
over, or whose job was removed (cancelled), fails: that holder stops.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from typing import Protocol

__all__ = ["Job", "JobStore", "MemoryJobStore", "RUNNABLE", "FINISHED"]

#: a job in one of these is worked on by whoever holds (or next claims) its lease
RUNNABLE = ("queued", "running")
#: nobody works on these any more; they wait for their ``expires``
FINISHED = ("completed", "failed")


@dataclass(frozen=True)
class Job:
    id: str
    #: what sort of job (``export``): a worker claims only its own kind
    kind: str
    #: who may see the job (opaque to the store)
    owner: str
    #: one of RUNNABLE or FINISHED
    status: str
    #: what to do, and how far it got (opaque to the store)
    request: bytes
    state: bytes
    #: seconds since the epoch
    created: float
    #: after this the job and what it made may be removed (``sweep``); None: not before it finishes
    expires: float | None = None
    holder: str | None = None
    lease_until: float = 0.0


class JobStore(Protocol):
    def add(self, job: Job) -> None: ...

    def get(self, job_id: str) -> Job | None: ...

    def claim(self, kind: str, worker: str, lease_seconds: float) -> Job | None:
        """The oldest runnable job of ``kind`` whose lease has run out (or was never
        taken), now held by ``worker`` for ``lease_seconds`` and ``running``; None when
        there is none. Atomic across threads and processes: one claimant wins."""

    def save(self, job_id: str, worker: str, *, state: bytes, status: str, lease_seconds: float,
             expires: float | None = None) -> bool:
        """Store ``state`` and ``status`` and renew the lease (``lease_seconds`` 0 releases
        it), only while ``worker`` holds the job: False when the job is gone or another
        worker took it over (the caller then stops working on it)."""

    def remove(self, job_id: str) -> bool:
        """Forget the job (a cancelled one); False when it was not there."""

    def sweep(self, now: float) -> list[str]:
        """Remove the jobs whose ``expires`` has passed and return their ids (so that what
        they made can be removed too)."""

    def close(self) -> None: ...


class MemoryJobStore:
    """For ``sqlite://:memory:`` and tests: one process, nothing survives it."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def add(self, job: Job) -> None:
        with self._lock:
            if job.id in self._jobs:
                raise KeyError(f"job {job.id} exists")
            self._jobs[job.id] = job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def claim(self, kind: str, worker: str, lease_seconds: float) -> Job | None:
        now = time.time()
        with self._lock:
            free = [j for j in self._jobs.values() if j.kind == kind and j.status in RUNNABLE and j.lease_until < now]
            if not free:
                return None
            job = min(free, key=lambda j: (j.created, j.id))
            job = self._jobs[job.id] = replace(job, holder=worker, lease_until=now + lease_seconds, status="running")
            return job

    def save(self, job_id: str, worker: str, *, state: bytes, status: str, lease_seconds: float,
             expires: float | None = None) -> bool:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.holder != worker:
                return False
            lease = time.time() + lease_seconds if lease_seconds > 0 else 0.0
            self._jobs[job_id] = replace(job, state=state, status=status, lease_until=lease,
                                         expires=expires if expires is not None else job.expires)
            return True

    def remove(self, job_id: str) -> bool:
        with self._lock:
            return self._jobs.pop(job_id, None) is not None

    def sweep(self, now: float) -> list[str]:
        with self._lock:
            gone = [j.id for j in self._jobs.values() if j.expires is not None and j.expires < now]
            for job_id in gone:
                del self._jobs[job_id]
            return gone

    def close(self) -> None:
        with self._lock:
            self._jobs.clear()
