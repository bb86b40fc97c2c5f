"""Deferred rule runs: domain rules that need the whole unit of work.

A hook sees one write; some rules need every write of the request first (an intake Task
whose Patient comes later in the transaction, a SIP whose CareTeam and Consent come in
the same Bundle). Such a hook *defers* a run of its rule with ``Work.defer``; the runs
execute in order at the end of the unit of work, still inside it (they may veto by
raising, and write more through the engine's functions, whose hooks may defer more).

Each run is named by a ``DeferredRule``: a frozen dataclass per rule, whose fields say
what the run is about (``IntakeRun(service_request_id)``) and whose class attributes say
how it is de-duplicated and how its writes are described in answers. No string keys: a
rule finds out about another only through these types and ``Work``'s documented API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

from fhir_server.engine.changes import Cause

__all__ = ["DeferredRule", "DeferredRuns"]


@dataclass(frozen=True)
class DeferredRule:
    """Base of the names of deferred runs (subclass as a frozen dataclass per rule)."""

    #: how the run's writes are named in answers ("Server rule 'intake' created Task/…")
    rule: ClassVar[str] = "server rule"
    #: True: at most one run per unit of work for an equal name. False: an equal name is
    #: ignored only while a run is pending; once it has started, a later write may defer
    #: another (it will see that write)
    once: ClassVar[bool] = False


class DeferredRuns:
    """The pending runs of one unit of work, in the order they were deferred."""

    def __init__(self) -> None:
        self._queue: list[tuple[DeferredRule, Callable[[], None], Cause | None]] = []
        self._pending: set[DeferredRule] = set()
        self._started: set[DeferredRule] = set()

    def add(self, name: DeferredRule, action: Callable[[], None], cause: Cause | None) -> bool:
        if name in self._pending or (name.once and name in self._started):
            return False
        self._pending.add(name)
        self._queue.append((name, action, cause))
        return True

    def pending(self, name: DeferredRule) -> bool:
        return name in self._pending

    def pop(self) -> tuple[DeferredRule, Callable[[], None], Cause | None] | None:
        if not self._queue:
            return None
        name, action, cause = self._queue.pop(0)
        self._pending.discard(name)
        self._started.add(name)
        return name, action, cause
