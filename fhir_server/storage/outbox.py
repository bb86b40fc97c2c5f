"""The notification outbox (domain.md §7, ``notify/``): a stream of events per subscriber,
kept in the main database so that an event is stored by the unit of work of the write
that caused it (rolled back with it, committed with it).

A *stream* is one subscriber: a Subscription (``Subscription/{id}``) or a relay of the
region file (``relay/{key}``). Its configuration (topic, filter criteria, owner, status,
heartbeat) is written by the unit of work that writes the Subscription; its delivery state
(numbers given, number delivered, retry timing, the last error, the lease) by the delivery
worker. An *event* is appended unnumbered; ``number`` gives a stream's new events the next
numbers, in the order they were appended, so numbers start at 1 and never skip however many
writers append at once (numbering, not appending, is what is serialised: writers of
different resources never contend for a stream's counter).

The *lease* (``claim`` / ``settle``) makes one process at a time the sender of a stream:
several server processes on one database never send the same event concurrently, and a
process that dies holding a lease loses it when ``lease_until`` passes.

Storage keeps these records; what they mean (topics, filters, payloads, retry policy) is
``notify``'s. ``owner`` is opaque text to the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["StreamConfig", "Stream", "Event", "Outbox", "STREAM_STATE"]


@dataclass(frozen=True, slots=True)
class StreamConfig:
    #: ``Subscription/{id}`` or ``relay/{key}``
    name: str
    #: the topic's code
    topic: str
    #: filter criteria (``Task?owner=Organization/x``), all of which an event must meet
    criteria: tuple[str, ...]
    #: who the events are for (notify's JSON of the owning caller); None: unrestricted
    owner: str | None
    #: requested | active | error | off (a Subscription's status)
    status: str
    #: seconds between heartbeats (None: none)
    heartbeat: int | None = None


#: the delivery state ``settle`` may set (and ``save_stream(..., restart=True)`` resets)
STREAM_STATE = frozenset({
    "delivered", "attempts", "next_attempt", "failing_since", "last_error", "last_success", "last_sent",
})


@dataclass(frozen=True, slots=True)
class Stream:
    config: StreamConfig
    #: the highest event number given (0: none yet)
    numbered: int = 0
    #: every event up to this number was delivered
    delivered: int = 0
    #: failed attempts since the last success
    attempts: int = 0
    #: epoch seconds before which the next attempt must not be made
    next_attempt: float = 0.0
    #: epoch seconds of the first failure since the last success (None: not failing)
    failing_since: float | None = None
    last_error: str | None = None
    #: epoch seconds of the last successful delivery
    last_success: float | None = None
    #: epoch seconds of the last notification sent (events, handshake or heartbeat)
    last_sent: float | None = None
    lease_owner: str | None = None
    lease_until: float = 0.0

    @property
    def name(self) -> str:
        return self.config.name


@dataclass(frozen=True, slots=True)
class Event:
    stream: str
    #: 0 until numbered
    number: int
    topic: str
    focus_type: str
    focus_id: str
    #: the version of the focus that made the event
    focus_version: int
    #: FHIR instant: when it happened (the focus version's lastUpdated)
    at: str


class Outbox(Protocol):
    """A unit of work's view of the outbox (``UnitOfWork.outbox``); writes need a write
    unit of work and commit or roll back with it."""

    def save_stream(self, config: StreamConfig, *, restart: bool = False) -> None:
        """Create or change a stream's configuration; its numbers and events stay. ``restart``:
        forget the retry state (attempts, next attempt, failing since, last error)."""

    def drop_stream(self, name: str) -> None:
        """Remove a stream and its events."""

    def stream(self, name: str) -> Stream | None: ...

    def streams(self, statuses: tuple[str, ...] | None = None) -> list[Stream]:
        """Every stream (of these statuses), by name."""

    def append(self, stream: str, topic: str, focus: tuple[str, str, int], at: str) -> None:
        """A new, unnumbered event of ``stream`` about ``focus`` (type, id, version)."""

    def number(self, stream: str) -> int:
        """Give the stream's unnumbered events the next numbers, in the order they were
        appended; returns the highest number given so far (0: none)."""

    def unnumbered(self) -> dict[str, int]:
        """Streams that have events without a number yet, and how many."""

    def events(self, stream: str, first: int, last: int | None, limit: int) -> list[Event]:
        """Numbered events ``first`` ≤ number ≤ ``last`` (None: no upper bound), ascending."""

    def claim(self, owner: str, now: float, until: float, limit: int) -> list[Stream]:
        """Lease to ``owner`` until ``until`` up to ``limit`` streams that have work at ``now``
        and no unexpired lease (its own included: a stream is served by one sender at a time): ``requested`` ones (their handshake), and
        ``active`` ones with undelivered numbered events whose next attempt is due, or whose
        heartbeat is due (``last_sent + heartbeat``). Returns them as leased."""

    def settle(self, name: str, owner: str, **state) -> bool:
        """Set delivery state (keys of ``STREAM_STATE``) and release the lease, if ``owner``
        still holds it; False (nothing changed) when it does not."""
