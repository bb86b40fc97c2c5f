"""Notification Bundles as the backport IG 1.1.0 gives them for R4: a history Bundle, the
status Parameters first, then the payload the subscription asks for."""

from __future__ import annotations

import orjson

from fhir_server.notify.notification import Occurrence, notification_bundle, status_bundle, status_parameters
from fhir_server.notify.topics import topic_by_code
from fhir_server.storage import ResourceVersion

BASE = "http://evi.example/fhir"
TOPIC = topic_by_code("task-assigned")
AT = "2026-03-01T10:00:00.000Z"


def _version(rtype: str, rid: str, n: int, body: dict) -> ResourceVersion:
    return ResourceVersion(rtype, rid, n, AT, False, "PUT", orjson.dumps({"resourceType": rtype, "id": rid, **body}))


def _bundle(content: str, occurrences=()) -> dict:
    made = notification_bundle(BASE, "s1", TOPIC, "active", "event-notification", 7, list(occurrences), content)
    return orjson.loads(orjson.dumps(made))


def _params(bundle: dict) -> dict[str, list]:
    out: dict[str, list] = {}
    for p in bundle["entry"][0]["resource"]["parameter"]:
        out.setdefault(p["name"], []).append(p)
    return out


def _task_events() -> list[Occurrence]:
    patient = _version("Patient", "p1", 1, {"birthDate": "2013-01-01"})
    return [Occurrence(6, AT, "Task/t1", _version("Task", "t1", 1, {"status": "requested"}), (patient,)),
            Occurrence(7, AT, "Task/t2", _version("Task", "t2", 3, {"status": "requested"}), (patient,))]


def test_full_resource():
    bundle = _bundle("full-resource", _task_events())
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "history"
    status = bundle["entry"][0]
    assert status["resource"]["resourceType"] == "Parameters"
    assert status["request"] == {"method": "GET", "url": f"{BASE}/Subscription/s1/$status"}
    params = _params(bundle)
    assert params["subscription"][0]["valueReference"]["reference"] == f"{BASE}/Subscription/s1"
    assert params["topic"][0]["valueCanonical"] == TOPIC.canonical
    assert params["status"][0]["valueCode"] == "active" and params["type"][0]["valueCode"] == "event-notification"
    assert params["events-since-subscription-start"][0]["valueString"] == "7"
    events = [{p["name"]: p for p in e["part"]} for e in params["notification-event"]]
    assert [e["event-number"]["valueString"] for e in events] == ["6", "7"]
    assert [e["focus"]["valueReference"]["reference"] for e in events] == [f"{BASE}/Task/t1", f"{BASE}/Task/t2"]
    assert events[0]["timestamp"]["valueInstant"] == AT
    assert events[0]["additional-context"]["valueReference"]["reference"] == f"{BASE}/Patient/p1"
    entries = bundle["entry"][1:]
    assert [e["fullUrl"] for e in entries] == [f"{BASE}/Task/t1", f"{BASE}/Task/t2", f"{BASE}/Patient/p1"]
    assert entries[0]["request"] == {"method": "POST", "url": "Task"} and entries[0]["response"]["status"] == "201"
    assert entries[1]["request"] == {"method": "PUT", "url": "Task/t2"} and entries[1]["response"]["status"] == "200"
    assert all(e["resource"]["id"] == e["fullUrl"].rsplit("/", 1)[1] for e in entries)  # the patient once


def test_id_only_names_the_focus_without_content():
    events = [Occurrence(1, AT, "Task/t1")]
    bundle = _bundle("id-only", events)
    assert [e["fullUrl"] for e in bundle["entry"][1:]] == [f"{BASE}/Task/t1"]
    assert "resource" not in bundle["entry"][1]
    assert "focus" in {p["name"] for p in _params(bundle)["notification-event"][0]["part"]}


def test_empty_carries_neither_topic_nor_focus():
    bundle = _bundle("empty", [Occurrence(1, AT, "Task/t1")])
    assert len(bundle["entry"]) == 1
    params = _params(bundle)
    assert "topic" not in params
    assert [p["name"] for p in params["notification-event"][0]["part"]] == ["event-number", "timestamp"]


def test_status_bundle_and_error():
    parameters = status_parameters(BASE, "s1", TOPIC, "error", "query-status", 3, error="HTTP 500 for 24 hours")
    bundle = status_bundle(BASE, "s1", parameters)
    assert bundle["type"] == "searchset" and bundle["total"] == 1
    [error] = [p for p in bundle["entry"][0]["resource"]["parameter"] if p["name"] == "error"]
    assert error["valueCodeableConcept"]["text"] == "HTTP 500 for 24 hours"
