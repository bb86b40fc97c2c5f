"""Deliveries that carry patient data are in the PDL access log (engine/disclosures.py,
domain.md §6): one AuditEvent per patient and attempt, naming the Subscription, the
recipient's URL and what was carried; an empty payload names nothing and is not logged."""

from __future__ import annotations

import time
import uuid

from tests.support.notify import FHIR_JSON, create_subscription, subscription, task, wait_status
from tests.support.webhook import Receiver

NOTIFICATION = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-notification"


def _events_of(client, patient: str) -> list[dict]:
    r = client.get("/AuditEvent", params={"patient": patient, "_count": "100"})
    assert r.status_code == 200, r.text
    return [e["resource"] for e in r.json().get("entry", [])]


def _deliveries(events: list[dict]) -> list[dict]:
    return [e for e in events if any(s.get("code") == NOTIFICATION for s in e["subtype"])]


def _logged_deliveries(client, patient: str) -> list[dict]:
    """The child's delivery events, once there are any (up to 5 s): the attempt is logged
    before the worker moves on, and the log is read right after the receiver got it."""
    for _ in range(100):
        found = _deliveries(_events_of(client, patient))
        if found:
            return found
        time.sleep(0.05)
    return []


def test_each_delivery_carrying_a_childs_data_is_logged_for_that_child(fhir_http):
    mine, child = f"Organization/o-{uuid.uuid4().hex[:12]}", f"child-{uuid.uuid4().hex[:10]}"
    with Receiver() as full, Receiver() as empty:
        subs = {}
        for hook, content in ((full, "full-resource"), (empty, "empty")):
            sub = create_subscription(fhir_http, subscription(
                "task-assigned", hook.url, filters=(f"Task?owner={mine}",), content=content))
            wait_status(fhir_http, sub["id"], "active")
            subs[content] = sub["id"]
        r = fhir_http.post("/Task", json=task(mine, **{"for": {"reference": f"Patient/{child}"}}), headers=FHIR_JSON)
        assert r.status_code == 201, r.text
        written = r.json()
        for hook in (full, empty):
            hook.wait_for(lambda hook=hook: hook.events() == [1])
    [event] = _logged_deliveries(fhir_http, child)
    assert event["action"] == "E" and event["outcome"] == "0"
    assert {"system": "http://hl7.org/fhir/restful-interaction", "code": "operation"} in event["subtype"]
    client_agent = event["agent"][0]
    assert client_agent["network"] == {"address": full.url, "type": "5"}
    whats = [e["what"] for e in event["entity"] if "what" in e]
    # the query entity names the stream the attempt belonged to
    assert any(e.get("description") == f"Subscription/{subs['full-resource']}" for e in event["entity"])
    assert {"reference": f"Patient/{child}"} in whats
    assert {"reference": f"Task/{written['id']}"} in whats
    # the request id names the stream and the event numbers
    assert {"identifier": {"value": f"Subscription/{subs['full-resource']}#1-1"}} in whats
    # the empty payload named nothing: no event for its stream
    assert not any(f"Subscription/{subs['empty']}" in str(e["entity"]) for e in _events_of(fhir_http, child))


def test_the_delivery_event_validates_against_the_audit_profile(fhir_http):
    mine, child = f"Organization/o-{uuid.uuid4().hex[:12]}", f"child-{uuid.uuid4().hex[:10]}"
    with Receiver() as ids:
        sub = create_subscription(fhir_http, subscription(
            "task-assigned", ids.url, filters=(f"Task?owner={mine}",), content="id-only"))
        wait_status(fhir_http, sub["id"], "active")
        assert fhir_http.post("/Task", json=task(mine, **{"for": {"reference": f"Patient/{child}"}}),
                              headers=FHIR_JSON).status_code == 201
        ids.wait_for(lambda: ids.events() == [1])
    [event] = _logged_deliveries(fhir_http, child)
    r = fhir_http.post("/AuditEvent/$validate", json=event, headers=FHIR_JSON)
    errors = [i for i in r.json()["issue"] if i["severity"] in ("error", "fatal")]
    assert r.status_code == 200 and not errors, errors
