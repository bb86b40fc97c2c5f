"""Serving one Subscription's stream (``delivery.py``): its handshake, its events, its
heartbeat, and the status changes they lead to."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import orjson

from fhir_server.engine import RequestContext, Work, update
from fhir_server.errors import FhirError, Unprocessable
from fhir_server.notify.channel import SubscriptionSpec, read_subscription
from fhir_server.notify.delivery_log import Attempt
from fhir_server.notify.disclosure import Disclosure
from fhir_server.notify.notification import Occurrence, notification_bundle
from fhir_server.notify.occurrences import occurrences
from fhir_server.notify.ownership import owner_caller
from fhir_server.notify.rest_hook import Sent
from fhir_server.storage import ResourceVersion, Stream

if TYPE_CHECKING:
    from fhir_server.notify.delivery import Notifier

__all__ = ["serve_subscription", "set_status"]


def serve_subscription(n: "Notifier", stream: Stream) -> bool:
    """Whether the stream had more events due than one notification carried (its next
    round should not wait)."""
    sid = stream.name.split("/", 1)[1]
    with n.runtime.store.unit_of_work(write=False) as uow:
        current = uow.current("Subscription", sid)
    if current is None or current.deleted:  # deleted meanwhile (its delete drops the stream too)
        with n.runtime.store.unit_of_work(write=True) as uow:
            uow.outbox.drop_stream(stream.name)
        return False
    resource = orjson.loads(current.body)
    try:
        spec = read_subscription(resource)
    except Unprocessable as exc:
        _stop(n, stream, current, "error", f"This Subscription cannot be served any more: {exc.message}")
        return False
    stop = _why_stop(n, stream, spec)
    if stop is not None:
        _stop(n, stream, current, *stop)
        return False
    now = time.time()
    status = resource.get("status")
    if status == "requested":
        _handshake(n, stream, sid, current, spec)
    elif status == "active" and stream.delivered < stream.numbered and stream.next_attempt <= now:
        return _events(n, stream, sid, current, spec)
    elif status == "active" and spec.channel.heartbeat and (stream.last_sent or 0) + spec.channel.heartbeat <= now:
        _heartbeat(n, stream, sid, spec)
    else:
        n.settle(stream)  # nothing due any more (changed since it was leased)
    return False


def _why_stop(n: "Notifier", stream: Stream, spec: SubscriptionSpec) -> tuple[str, str] | None:
    """(status, reason) when the Subscription must stop: it ended, or its owner is gone."""
    if spec.end and _instant(spec.end) <= time.time():
        return "off", f"The Subscription ended at {spec.end}"
    owner = owner_caller(stream.config.owner)
    if n.registered is None or owner is None or owner.user is not None or not owner.client_id:
        return None
    role = n.registered(owner.client_id)
    if role is None:
        return "error", f"Its client {owner.client_id} is no longer registered on this server"
    if role != owner.role:
        return "error", f"Its client {owner.client_id} changed role ({owner.role} to {role}); create it again"
    return None


def _instant(text: str) -> float:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return float("inf")
    return moment.timestamp() if moment.tzinfo else float("inf")


def set_status(n: "Notifier", sid: str, read: ResourceVersion, status: str, error: str | None = None) -> bool:
    """A new version of the Subscription with ``status`` (and ``error``), unless a client
    changed it since ``read`` (its change wins, and leads to a new handshake if need be)."""
    try:
        with n.runtime.work(n.server_context(), write=True) as work:
            current = work.uow.current("Subscription", sid)
            if current is None or current.deleted or current.version_id != read.version_id:
                return False
            resource = orjson.loads(current.body)
            resource["status"] = status
            resource.pop("error", None)
            if error:
                resource["error"] = error[:1000]
            update(work, "Subscription", sid, resource)
        return True
    except FhirError:  # a concurrent write won the race: it decides
        return False


def _stop(n: "Notifier", stream: Stream, read: ResourceVersion, status: str, reason: str) -> None:
    set_status(n, stream.name.split("/", 1)[1], read, status, reason)
    n.settle(stream, last_error=reason)


def _post(n: "Notifier", stream: Stream, spec: SubscriptionSpec, bundle: dict, kind: str,
          events: tuple[int, int] | None = None) -> Sent:
    channel = spec.channel
    sent = n.hook.post(channel.endpoint, channel.headers, orjson.dumps(bundle), channel.timeout)
    n.log(Attempt(stream.name, kind, channel.endpoint, "delivered" if sent.ok else "failed", sent.http_status,
                  sent.error, sent.ms, events, stream.attempts + 1 if kind == "event-notification" else 1))
    return sent


def _handshake(n: "Notifier", stream: Stream, sid: str, read: ResourceVersion, spec: SubscriptionSpec) -> None:
    bundle = notification_bundle(n.base_url, sid, spec.topic, "requested", "handshake", stream.numbered,
                                 content=spec.channel.content)
    sent = _post(n, stream, spec, bundle, "handshake")
    now = time.time()
    if sent.ok:
        set_status(n, sid, read, "active")
        n.settle(stream, last_sent=now, last_success=now)
    else:
        _stop(n, stream, read, "error", f"The handshake to the endpoint failed ({sent.error})")


def _heartbeat(n: "Notifier", stream: Stream, sid: str, spec: SubscriptionSpec) -> None:
    bundle = notification_bundle(n.base_url, sid, spec.topic, "active", "heartbeat", stream.numbered,
                                 content=spec.channel.content)
    sent = _post(n, stream, spec, bundle, "heartbeat")
    n.settle(stream, last_sent=time.time(), **({} if sent.ok else {"last_error": f"heartbeat: {sent.error}"}))


def _load(n: "Notifier", stream: Stream, spec: SubscriptionSpec) -> list[Occurrence]:
    owner = owner_caller(stream.config.owner)
    with n.runtime.store.unit_of_work(write=False) as uow:
        events = uow.outbox.events(stream.name, stream.delivered + 1, stream.numbered, spec.channel.max_count)
        work = Work(n.runtime, RequestContext(base_url=n.base_url, caller=owner), uow)
        return occurrences(work, spec.topic, events, spec.channel.content)


def _events(n: "Notifier", stream: Stream, sid: str, read: ResourceVersion, spec: SubscriptionSpec) -> bool:
    found = _load(n, stream, spec)
    if not found:
        n.settle(stream)
        return False
    span = (found[0].number, found[-1].number)
    bundle = notification_bundle(n.base_url, sid, spec.topic, "active", "event-notification", stream.numbered,
                                 found, spec.channel.content)
    sent = _post(n, stream, spec, bundle, "event-notification", span)
    n.on_disclosure(Disclosure(owner_caller(stream.config.owner), stream.name, spec.channel.endpoint,
                               spec.channel.content, span, _carried(found, spec.channel.content),
                               "delivered" if sent.ok else "failed"))
    now = time.time()
    if sent.ok:
        n.settle(stream, delivered=span[1], attempts=0, next_attempt=0.0, failing_since=None, last_error=None,
                 last_success=now, last_sent=now)
        return span[1] < stream.numbered
    attempts, since, give_up = n.failed(stream, sent.error, now)
    if give_up:
        hours = n.policy.retry_hours
        set_status(n, sid, read, "error", f"Notifications could not be delivered for {hours:g} hours "
                                          f"(failing since {_iso(since)}; last: {sent.error})")
    n.settle(stream, attempts=attempts, failing_since=since, last_error=sent.error,
             next_attempt=now + n.policy.retry_delay(attempts))
    return False


def _carried(found: list[Occurrence], content: str) -> tuple[tuple[str, str], ...]:
    if content == "empty":
        return ()
    refs = [tuple(o.focus.split("/", 1)) for o in found]
    if content == "full-resource":
        refs += [(v.resource_type, v.id) for o in found for v in o.context]
    return tuple(dict.fromkeys(refs))


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")
