"""Notification Bundles as the backport IG 1.1.0 gives them for R4
(``backport-subscription-notification-r4``): a ``history`` Bundle whose first entry is the
status ``Parameters`` (``backport-subscription-status-r4``: subscription, topic, status,
type, events-since-subscription-start, one ``notification-event`` per event with its
event-number, timestamp and focus, and additional-context), then the payload:

- ``empty``: nothing but the status, without topic, focus or context (IG: "SHALL NOT");
- ``id-only``: the focus references in the status, and an entry per focus with its
  ``fullUrl`` and ``request`` but no resource;
- ``full-resource``: the focus resources as they were written by the event's version,
  then the additional context (e.g. the Task's Patient) as the owner may see it.

``$status`` answers a ``searchset`` of such status Parameters (type ``query-status``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

import orjson

from fhir_server.model import format_instant
from fhir_server.notify.topics import Topic
from fhir_server.storage import ResourceVersion

__all__ = ["Occurrence", "status_parameters", "notification_bundle", "status_bundle"]


@dataclass(frozen=True)
class Occurrence:
    """One event as it goes out."""

    number: int
    at: str
    #: ``Type/id`` of the focus
    focus: str
    #: the focus as the event's version wrote it (full-resource payloads only)
    version: ResourceVersion | None = None
    #: the additional context, as the recipient may see it (full-resource payloads only)
    context: tuple[ResourceVersion, ...] = ()


def _now() -> str:
    return format_instant(datetime.now(timezone.utc))


def status_parameters(
    base: str, subscription_id: str, topic: Topic, status: str, kind: str, since_start: int,
    occurrences: list[Occurrence] = (), content: str = "id-only", error: str | None = None,
) -> dict:
    parameter: list[dict] = [{"name": "subscription", "valueReference": {"reference": f"{base}/Subscription/{subscription_id}"}}]
    if content != "empty":
        parameter.append({"name": "topic", "valueCanonical": topic.canonical})
    parameter += [
        {"name": "status", "valueCode": status},
        {"name": "type", "valueCode": kind},
        {"name": "events-since-subscription-start", "valueString": str(since_start)},
    ]
    for o in occurrences:
        part = [{"name": "event-number", "valueString": str(o.number)}, {"name": "timestamp", "valueInstant": o.at}]
        if content != "empty":
            part.append({"name": "focus", "valueReference": {"reference": f"{base}/{o.focus}"}})
            part += [{"name": "additional-context", "valueReference": {"reference": f"{base}/{v.resource_type}/{v.id}"}}
                     for v in o.context]
        parameter.append({"name": "notification-event", "part": part})
    if error:
        parameter.append({"name": "error", "valueCodeableConcept": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/subscription-error", "code": "no-response"}],
            "text": error}})
    return {"resourceType": "Parameters", "id": str(uuid.uuid4()), "parameter": parameter}


def _status_entry(base: str, subscription_id: str, parameters: dict) -> dict:
    return {
        "fullUrl": f"urn:uuid:{parameters['id']}",
        "resource": parameters,
        "request": {"method": "GET", "url": f"{base}/Subscription/{subscription_id}/$status"},
        "response": {"status": "200"},
    }


def _focus_entry(base: str, o: Occurrence, content: str) -> dict:
    rtype, rid = o.focus.split("/", 1)
    created = o.version is None or o.version.version_id == 1
    entry: dict = {"fullUrl": f"{base}/{o.focus}"}
    if content == "full-resource" and o.version is not None and o.version.body is not None:
        entry["resource"] = orjson.Fragment(o.version.body)  # the stored JSON, as it is
    entry["request"] = {"method": "POST", "url": rtype} if created else {"method": "PUT", "url": o.focus}
    entry["response"] = {"status": "201" if created else "200"}
    return entry


def _context_entry(base: str, v: ResourceVersion) -> dict:
    ref = f"{v.resource_type}/{v.id}"
    return {"fullUrl": f"{base}/{ref}", "resource": orjson.Fragment(v.body),
            "request": {"method": "GET", "url": ref}, "response": {"status": "200"}}


def notification_bundle(
    base: str, subscription_id: str, topic: Topic, status: str, kind: str, since_start: int,
    occurrences: list[Occurrence] = (), content: str = "id-only", error: str | None = None,
) -> dict:
    """A notification (or a ``$events`` answer): serialise with orjson (bodies are embedded as they are stored)."""
    parameters = status_parameters(base, subscription_id, topic, status, kind, since_start, occurrences, content, error)
    entries = [_status_entry(base, subscription_id, parameters)]
    if content != "empty":
        entries += [_focus_entry(base, o, content) for o in occurrences]
        if content == "full-resource":
            seen: set[tuple[str, str]] = set()
            for o in occurrences:
                for v in o.context:
                    if (v.resource_type, v.id) not in seen:
                        seen.add((v.resource_type, v.id))
                        entries.append(_context_entry(base, v))
    return {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "history", "timestamp": _now(), "entry": entries}


def status_bundle(base: str, subscription_id: str, parameters: dict) -> dict:
    """``$status``: a searchset Bundle of the status Parameters (one Subscription)."""
    return {
        "resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "searchset", "timestamp": _now(), "total": 1,
        "link": [{"relation": "self", "url": f"{base}/Subscription/{subscription_id}/$status"}],
        "entry": [{"fullUrl": f"urn:uuid:{parameters['id']}", "resource": parameters, "search": {"mode": "match"}}],
    }
