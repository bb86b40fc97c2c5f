"""Checking the log: ``evi-fhir audit verify`` walks the chain from its start (the
genesis, or the anchor a purge left) to the last event and names the first event whose
chain breaks.

What the chain shows: a changed, moved or removed event (the next event's value no
longer follows). What it cannot show alone: events cut from the end, or the whole chain
recomputed by someone who can write the store. ``verify`` prints the last chain value, so
that it can be noted where the store's writers cannot reach and compared later.
"""

from __future__ import annotations

from dataclasses import dataclass

from fhir_server.audit.chain import check
from fhir_server.audit.record import event_body
from fhir_server.storage.audit import GENESIS, AuditAnchor, AuditRow, AuditStore

__all__ = ["ChainReport", "verify_chain"]


@dataclass(frozen=True)
class ChainReport:
    events: int
    #: where the verified chain starts (None: at the genesis)
    anchor: AuditAnchor | None
    #: the chain value of the last event that verified
    last_chain: str
    broken: AuditRow | None = None
    problem: str | None = None


def verify_chain(store: AuditStore, batch: int = 1000) -> ChainReport:
    anchor = store.anchor()
    previous = anchor.chain if anchor else GENESIS
    after = anchor.seq if anchor else 0
    seen = 0
    while rows := store.scan(after, batch):
        for row in rows:
            try:
                value, problem = check(event_body(row), previous, row.id)
            except ValueError as exc:  # a record altered past reading
                value, problem = None, str(exc)
            if problem is None and value != row.chain:
                problem = f"the chain value stored beside it ({row.chain}) differs from the one in its content"
            if problem is not None:
                return ChainReport(seen, anchor, previous, row, problem)
            previous, after, seen = value, row.seq, seen + 1
    return ChainReport(seen, anchor, previous)
