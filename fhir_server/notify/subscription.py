"""Subscription writes (domain.md §7): what a client may ask for, what the server keeps.

On every write of a Subscription (``AFTER_VALIDATION``, a client's; the server's own writes
of status changes pass through unchanged):

- the topic, filters and channel are checked (``channel.read_subscription``: 422), the
  filters compiled against the search parameters (422), and with auth on, the owner's
  scopes must allow reading the topic's resource type and every resource a filter names
  must be one it may see (403 otherwise: see ``_check_named``);
- ``status`` is the server's: a new Subscription is ``requested`` (its handshake decides
  ``active`` or ``error``); on an update, ``off`` and ``requested`` are the client's to ask
  for, a changed topic, filter or channel asks for a new handshake, anything else keeps
  the stored status (and its ``error``);
- the owner tag (``ownership.py``) is set on create and kept on every update.

At ``BEFORE_COMMIT`` the stream of the Subscription in the outbox takes its configuration,
in the same unit of work; a delete drops the stream with its events.
"""

from __future__ import annotations

from typing import Callable

import orjson

from fhir_server.engine import HookPoint, Runtime, WriteEvent
from fhir_server.engine import access
from fhir_server.errors import Forbidden, Unprocessable
from fhir_server.notify.channel import SubscriptionSpec, read_subscription
from fhir_server.notify.criteria import compile_criteria, named_references
from fhir_server.notify.ownership import owner_text, tagged_client, with_owner_tag
from fhir_server.notify.subscribers import GENERATION, Subscribers
from fhir_server.storage import StreamConfig

__all__ = ["install_subscription_rules", "stream_name", "next_status"]

#: statuses a client may ask for on an update
_ASKED = ("off", "requested")


def stream_name(subscription_id: str) -> str:
    return f"Subscription/{subscription_id}"


def _stored(event: WriteEvent) -> dict | None:
    previous = event.previous
    if previous is None or previous.deleted or previous.body is None:
        return None
    return orjson.loads(previous.body)


def _spec_of(resource: dict | None) -> SubscriptionSpec | None:
    if resource is None:
        return None
    try:
        return read_subscription(resource)
    except Unprocessable:
        return None


def next_status(asked: object, stored: dict | None, spec: SubscriptionSpec) -> str:
    """The status a client's write leaves (see the module doc)."""
    if asked in _ASKED and (stored is not None or asked == "off"):
        return asked
    if stored is None:
        return "requested"
    was = stored.get("status")
    if was == "off" or not spec.same_delivery(_spec_of(stored)):
        return "requested"
    return was if was in ("requested", "active", "error") else "requested"


def _client_write(event: WriteEvent) -> bool:
    """A client's write (no server rule writes Subscriptions; the delivery worker's status
    changes are the server's own work, ``from_client`` False)."""
    return event.work.ctx.from_client


def _check_named(event: WriteEvent, spec: SubscriptionSpec) -> None:
    """With auth on: the caller may read the topic's resources, and sees what its filters name.

    Why 403 for both a resource it may not see and one that does not exist: the answer
    must not tell the two apart (as a conditional create's does not), and a filter on
    either would never deliver anything."""
    work = event.work
    caller = work.ctx.caller
    if caller is None:
        return
    rtype = spec.topic.resource_type
    if not caller.scopes.allows(rtype, "r"):
        raise Forbidden(f"Topic {spec.topic.code} is about {rtype}, which this token may not read "
                        f"(needs system/{rtype}.r or broader)")
    named = named_references(spec.topic, spec.criteria)
    visible = access.visible_refs(work, named)
    existing = {(v.resource_type, v.id) for v in work.uow.load_refs(named)}
    hidden = [f"{t}/{i}" for t, i in named if (t, i) not in visible or (t, i) not in existing]
    if hidden:
        raise Forbidden(f"The filter criteria name {', '.join(hidden)}, which this client may not see; "
                        "a Subscription can only filter by resources its client may read")


def _after_validation(event: WriteEvent) -> None:
    if event.resource_type != "Subscription" or not _client_write(event):
        return
    resource, stored = event.resource, _stored(event)
    spec = read_subscription(resource)
    compile_criteria(spec.topic, spec.criteria, event.work.registry)
    _check_named(event, spec)
    status = next_status(resource.get("status"), stored, spec)
    resource["status"] = status
    resource.pop("error", None)
    if status == "error" and stored is not None and isinstance(stored.get("error"), str):
        resource["error"] = stored["error"]
    caller = event.work.ctx.caller
    owner = tagged_client(stored) if stored is not None else (caller.client_id if caller is not None else None)
    with_owner_tag(resource, owner)


def _owner_of(event: WriteEvent, resource: dict) -> str | None:
    """The owner the stream keeps: the creating client's caller, refreshed when that client
    updates it (its scopes may have changed); kept on anyone else's write."""
    caller = event.work.ctx.caller
    current = event.work.uow.outbox.stream(stream_name(event.id))
    kept = current.config.owner if current is not None else None
    if _client_write(event) and caller is not None:
        if current is None or (caller.client_id is not None and caller.client_id == tagged_client(resource)):
            return owner_text(caller)
    return kept


def _before_commit(event: WriteEvent, subscribers: Subscribers) -> None:
    if event.resource_type != "Subscription":
        return
    outbox, name = event.work.uow.outbox, stream_name(event.id)
    if event.resource is None:  # deleted: nothing more is sent
        outbox.drop_stream(name)
    else:
        resource, stored = event.resource, _stored(event)
        spec = read_subscription(resource)
        status = resource.get("status")
        config = StreamConfig(name, spec.topic.code, tuple(c.text for c in spec.criteria),
                              _owner_of(event, resource), status, spec.channel.heartbeat)
        restart = status in ("requested", "active") and (stored or {}).get("status") != status
        outbox.save_stream(config, restart=restart)
    event.work.uow.bump(GENERATION)
    subscribers.changed()


def install_subscription_rules(runtime: Runtime, subscribers: Subscribers, wake: Callable[[], None]) -> None:
    runtime.hooks.register(HookPoint.AFTER_VALIDATION, _after_validation)
    runtime.hooks.register(HookPoint.BEFORE_COMMIT, lambda event: _before_commit(event, subscribers))

    def after_commit(event: WriteEvent) -> None:
        if event.resource_type == "Subscription":
            wake()

    runtime.hooks.register(HookPoint.AFTER_COMMIT, after_commit)
