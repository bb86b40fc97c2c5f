"""The writer of the access log: a request's AuditEvents are stored durably before its
answer leaves, and appends are grouped into as few transactions as the load allows.

Two ways in, one log:

- **At once, on the event loop** (``try_write``): when the store allows it
  (``AuditStore.inline``: a local SQLite file) and the request's events are few
  (``INLINE_EVENTS``), the API seals and appends them itself, without waiting for
  anything (``wait=False``): a few tens of microseconds, like the inline reads and
  writes of ``api.routes``. It measured as the only way to keep the log cheap on these
  machines: every hand-over to a thread and back (two thread wake-ups), and even one
  suspension of the request to gather others, cost more CPU than the append itself
  (benchmarks/audit.py; docs/audit.md, "Cost"). Where the append would wait (the file's
  write lock is held by this process's writer thread or by another server process), it
  gives way and the request goes the second way.
- **The group-commit thread** (one per process, ``write`` awaited by the API,
  ``write_blocking`` from threads): takes everything handed to it meanwhile, the events
  of many concurrent requests, and commits them in one transaction, waiting for the lock
  as long as needed; then tells each waiting request (on its loop: one wake-up per batch
  and loop). Under contention (several server processes on one file, large batches,
  MongoDB, whose appends always go this way) this is where requests meet.

Should an append fail, every request of that batch hears it (``AuditUnavailable``, 503):
none gets its answer as if its access had been logged.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Sequence

from fhir_server.audit.balp import RequestFacts, ServerIdentity, audit_event
from fhir_server.audit.chain import seal
from fhir_server.audit.trail import Access
from fhir_server.errors import Unavailable
from fhir_server.storage.audit import AuditEntry, AuditRow, AuditStore
from fhir_server.storage.base import WouldBlock

__all__ = ["AuditWriter", "AuditUnavailable", "build_entries"]

log = logging.getLogger("fhir_server.audit")


class AuditUnavailable(Unavailable):
    """The access log could not be written: the answer is withheld (503)."""


def build_entries(facts: RequestFacts, accesses: Sequence[Access], server: ServerIdentity) -> list[AuditEntry]:
    return [AuditEntry(a.patient, facts.recorded, audit_event(facts, a, server, prepared=True)) for a in accesses]


def _seal(content: object, seq: int, previous: str) -> tuple[str, bytes]:
    return seal(content, seq, previous)  # type: ignore[arg-type]


class _Waiter:
    """One request's part of a batch, and how to tell it: its future on its loop, or an Event."""

    __slots__ = ("facts", "accesses", "loop", "future", "done", "error", "rows")

    def __init__(self, facts: RequestFacts, accesses: Sequence[Access], loop=None, future=None):
        self.facts, self.accesses, self.loop, self.future = facts, accesses, loop, future
        self.done = threading.Event() if loop is None else None
        self.error: BaseException | None = None
        self.rows: list[AuditRow] = []


def _settle(futures: list[tuple[asyncio.Future, BaseException | None]]) -> None:
    for future, error in futures:
        if future.done():  # the request went away meanwhile (client disconnected)
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


def _failure(exc: BaseException, requests: int) -> AuditUnavailable:
    log.error("the access log could not be written (%d requests' events)", requests, exc_info=exc)
    error = AuditUnavailable("The access log could not be written; the answer is withheld: try again")
    error.__cause__ = exc
    return error


class AuditWriter:
    #: events per transaction at most (the requests beyond wait for the next one)
    MAX_BATCH = 2000
    #: events a request may append at once on the event loop (more go to the thread)
    INLINE_EVENTS = 64

    def __init__(self, store: AuditStore, server: ServerIdentity):
        self.store = store
        self.server = server
        self._inline = bool(getattr(store, "inline", False))
        self._pending: list[_Waiter] = []
        self._wake = threading.Condition(threading.Lock())
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="evi-audit-writer", daemon=True)
        self._thread.start()

    # -- the event loop ---------------------------------------------------------------
    def try_write(self, facts: RequestFacts, accesses: Sequence[Access]) -> bool:
        """Append at once if that needs no waiting (True: stored durably); False: nothing
        was stored, ``write`` instead. ``AuditUnavailable`` when the append failed."""
        if not self._inline or len(accesses) > self.INLINE_EVENTS:
            return False
        try:
            self.store.append(build_entries(facts, accesses, self.server), _seal, wait=False)
        except WouldBlock:
            return False
        except Exception as exc:  # noqa: BLE001 - the request must not be answered as logged
            raise _failure(exc, 1) from exc
        return True

    async def write(self, facts: RequestFacts, accesses: Sequence[Access]) -> None:
        """On the event loop: returns once the group-commit thread stored the events
        (``AuditUnavailable`` if it could not)."""
        loop = asyncio.get_running_loop()
        waiter = _Waiter(facts, accesses, loop, loop.create_future())
        self._submit([waiter])
        await waiter.future

    # -- threads ----------------------------------------------------------------------
    def write_blocking(self, facts: RequestFacts, accesses: Sequence[Access]) -> list[AuditRow]:
        """From a thread: returns the stored rows once they are stored."""
        waiter = _Waiter(facts, accesses)
        self._submit([waiter])
        waiter.done.wait()
        if waiter.error is not None:
            raise waiter.error
        return waiter.rows

    def _submit(self, waiters: list[_Waiter]) -> None:
        with self._wake:
            if self._closed:
                error = AuditUnavailable("The server is shutting down: the access log takes no more events")
                self._tell(waiters, error)
                return
            self._pending.extend(waiters)
            self._wake.notify()

    def _take(self) -> list[_Waiter] | None:
        with self._wake:
            while not self._pending and not self._closed:
                self._wake.wait()
            if not self._pending:
                return None
            count, size = 0, 0
            for waiter in self._pending:
                if count and size + len(waiter.accesses) > self.MAX_BATCH:
                    break
                count, size = count + 1, size + len(waiter.accesses)
            taken = self._pending[:count]
            del self._pending[:count]
            return taken

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            error = None
            try:
                self._append(batch, wait=True)
            except Exception as exc:  # noqa: BLE001 - told to every waiting request, never lost
                error = _failure(exc, len(batch))
            self._tell(batch, error)

    def _append(self, batch: list[_Waiter], *, wait: bool) -> None:
        parts = [build_entries(w.facts, w.accesses, self.server) for w in batch]
        rows = self.store.append([e for part in parts for e in part], _seal, wait=wait)
        start = 0
        for waiter, part in zip(batch, parts):
            waiter.rows = rows[start:start + len(part)]
            start += len(part)

    @staticmethod
    def _tell(batch: list[_Waiter], error: BaseException | None) -> None:
        by_loop: dict = {}
        for waiter in batch:
            if waiter.loop is None:
                waiter.error = error
                waiter.done.set()
            else:
                by_loop.setdefault(waiter.loop, []).append((waiter.future, error))
        for loop, futures in by_loop.items():  # one wake-up per loop and batch
            try:
                loop.call_soon_threadsafe(_settle, futures)
            except RuntimeError:  # that loop is closed: nobody waits any more
                pass

    def close(self) -> None:
        """Store what is pending, then stop."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=60)
