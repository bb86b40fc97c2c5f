"""What each ``$triage`` outcome creates (``mappings/triage-outcomes.json``), built over a
``TriageContext``: the unit of work, the intake Task and the checked request. Booking a
first visit is ``workflow.booking``.

  advice, redirect-existing-contact, not-eligible   nothing besides the outcome
  refer-primary-care    ServiceRequest to the primary-care unit (performer = recipient)
  refer-other-actor     Communication to the actor (recipient)
  acute-handover        Task acute-handover owned by the region's BUP acute unit (or recipient)
"""

from __future__ import annotations

from dataclasses import dataclass

from fhir_server.engine import Work, WriteOutcome, update
from fhir_server.errors import Conflict, PreconditionFailed, Unprocessable
from fhir_server.workflow.codes import TASK_TYPE
from fhir_server.workflow.displays import coding
from fhir_server.workflow.region import Region, resolve_unit
from fhir_server.workflow.resources import literal, load
from fhir_server.workflow.triage_parameters import TriageRequest

__all__ = ["COMMUNICATION_TEXT", "TriageContext", "SIMPLE_BUILDERS", "update_read_version"]

COMMUNICATION_TEXT = "En väg in har bedömt kontakten och hänvisar den till er enligt rutin."


@dataclass
class TriageContext:
    """What the outcome builders need: the unit of work, the intake Task and the request."""

    work: Work
    region: Region
    request: TriageRequest
    task_id: str
    task: dict
    now: str

    @property
    def profiles_dir(self) -> str | None:
        return self.work.runtime.profiles_dir

    def coding(self, system: str, code: str) -> dict:
        return coding(system, code, self.profiles_dir)

    def ref(self, element: str, resource_type: str) -> str:
        """``Type/id`` of a reference on the intake Task the outcome needs."""
        found = literal(self.task.get(element), resource_type)
        if found is None:
            raise Unprocessable(
                f"Task/{self.task_id} has no {element} reference to a {resource_type}; "
                f"the outcome '{self.request.outcome}' needs it",
                expression=f"Task.{element}",
            )
        return f"{resource_type}/{found[1]}"

    @property
    def focus(self) -> str:
        return self.ref("focus", "ServiceRequest")

    @property
    def patient(self) -> str:
        return self.ref("for", "Patient")

    @property
    def owner(self) -> str:
        return self.ref("owner", "Organization")

    def original(self) -> dict:
        """The original ServiceRequest (empty when it is gone)."""
        return load(self.work, self.focus) or {}

    def recipient(self) -> str:
        rid = self.request.recipient
        found = self.work.uow.current("Organization", rid)
        if found is None or found.deleted:
            raise Unprocessable(
                f"Parameter 'recipient': Organization/{rid} is not on this server",
                expression=self.request.where("recipient"),
            )
        return f"Organization/{rid}"


def _refer_primary_care(t: TriageContext) -> list[tuple[str, dict]]:
    original = t.original()
    request = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": t.patient},
        "basedOn": [{"reference": t.focus}],
        "authoredOn": t.now,
        "requester": {"reference": t.owner},
        "performer": [{"reference": t.recipient()}],
    }
    for key in ("priority", "reasonCode"):
        if original.get(key):
            request[key] = original[key]
    if t.request.note:
        request["note"] = [{"time": t.now, "text": t.request.note}]
    return [("ServiceRequest", request)]


def _refer_other_actor(t: TriageContext) -> list[tuple[str, dict]]:
    communication = {
        "resourceType": "Communication",
        "status": "completed",
        "subject": {"reference": t.patient},
        "about": [{"reference": t.focus}, {"reference": f"Task/{t.task_id}"}],
        "sent": t.now,
        "recipient": [{"reference": t.recipient()}],
        "sender": {"reference": t.owner},
        "payload": [{"contentString": t.request.note or COMMUNICATION_TEXT}],
    }
    reason = t.original().get("reasonCode")
    if reason:
        communication["reasonCode"] = reason
    return [("Communication", communication)]


def _acute_handover(t: TriageContext) -> list[tuple[str, dict]]:
    if t.request.recipient is not None:
        owner = t.recipient()
    else:
        owner = resolve_unit(t.work, t.region.bup_acute_unit, "bup-acute", "bup_acute_unit")
    handover = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "code": {"coding": [t.coding(TASK_TYPE, "acute-handover")]},
        "focus": {"reference": t.focus},
        "for": {"reference": t.patient},
        "authoredOn": t.now,
        "lastModified": t.now,
        "requester": {"reference": t.owner},
        "owner": {"reference": owner},
    }
    if t.task.get("priority"):
        handover["priority"] = t.task["priority"]
    if t.request.note:
        handover["note"] = [{"time": t.now, "text": t.request.note}]
    return [("Task", handover)]


SIMPLE_BUILDERS = {
    "advice": lambda t: [],
    "refer-primary-care": _refer_primary_care,
    "refer-other-actor": _refer_other_actor,
    "acute-handover": _acute_handover,
    "redirect-existing-contact": lambda t: [],
    "not-eligible": lambda t: [],
}


def update_read_version(
    work: Work, resource_type: str, rid: str, resource: dict, version_read: int
) -> WriteOutcome:
    """Update with If-Match of the version read; a lost race is a 409 (the caller read stale data)."""
    try:
        return update(work, resource_type, rid, resource, if_match=f'W/"{version_read}"')
    except PreconditionFailed as exc:
        raise Conflict(f"{resource_type}/{rid} changed while $triage ran; try again ({exc.message})") from None
