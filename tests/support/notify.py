"""Builders for the notification tests: backport Subscriptions, Tasks to fire topics with."""

from __future__ import annotations

import uuid

import httpx

__all__ = ["BACKPORT", "TOPIC", "FHIR_JSON", "subscription", "task", "create_subscription", "wait_status"]

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
TOPIC = "https://evi-fhir.org/fhir/SubscriptionTopic/"
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def subscription(topic: str, endpoint: str, *, filters: tuple[str, ...] = (), content: str | None = "id-only",
                 headers: tuple[str, ...] = (), heartbeat: int | None = None, timeout: int | None = None,
                 max_count: int | None = None, status: str = "requested") -> dict:
    """A backport-subscription (IG 1.1.0) on the rest-hook channel."""
    channel: dict = {"type": "rest-hook", "endpoint": endpoint}
    if headers:
        channel["header"] = list(headers)
    if content is not None:
        channel["payload"] = "application/fhir+json"
        channel["_payload"] = {"extension": [{"url": BACKPORT + "backport-payload-content", "valueCode": content}]}
    extensions = []
    if heartbeat is not None:
        extensions.append({"url": BACKPORT + "backport-heartbeat-period", "valueUnsignedInt": heartbeat})
    if timeout is not None:
        extensions.append({"url": BACKPORT + "backport-timeout", "valueUnsignedInt": timeout})
    if max_count is not None:
        extensions.append({"url": BACKPORT + "backport-max-count", "valuePositiveInt": max_count})
    if extensions:
        channel["extension"] = extensions
    resource = {
        "resourceType": "Subscription",
        "meta": {"profile": [BACKPORT + "backport-subscription"]},
        "status": status,
        "reason": "tests",
        "criteria": TOPIC + topic,
        "channel": channel,
    }
    if filters:
        resource["_criteria"] = {"extension": [{"url": BACKPORT + "backport-filter-criteria", "valueString": f}
                                               for f in filters]}
    return resource


def task(owner: str | None = None, *, code: str | None = None, status: str = "requested", **extra) -> dict:
    resource = {"resourceType": "Task", "status": status, "intent": "order",
                "identifier": [{"system": "urn:test", "value": uuid.uuid4().hex}], **extra}
    if owner:
        resource["owner"] = {"reference": owner}
    if code:
        system, value = code.split("|")
        resource["code"] = {"coding": [{"system": system, "code": value}]}
    return resource


def create_subscription(client: httpx.Client, resource: dict, headers: dict | None = None) -> dict:
    r = client.post("/Subscription", json=resource, headers={**FHIR_JSON, **(headers or {})})
    assert r.status_code == 201, r.text
    return r.json()


def wait_status(client: httpx.Client, sid: str, status: str, timeout: float = 20.0, headers: dict | None = None) -> dict:
    import time

    deadline = time.monotonic() + timeout
    while True:
        found = client.get(f"/Subscription/{sid}", headers=headers or {}).json()
        if found.get("status") == status:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"Subscription/{sid} stayed {found.get('status')}: {found}")
        time.sleep(0.05)
