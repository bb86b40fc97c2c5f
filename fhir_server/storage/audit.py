"""Where the PDL access log lives: every backend offers an ``AuditStore`` as
``Store.audit``, apart from the resources and their search indexes (its own SQLite file,
its own MongoDB collection), shared by every server process on the same database.

The log is append-only and one sequence per database: ``append`` runs under the
store's exclusive append (a SQLite write transaction on the audit file; on MongoDB a
unique sequence number, retried when another process took it), hands the caller's
``seal`` each entry with its sequence number (which is also its id: a read by id is a
primary-key lookup, no index of its own) and the chain value of the event stored before
it, and stores what ``seal`` returns. What an entry holds and how it is sealed is the caller's
(``fhir_server.audit``): the store keeps bytes, a patient id, a time and the chain value,
and answers the two queries the log needs (by patient and time, by time).

After a purge the oldest kept event follows an event that is gone: the store keeps the
last removed event's chain value (``AuditAnchor``), so the chain stays verifiable from
the first kept event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple, Protocol, Sequence

__all__ = ["AuditEntry", "AuditRow", "AuditQuery", "AuditAnchor", "AuditStore", "Seal", "GENESIS"]

#: the chain value before the first event of a log
GENESIS = ""


class AuditEntry(NamedTuple):
    """One event before it is sealed: ``content`` is opaque to the store (handed to ``seal``)."""

    #: the Patient's logical id (None: an event without a patient)
    patient: str | None
    #: a FHIR instant, UTC, fixed width (``model.format_instant``): strings sort in time order
    recorded: str
    content: object


class AuditRow(NamedTuple):
    """One stored event: ``seq`` is its place in the log's one sequence, and its id."""

    seq: int
    patient: str | None
    recorded: str
    chain: str
    body: bytes

    @property
    def id(self) -> str:
        return str(self.seq)


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Events in (recorded, seq) order: of one patient (None: all), recorded within the
    closed range [start, end] (None: open), after the cursor ``after`` = (recorded, seq)."""

    patient: str | None = None
    start: str | None = None
    end: str | None = None
    after: tuple[str, int] | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class AuditAnchor:
    """Where the kept chain starts after a purge: the last removed event's ``seq`` and
    chain value, and when and up to which date the purge removed events."""

    seq: int
    chain: str
    before: str
    purged_at: str


#: (entry content, its sequence number, the previous event's chain value) -> (its chain value, its bytes)
Seal = Callable[[object, int, str], tuple[str, bytes]]


class AuditStore(Protocol):
    #: True: a request's entries are made durable by ``journal`` (a local pending file) and
    #: stored in the log moments later; False: only ``append``, which waits for the store
    journaled: bool

    def recover(self, seal: Seal) -> None:
        """Store what stopped processes left pending (``journal``), sealed with ``seal``
        (what every journaled entry is sealed with). A store that journals nothing has
        nothing to recover."""

    def start(self, seal: Seal) -> None:
        """Before the first ``journal``: ``recover``, then start storing what this process
        journals. Once per store."""

    def journal(self, entries: Sequence[AuditEntry]) -> None:
        """(``journaled`` stores) Make ``entries`` durable at once (they survive a crash of
        the process when this returns; their contents JSON values), sealed and appended
        soon after; every read of the log in this process sees them."""

    def append(self, entries: Sequence[AuditEntry], seal: Seal) -> list[AuditRow]:
        """Store ``entries`` at the end of the log, in order, sealed one after the other;
        all of them durably (they survive a crash of the process) when it returns."""

    def get(self, seq: int) -> AuditRow | None: ...

    def query(self, query: AuditQuery) -> list[AuditRow]: ...

    def count(self, query: AuditQuery) -> int:
        """How many events ``query`` finds, its cursor and limit aside."""

    def scan(self, after_seq: int, limit: int) -> list[AuditRow]:
        """Events in sequence order after ``after_seq`` (for verifying the chain)."""

    def anchor(self) -> AuditAnchor | None:
        """The last purge's anchor (None: nothing was ever purged)."""

    def purge(self, before: str, purged_at: str) -> tuple[int, AuditAnchor | None]:
        """Remove the events that come, in sequence order, before the first one recorded
        at or after ``before``; (how many, the new anchor or None when none was removed)."""

    def close(self) -> None: ...
