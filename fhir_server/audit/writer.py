"""The writer of the access log: a request's AuditEvents are stored durably before its
answer leaves, at as little cost to the request as the store allows.

Two ways in, one log:

- **The store's pending file** (``AuditStore.journaled``: a SQLite log). The request's
  records (``audit.record``: its facts and accesses, not yet events) are made durable in
  one ``write()`` to this process's pending file, on the request's own thread, and the
  answer may leave; the store's committer builds, seals and stores what gathered over a
  few milliseconds in one transaction. Measured, this is what keeps the log cheap on
  these machines: a SQLite append per request, or any hand-over to a thread and back,
  cost more than a request's own work (benchmarks/audit.py; docs/audit.md, "Cost").
- **The group-commit thread** (one per process, for stores that append only: MongoDB):
  ``write`` (awaited on the event loop) and ``write_blocking`` (from threads) hand it the
  records; it takes everything handed to it meanwhile, the events of many concurrent
  requests, and appends them in one go, waiting as long as the store needs; then tells
  each waiting request (on its loop: one wake-up per batch and loop).

Should the records not be made durable, the request hears it (``AuditUnavailable``,
503): none gets its answer as if its access had been logged.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Sequence

from fhir_server.audit.balp import RequestFacts, ServerIdentity
from fhir_server.audit.record import entries_of, seal_record
from fhir_server.audit.trail import Access
from fhir_server.errors import Unavailable
from fhir_server.storage.audit import AuditEntry, AuditStore

__all__ = ["AuditWriter", "AuditUnavailable"]

log = logging.getLogger("fhir_server.audit")


class AuditUnavailable(Unavailable):
    """The access log could not be written: the answer is withheld (503)."""


class _Waiter:
    """One request's part of a batch, and how to tell it: its future on its loop, or an Event."""

    __slots__ = ("entries", "loop", "future", "done", "error")

    def __init__(self, entries: list[AuditEntry], loop=None, future=None):
        self.entries, self.loop, self.future = entries, loop, future
        self.done = threading.Event() if loop is None else None
        self.error: BaseException | None = None


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
    #: events per append at most on the group-commit thread (the requests beyond wait for the next)
    MAX_BATCH = 2000

    def __init__(self, store: AuditStore, server: ServerIdentity, *, auth_on: bool = False):
        self.store = store
        self.server = server
        #: whether the server authenticates its clients (EVI_AUTH): a request without a
        #: caller is then an unauthenticated one, not an anonymous one (RequestFacts.auth_on)
        self.auth_on = auth_on
        store.start(seal_record)  # what a stopped process left pending is stored first
        self._journaled = bool(store.journaled)
        self._pending: list[_Waiter] = []
        self._wake = threading.Condition(threading.Lock())
        self._closed = False
        self._thread = None
        if not self._journaled:
            self._thread = threading.Thread(target=self._run, name="evi-audit-writer", daemon=True)
            self._thread.start()

    def try_write(self, facts: RequestFacts, accesses: Sequence[Access]) -> bool:
        """Store at once, on the caller's thread, if the store allows it (True: durable);
        False: nothing was stored, ``write`` instead. ``AuditUnavailable`` when the events
        could not be made durable."""
        if not self._journaled:
            return False
        self._journal(entries_of(facts, accesses, self.server))
        return True

    def _journal(self, entries: list[AuditEntry]) -> None:
        if self._closed:
            raise AuditUnavailable("The server is shutting down: the access log takes no more events")
        try:
            self.store.journal(entries)
        except Exception as exc:  # noqa: BLE001 - the request must not be answered as logged
            raise _failure(exc, 1) from exc

    async def write(self, facts: RequestFacts, accesses: Sequence[Access]) -> None:
        """On the event loop: returns once the events are stored durably (``AuditUnavailable``
        if they could not be)."""
        if self.try_write(facts, accesses):
            return
        loop = asyncio.get_running_loop()
        waiter = _Waiter(entries_of(facts, accesses, self.server), loop, loop.create_future())
        self._submit([waiter])
        await waiter.future

    def write_blocking(self, facts: RequestFacts, accesses: Sequence[Access]) -> None:
        """From a thread: returns once the events are stored durably."""
        if self.try_write(facts, accesses):
            return
        waiter = _Waiter(entries_of(facts, accesses, self.server))
        self._submit([waiter])
        waiter.done.wait()
        if waiter.error is not None:
            raise waiter.error

    # -- the group-commit thread (stores that only append) ---------------------------------
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
                if count and size + len(waiter.entries) > self.MAX_BATCH:
                    break
                count, size = count + 1, size + len(waiter.entries)
            taken = self._pending[:count]
            del self._pending[:count]
            return taken

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            error = None
            try:
                self.store.append([e for waiter in batch for e in waiter.entries], seal_record)
            except Exception as exc:  # noqa: BLE001 - told to every waiting request, never lost
                error = _failure(exc, len(batch))
            self._tell(batch, error)

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
        """Store what is handed over, then stop (the store's pending file is stored when
        the store closes)."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout=60)
