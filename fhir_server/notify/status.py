"""``Subscription/{id}/$status`` and ``Subscription/{id}/$events`` (backport IG 1.1.0,
OperationDefinitions ``backport-subscription-status`` and ``backport-subscription-events``).

``$status``: a ``searchset`` Bundle holding the status Parameters (type ``query-status``):
the status, the topic, the events since the subscription started (every event recorded,
delivered or not), and the ``error`` of one that failed.

``$events?eventsSinceNumber=&eventsUntilNumber=&content=``: past events, for a client that
noticed a gap in the numbers: a notification Bundle (type ``query-event``) with the events
in the range (both ends included; at most ``EVI_MAX_PAGE_SIZE`` of them, from the first),
with the payload the Subscription asks for, or ``content`` if given. What it carries is
judged as the asking client (its access policy and redaction), as any read of its own.

Both answer 404 for a Subscription the client may not see, as a read does.
"""

from __future__ import annotations

import orjson

from fhir_server.engine import Work, read
from fhir_server.errors import BadRequest
from fhir_server.notify.channel import CONTENTS, read_subscription
from fhir_server.notify.notification import notification_bundle, status_bundle, status_parameters
from fhir_server.notify.occurrences import occurrences
from fhir_server.notify.subscription import stream_name

__all__ = ["subscription_status", "subscription_events", "EVENTS_PARAMETERS"]

EVENTS_PARAMETERS = frozenset({"eventsSinceNumber", "eventsUntilNumber", "content"})


def _subscription(work: Work, sid: str):
    resource = orjson.loads(read(work, "Subscription", sid).body)
    return resource, read_subscription(resource)


def _events_since_start(work: Work, sid: str) -> int:
    name = stream_name(sid)
    stream = work.uow.outbox.stream(name)
    return (stream.numbered if stream is not None else 0) + work.uow.outbox.unnumbered().get(name, 0)


def subscription_status(work: Work, sid: str) -> dict:
    resource, spec = _subscription(work, sid)
    base = work.ctx.base_url
    error = resource.get("error") if resource.get("status") == "error" else None
    parameters = status_parameters(base, sid, spec.topic, resource.get("status"), "query-status",
                                   _events_since_start(work, sid), content=spec.channel.content, error=error)
    return status_bundle(base, sid, parameters)


def _number(raw: str | None, name: str) -> int | None:
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise BadRequest(f"{name} must be an event number (a whole number ≥ 0), not {raw!r}", expression=name)
    return int(raw)


def subscription_events(work: Work, sid: str, params: dict[str, str]) -> dict:
    """``params``: the operation's parameters (names of ``EVENTS_PARAMETERS``)."""
    resource, spec = _subscription(work, sid)
    first = _number(params.get("eventsSinceNumber"), "eventsSinceNumber") or 1
    last = _number(params.get("eventsUntilNumber"), "eventsUntilNumber")
    content = params.get("content") or spec.channel.content
    if content not in CONTENTS:
        raise BadRequest(f"content must be one of {', '.join(CONTENTS)}", expression="content")
    events = work.uow.outbox.events(stream_name(sid), first, last, work.runtime.max_page_size)
    work.ctx.budget.spend(len(events), "$events")
    found = occurrences(work, spec.topic, events, content)
    return notification_bundle(work.ctx.base_url, sid, spec.topic, resource.get("status"), "query-event",
                               _events_since_start(work, sid), found, content)
