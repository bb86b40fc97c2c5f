"""engine/disclosures.py: a delivery attempt becomes one Access per patient it carried,
with the attempt's facts (the recipient as a URI, failed attempts as outcome 8)."""

from __future__ import annotations

from dataclasses import dataclass

from fhir_server.app import build_runtime
from fhir_server.audit import ServerIdentity, audit_event
from fhir_server.engine import DisclosureRecorder, RequestContext, create
from fhir_server.settings import Settings

BASE = "http://evi.example/fhir"


@dataclass
class Attempt:
    resources: tuple
    content: str = "full-resource"
    outcome: str = "delivered"
    owner: object = None
    stream: str = "Subscription/s1"
    recipient: str = "https://receiver.example/hook"
    events: tuple = (4, 6)


class Writer:
    def __init__(self):
        self.written = []

    def write_blocking(self, facts, accesses):
        self.written.append((facts, accesses))


def _recorder(tmp_path):
    runtime = build_runtime(Settings(storage=f"sqlite://{tmp_path / 'evi.db'}"))
    ctx = RequestContext(base_url=BASE)
    with runtime.work(ctx, write=True) as work:
        task = create(work, "Task", {"resourceType": "Task", "status": "requested", "intent": "order",
                                     "for": {"reference": "Patient/p2"}}).version.id
        unit = create(work, "Organization", {"resourceType": "Organization", "name": "BUP"}).version.id
    writer = Writer()
    return runtime, DisclosureRecorder(writer, runtime, BASE, auth_on=False), writer, task, unit


def test_one_access_per_patient_and_nothing_for_other_data(tmp_path):
    runtime, recorder, writer, task, unit = _recorder(tmp_path)
    try:
        recorder(Attempt((("Patient", "p1"), ("Task", task), ("Organization", unit))))
        recorder(Attempt((("Organization", unit),)))  # no patient data: not logged
        recorder(Attempt(()))  # an empty payload
    finally:
        runtime.store.close()
    [(facts, accesses)] = writer.written
    assert {(a.patient, a.resources) for a in accesses} == {("p1", ("Patient/p1",)), ("p2", (f"Task/{task}",))}
    assert all(a.interaction == "operation" and a.operation == "notification" and a.path == "Subscription/s1"
               for a in accesses)
    assert (facts.status, facts.address, facts.address_type, facts.request_id) == (
        200, "https://receiver.example/hook", "5", "Subscription/s1#4-6")


def test_a_failed_relay_attempt_is_a_server_failure_made_by_the_server(tmp_path):
    runtime, recorder, writer, task, _ = _recorder(tmp_path)
    try:
        recorder(Attempt((("Task", task),), content="relay", outcome="failed", stream="relay/upstream"))
    finally:
        runtime.store.close()
    [(facts, [access])] = writer.written
    event = audit_event(facts, access, ServerIdentity(BASE))
    assert event["outcome"] == "8" and event["action"] == "E"
    assert event["subtype"][1]["code"] == "https://evi-fhir.org/fhir/relay"
    assert "relay" in event["agent"][0]["who"]["display"]
