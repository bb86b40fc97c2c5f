"""The live subscribers per topic: the streams that get events (Subscriptions ``requested``
or ``active``, and the region's relays), with their criteria compiled.

A write whose topic has no subscriber costs one read of a counter: the list is kept in
memory and rebuilt only when the store's ``notify-streams`` counter moved, which every
write of a stream's configuration raises (``UnitOfWork.bump``, as for SearchParameters),
so a Subscription created through one server process is seen by the next write in every
other process on the database.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from fhir_server.engine import Work
from fhir_server.errors import FhirError
from fhir_server.notify.criteria import Criterion, compile_criteria, parse_criterion
from fhir_server.notify.ownership import owner_caller
from fhir_server.notify.topics import Topic, topic_by_code
from fhir_server.search import SearchRegistry
from fhir_server.search.plan import Filter
from fhir_server.security import Caller
from fhir_server.storage import Stream

__all__ = ["Subscriber", "Subscribers", "GENERATION", "LIVE"]

log = logging.getLogger("fhir_server.notify")

#: the store counter every change of a stream's configuration raises
GENERATION = "notify-streams"
#: the statuses whose streams get events (a requested Subscription's wait for its handshake)
LIVE = ("requested", "active")


@dataclass(frozen=True)
class Subscriber:
    name: str
    topic: Topic
    #: the criteria as search filters (AND)
    filters: tuple[Filter, ...]
    #: the owner, as whom events are judged (None: unrestricted)
    owner: Caller | None
    #: the criteria as written (``matching.py`` judges them on the focus itself)
    criteria: tuple[Criterion, ...] = ()
    #: subscribers with equal keys ask the same question of an event (the criteria as
    #: written and the owner as stored: strings, cheap to hash on every write)
    group: tuple = ()

    @property
    def owner_key(self) -> tuple | None:
        """What the owner's view depends on (the access policy compiles per these)."""
        o = self.owner
        return None if o is None else (o.role, o.organization, o.client_id, o.scopes)


def _subscriber(stream: Stream, registry: SearchRegistry) -> Subscriber | None:
    config = stream.config
    topic = topic_by_code(config.topic)
    if topic is None:
        log.warning("notify: stream %s names no topic of this server (%s); it gets no events", config.name, config.topic)
        return None
    try:
        criteria: tuple[Criterion, ...] = tuple(parse_criterion(topic, c) for c in config.criteria)
        filters = compile_criteria(topic, criteria, registry)
    except FhirError as exc:  # e.g. a SearchParameter it used was removed since
        log.warning("notify: the criteria of stream %s cannot be run any more (%s); it gets no events",
                    config.name, exc.message)
        return None
    return Subscriber(config.name, topic, filters, owner_caller(config.owner), criteria,
                      (tuple(c.text for c in criteria), config.owner))


class Subscribers:
    """Thread-safe; swapped whole on a change, so a write under way keeps the list it read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation = -1
        self._registry: SearchRegistry | None = None
        self._by_topic: dict[str, tuple[Subscriber, ...]] = {}

    @property
    def any(self) -> bool:
        """Whether some stream got events as of the last look (no store access)."""
        return bool(self._by_topic)

    def changed(self) -> None:
        """A stream was configured here: look again on the next write."""
        self._generation = -1

    def of(self, work: Work, topics: tuple[Topic, ...]) -> list[tuple[Topic, Subscriber]]:
        """The live subscribers of ``topics``, as of this unit of work."""
        by_topic = self._current(work)
        return [(topic, s) for topic in topics for s in by_topic.get(topic.code, ())]

    def _current(self, work: Work) -> dict[str, tuple[Subscriber, ...]]:
        generation = work.uow.generation(GENERATION)
        registry = work.registry
        if generation == self._generation and registry is self._registry:
            return self._by_topic
        with self._lock:
            if generation == self._generation and registry is self._registry:
                return self._by_topic
            by_topic: dict[str, list[Subscriber]] = {}
            for stream in work.uow.outbox.streams(LIVE):
                subscriber = _subscriber(stream, registry)
                if subscriber is not None:
                    by_topic.setdefault(subscriber.topic.code, []).append(subscriber)
            self._by_topic = {code: tuple(found) for code, found in by_topic.items()}
            self._generation, self._registry = generation, registry
            return self._by_topic
