"""Serving one relay's stream (``delivery.py``, ``relay.py``): its events, one at a time and
in order, written upstream; the first failure stops the round and is retried on the
Subscription schedule, without end (a relay has no status to turn to ``error``)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import orjson
from fhirpy.base.exceptions import BaseFHIRError, OperationOutcome

from fhir_server.notify.delivery_log import Attempt
from fhir_server.notify.disclosure import Disclosure
from fhir_server.notify.relay import RelayWriter
from fhir_server.storage import Event, ResourceVersion, Stream

if TYPE_CHECKING:
    from fhir_server.notify.delivery import Notifier

__all__ = ["serve_relay", "RELAY_BATCH"]

#: events one round writes for a relay (each is a few requests upstream)
RELAY_BATCH = 10


def _load(n: "Notifier", stream: Stream) -> list[tuple[Event, ResourceVersion | None, list[ResourceVersion]]]:
    loaded = []
    with n.runtime.store.unit_of_work(write=False) as uow:
        for event in uow.outbox.events(stream.name, stream.delivered + 1, stream.numbered, RELAY_BATCH):
            version = uow.version(event.focus_type, event.focus_id, event.focus_version)
            referenced: list[ResourceVersion] = []
            if version is not None and version.body is not None:
                refs = RelayWriter.referenced(orjson.loads(version.body), n.base_url)
                referenced = uow.load_refs([r for r in refs if r != (event.focus_type, event.focus_id)])
            loaded.append((event, version, referenced))
    return loaded


def _describe(exc: Exception) -> str:
    """For ``relay status``: what the upstream server said, briefly."""
    if isinstance(exc, OperationOutcome):
        issues = (getattr(exc, "resource", None) or {}).get("issue") or [{}]
        text = issues[0].get("diagnostics") or issues[0].get("code") or str(exc)
        return f"upstream refused: {text}"[:300]
    if isinstance(exc, BaseFHIRError):
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    return type(exc).__name__


def serve_relay(n: "Notifier", stream: Stream) -> bool:
    """Whether events are left that this round did not write (the next should not wait)."""
    relay = n.relays.get(stream.name)
    now = time.time()
    if relay is None or not (stream.delivered < stream.numbered and stream.next_attempt <= now):
        n.settle(stream)  # not one of this process's relays, or nothing due any more
        return False
    writer = n.relay_writer(relay)
    delivered, error, kind = stream.delivered, None, None
    for event, version, referenced in _load(n, stream):
        started = time.monotonic()
        written: tuple = ()
        if version is not None and version.body is not None:
            try:
                written = tuple(writer.write(version, referenced))
            except Exception as exc:  # network, 4xx/5xx upstream: this event again, later
                error, kind = _describe(exc), type(exc).__name__
        outcome = "failed" if error else "delivered"
        n.log(Attempt(stream.name, "relay", relay.url, outcome, None, kind,
                      (time.monotonic() - started) * 1000, (event.number, event.number), stream.attempts + 1))
        n.on_disclosure(Disclosure(None, stream.name, relay.url, "relay", (event.number, event.number),
                                   written or ((event.focus_type, event.focus_id),), outcome))
        if error:
            break
        delivered = event.number
    now = time.time()
    progress = {"delivered": delivered, "last_success": now, "last_sent": now} if delivered > stream.delivered else {}
    if error is None:
        n.settle(stream, **progress, attempts=0, next_attempt=0.0, failing_since=None, last_error=None)
        return delivered < stream.numbered
    attempts, since, _ = n.failed(stream, error, now)
    n.settle(stream, **progress, attempts=attempts, failing_since=since, last_error=error,
             next_attempt=now + n.policy.retry_delay(attempts))
    return False
