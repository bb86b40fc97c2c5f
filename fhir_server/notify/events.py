"""Recording events in the unit of work of the write that causes them (domain.md §7).

Every write passes ``BEFORE_COMMIT``; for a write of a type some topic fires on, the hook
asks which topics fire (``topics.topics_fired``: the new version against the one it
replaces) and which live subscribers those topics have. Only when there are some does it
defer a run to the end of the unit of work (``EventsOf``), when the written version is in
the store with its search index: there each group of subscribers with the same criteria
and the same owner costs one query, ``_id`` of the focus AND the criteria AND the owner's
access policy, and each subscriber that matches gets an event appended to its stream in
the outbox. It is the same unit of work: a rolled-back write leaves no event, a
committed one has all of its events.

Criteria are judged on the focus as the unit of work leaves it (a rule that writes a later
version of it in the same unit of work decides what the filters see).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import orjson

from fhir_server.engine import DeferredRule, HookPoint, Runtime, Work, WriteEvent
from fhir_server.notify.matching import criteria_hold
from fhir_server.notify.subscribers import Subscriber, Subscribers
from fhir_server.notify.topics import TOPIC_TYPES, Topic, topics_fired
from fhir_server.search import parse_search
from fhir_server.storage import ResourceVersion

__all__ = ["EventsOf", "install_event_recording", "record_events"]


@dataclass(frozen=True)
class EventsOf(DeferredRule):
    """The events of one written version (once per version and unit of work)."""

    rule = "notifications"
    once = True
    resource_type: str
    id: str
    version: int


def _content(version: ResourceVersion | None) -> dict | None:
    if version is None or version.deleted or version.body is None:
        return None
    return orjson.loads(version.body)


def install_event_recording(runtime: Runtime, subscribers: Subscribers, wake: Callable[[], None]) -> None:
    """``wake``: called after a commit that may have recorded events (the delivery worker's bell)."""

    def before_commit(event: WriteEvent) -> None:
        if event.resource is None or event.resource_type not in TOPIC_TYPES:
            return
        fired = topics_fired(event.resource_type, _content(event.previous), event.resource)
        if not fired:
            return
        work = event.work
        candidates = subscribers.of(work, fired)
        if not candidates:
            return
        meta = event.resource["meta"]
        focus = (event.resource_type, event.id, int(meta["versionId"]))
        at = meta["lastUpdated"]
        work.defer(EventsOf(*focus), lambda: record_events(work, candidates, focus, at))

    def after_commit(event: WriteEvent) -> None:
        if event.resource_type in TOPIC_TYPES and subscribers.any:
            wake()

    runtime.hooks.register(HookPoint.BEFORE_COMMIT, before_commit)
    runtime.hooks.register(HookPoint.AFTER_COMMIT, after_commit)


def record_events(work: Work, candidates: list[tuple[Topic, Subscriber]], focus: tuple[str, str, int], at: str) -> None:
    """Append an event to the stream of every candidate whose criteria and owner's view
    the focus meets; candidates that would ask the same question share one query."""
    groups: dict[tuple, list[tuple[Topic, Subscriber]]] = {}
    for topic, subscriber in candidates:
        groups.setdefault(subscriber.group or (subscriber.filters, subscriber.owner_key), []).append((topic, subscriber))
    outbox = work.uow.outbox
    current = work.uow.current(focus[0], focus[1])
    resource = _content(current)
    for members in groups.values():
        if _matches(work, focus, members[0][1], resource):
            for topic, subscriber in members:
                outbox.append(subscriber.name, topic.code, focus, at)


def _matches(work: Work, focus: tuple[str, str, int], subscriber: Subscriber, resource: dict | None) -> bool:
    """The criteria judged on the focus where they can be (``matching.py``), by the store
    where not; the owner's access policy by the store, as its own reads are."""
    rtype, rid, _ = focus
    owner = subscriber.owner
    held = None
    if resource is not None and subscriber.criteria:
        held = criteria_hold(work.registry, subscriber.topic, subscriber.criteria, resource, work.ctx.base_url)
        if held is False:
            return False
    clauses = () if held else subscriber.filters
    if owner is not None:
        if not owner.scopes.allows(rtype, "r"):
            return False
        visible = work.runtime.policy.filter(owner, rtype, work.registry)
        if visible is not None:
            clauses = (*clauses, visible)
    if not clauses:
        return True
    plan = parse_search(rtype, [("_id", rid)], work.registry)
    plan = dataclasses.replace(plan, clauses=(*plan.clauses, *clauses), count=1)
    return bool(work.uow.search(plan, with_total=False, limit=1, offset=0).refs)
