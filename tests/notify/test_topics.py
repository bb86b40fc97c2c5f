"""The seven topics (domain.md §7): what fires each, and the guide's Basic-wrapped
SubscriptionTopics in step with what the server runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fhir_server.notify.topics import TOPIC_BASE, TOPICS, topic_by_canonical, topic_by_code, topics_fired

PROFILES = Path(__file__).resolve().parents[2] / "profiles"
CS = "https://evi-fhir.org/fhir/CodeSystem/"
R5 = "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic."
R43 = "http://hl7.org/fhir/4.3/StructureDefinition/extension-SubscriptionTopic."


def _task(kind: str | None = None, status: str = "requested", owner: str | None = None) -> dict:
    task = {"resourceType": "Task", "status": status, "intent": "order"}
    if kind:
        task["code"] = {"coding": [{"system": f"{CS}evi-task-type", "code": kind}]}
    if owner:
        task["owner"] = {"reference": owner}
    return task


def _fired(rtype: str, previous: dict | None, current: dict | None) -> set[str]:
    return {t.code for t in topics_fired(rtype, previous, current)}


def test_the_seven_codes_of_the_contract():
    assert [t.code for t in TOPICS] == ["referral-received", "triage-completed", "communication-received",
                                        "task-assigned", "sip-changed", "appointment-booked", "care-transfer"]
    for topic in TOPICS:
        assert topic.canonical == TOPIC_BASE + topic.code
        assert topic_by_code(topic.code) is topic and topic_by_canonical(topic.canonical) is topic
    assert topic_by_code("nope") is None and topic_by_canonical(None) is None


def test_intake_tasks():
    intake = _task("intake", owner="Organization/evi")
    assert _fired("Task", None, intake) == {"referral-received", "task-assigned"}
    assert _fired("Task", intake, {**intake, "status": "in-progress"}) == set()
    done = {**intake, "status": "completed"}
    assert _fired("Task", intake, done) == {"triage-completed"}
    assert _fired("Task", done, {**done, "note": [{"text": "x"}]}) == set()  # already completed


def test_task_assigned_on_a_new_owner_only():
    assert _fired("Task", None, _task()) == set()  # no owner
    first = _task(owner="Organization/a")
    assert _fired("Task", None, first) == {"task-assigned"}
    assert _fired("Task", first, {**first, "status": "accepted"}) == set()
    assert _fired("Task", first, _task(owner="Organization/b")) == {"task-assigned"}


def test_care_transfer_on_every_status_change():
    transfer = _task("transfer-care-responsibility", owner="Organization/a")
    assert "care-transfer" in _fired("Task", None, transfer)
    assert _fired("Task", transfer, {**transfer, "status": "accepted"}) == {"care-transfer"}
    assert _fired("Task", transfer, {**transfer, "description": "x"}) == set()


def test_communications_sips_and_appointments():
    assert _fired("Communication", None, {"resourceType": "Communication", "status": "completed"}) == {
        "communication-received"}
    sip = {"resourceType": "CarePlan", "status": "active", "intent": "plan",
           "category": [{"coding": [{"system": f"{CS}evi-careplan-category", "code": "sip"}]}]}
    assert _fired("CarePlan", None, sip) == {"sip-changed"}
    assert _fired("CarePlan", sip, {**sip, "description": "revised"}) == {"sip-changed"}
    assert _fired("CarePlan", None, {**sip, "category": []}) == set()
    proposed = {"resourceType": "Appointment", "status": "proposed", "participant": []}
    assert _fired("Appointment", None, proposed) == set()
    assert _fired("Appointment", proposed, {**proposed, "status": "booked"}) == {"appointment-booked"}
    assert _fired("Appointment", None, {**proposed, "status": "booked"}) == {"appointment-booked"}


def test_deletes_and_other_types_fire_nothing():
    assert _fired("Task", _task("intake"), None) == set()
    assert _fired("Patient", None, {"resourceType": "Patient"}) == set()


def _ext(resource: dict, url: str) -> list[dict]:
    return [e for e in resource.get("extension", []) if e["url"] == url]


@pytest.mark.parametrize("topic", TOPICS, ids=lambda t: t.code)
def test_the_guide_publishes_each_topic_as_the_backport_ig_does_for_r4(topic):
    basic = json.loads((PROFILES / f"Basic-topic-{topic.code}.json").read_text())
    assert basic["resourceType"] == "Basic"
    assert basic["code"]["coding"][0]["code"] == "SubscriptionTopic"
    assert _ext(basic, R5 + "url")[0]["valueUri"] == topic.canonical
    [trigger] = _ext(basic, R43 + "resourceTrigger")
    resources = [e["valueUri"] for e in trigger["extension"] if e["url"] == "resource"]
    assert resources == [f"http://hl7.org/fhir/StructureDefinition/{topic.resource_type}"]
    filters = [next(p["valueString"] for p in f["extension"] if p["url"] == "filterParameter")
               for f in _ext(basic, R43 + "canFilterBy")]
    assert filters == [f.name for f in topic.filters]
