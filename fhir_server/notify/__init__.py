"""Notifications and relays (domain.md §7): topic-based Subscriptions per the HL7
Subscriptions R5 Backport IG 1.1.0 on R4, the durable outbox they are delivered from, and
the region's relays to upstream FHIR servers. docs/notify.md has the design.

- ``install_notify`` (every runtime that writes: ``serve``, ``load``): the Subscription
  rules, event recording in the writer's unit of work, the relays' streams;
- ``Notifier`` (``serve`` only): the delivery worker, started with the app;
- ``subscription_status`` / ``subscription_events``: the ``$status`` and ``$events`` operations;
- ``relay_status``: what ``evi-fhir relay status`` prints.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable

from fhir_server.engine import Runtime
from fhir_server.notify.channel import BACKPORT_PROFILE, CONTENTS, read_subscription
from fhir_server.notify.delivery import DeliveryPolicy, Notifier
from fhir_server.notify.disclosure import Disclosure, DisclosureLog, no_disclosure_log
from fhir_server.notify.events import install_event_recording
from fhir_server.notify.notification import notification_bundle
from fhir_server.notify.ownership import OWNER_TAG
from fhir_server.notify.relay import Relay, relays_of
from fhir_server.notify.relay_streams import RelayStatus, configure_relays, relay_status
from fhir_server.notify.status import EVENTS_PARAMETERS, subscription_events, subscription_status
from fhir_server.notify.subscribers import Subscribers
from fhir_server.notify.subscription import install_subscription_rules
from fhir_server.notify.topics import TOPICS, Topic, topic_by_code
from fhir_server.workflow import RelayRule

__all__ = [
    "BACKPORT_PROFILE",
    "CONTENTS",
    "DeliveryPolicy",
    "Disclosure",
    "DisclosureLog",
    "EVENTS_PARAMETERS",
    "Notifier",
    "NotifyState",
    "OWNER_TAG",
    "Relay",
    "RelayStatus",
    "TOPICS",
    "Topic",
    "install_notify",
    "no_disclosure_log",
    "notification_bundle",
    "read_subscription",
    "relay_status",
    "relays_of",
    "subscription_events",
    "subscription_status",
    "topic_by_code",
    "topic_canonicals",
]


class Bell:
    """What the hooks ring after a commit that may have made work: the delivery worker's
    ``wake`` once it runs (nothing before, or in processes that do not deliver)."""

    def __init__(self) -> None:
        self._targets: tuple[Callable[[], None], ...] = ()
        self._lock = threading.Lock()

    def attach(self, target: Callable[[], None]) -> None:
        with self._lock:
            self._targets = (*self._targets, target)

    def ring(self) -> None:
        for target in self._targets:
            target()


@dataclass
class NotifyState:
    """What a runtime keeps for notifications (``runtime.services["notify"]``)."""

    subscribers: Subscribers
    relays: tuple[Relay, ...]
    bell: Bell = field(default_factory=Bell)


def install_notify(runtime: Runtime, relay_rules: tuple[RelayRule, ...] = ()) -> NotifyState:
    """The Subscription rules and event recording on ``runtime``'s write pipeline, and the
    relays' streams; RegionError for a relay the server cannot run."""
    state = NotifyState(Subscribers(), relays_of(relay_rules))
    install_subscription_rules(runtime, state.subscribers, state.bell.ring)
    install_event_recording(runtime, state.subscribers, state.bell.ring)
    configure_relays(runtime.store, state.relays)
    runtime.services["notify"] = state
    return state


def topic_canonicals() -> tuple[str, ...]:
    """The topics' canonical URLs (the CapabilityStatement lists them)."""
    return tuple(t.canonical for t in TOPICS)
