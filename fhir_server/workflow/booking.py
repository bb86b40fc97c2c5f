"""``$triage`` outcome ``book-first-visit``: an Appointment (evi-appointment) on a free Slot,
which becomes busy, in the triage's unit of work.

Double booking: the Slot is re-read inside the write unit of work (SQLite takes its write
lock at the first statement, so read-check-write is serialized across processes; MongoDB
serializes on ``uow.guard``), written with ``If-Match`` of the version read, and a version
already taken makes the whole unit of work fail with 409 (any backend).
"""

from __future__ import annotations

from datetime import datetime

import orjson

from fhir_server.engine import ResourceVersion, Work, find_matches
from fhir_server.errors import BadRequest, Conflict, Unprocessable
from fhir_server.workflow.codes import APPOINTMENT, CARE_LEVEL, EXT_CARE_LEVEL, EXT_VISIT_MODE, VISIT_MODE
from fhir_server.workflow.resources import literal, load, organization_types, reference_of
from fhir_server.workflow.triage_outcomes import TriageContext, update_read_version
from fhir_server.workflow.triage_parameters import definitions_of_parameters

__all__ = ["CARE_LEVEL_BY_UNIT_TYPE", "book_first_visit"]

#: the default care level of a booked first visit, by the evi-organization-type of the Slot's unit
CARE_LEVEL_BY_UNIT_TYPE = {"primary-care": "primary", "bup-clinic": "specialist"}
#: Appointment statuses that no longer hold their Slot
_RELEASED = frozenset({"cancelled", "noshow", "entered-in-error"})


def book_first_visit(t: TriageContext) -> list[tuple[str, dict]]:
    work, request = t.work, t.request
    slot_id, where = request.slot, request.where("slot")
    current, slot = _free_slot(work, slot_id, where)
    patient, focus = t.patient, t.focus
    service_ref, service = _service_of(work, slot, slot_id, where)
    care_level = request.care_level or _care_level_of(work, service)
    visit_mode = request.visit_mode or definitions_of_parameters()["visitMode"].get("default", "in-person")

    slot["status"] = "busy"
    update_read_version(work, "Slot", slot_id, slot, current.version_id)

    appointment = {
        "resourceType": "Appointment",
        "meta": {"profile": [APPOINTMENT]},
        "extension": [
            {"url": EXT_CARE_LEVEL, "valueCoding": t.coding(CARE_LEVEL, care_level)},
            {"url": EXT_VISIT_MODE, "valueCoding": t.coding(VISIT_MODE, visit_mode)},
        ],
        "status": "booked",
        "start": slot.get("start"),
        "end": slot.get("end"),
        "slot": [{"reference": f"Slot/{slot_id}"}],
        "created": datetime.now(t.region.zone).date().isoformat(),
        "basedOn": [{"reference": focus}],
        "participant": [
            {"actor": {"reference": patient}, "required": "required", "status": "accepted"},
            {"actor": {"reference": service_ref}, "required": "required", "status": "accepted"},
        ],
    }
    if service.get("name"):
        appointment["description"] = f"Första besök: {service['name']}"
    reason = t.original().get("reasonCode")
    if reason:
        appointment["reasonCode"] = reason
    if request.note:
        appointment["comment"] = request.note
    return [("Appointment", appointment)]


def _free_slot(work: Work, slot_id: str, where: str) -> tuple[ResourceVersion, dict]:
    """The Slot's current version and content; 422 when unknown, 409 when not free or booked."""
    work.uow.guard(f"Slot/{slot_id}")  # Mongo: serializes bookings of this Slot; SQLite: holds the write lock
    current = work.uow.current("Slot", slot_id)
    if current is None or current.deleted:
        raise Unprocessable(f"Parameter 'slot': Slot/{slot_id} is not on this server", expression=where)
    slot = orjson.loads(current.body)
    if slot.get("status") != "free":
        raise Conflict(
            f"Slot/{slot_id} is '{slot.get('status')}', not free: it cannot be booked", expression=where
        )
    for aid in find_matches(work, "Appointment", [("slot", f"Slot/{slot_id}")], limit=100):
        appointment = load(work, f"Appointment/{aid}") or {}
        if appointment.get("status") not in _RELEASED:
            raise Conflict(
                f"Slot/{slot_id} is already booked by Appointment/{aid} ({appointment.get('status')})",
                expression=where,
            )
    return current, slot


def _service_of(work: Work, slot: dict, slot_id: str, where: str) -> tuple[str, dict]:
    """The HealthcareService the Slot's Schedule is for (a first visit is booked with it)."""
    schedule = load(work, slot.get("schedule"), "Schedule")
    if schedule is None:
        raise Unprocessable(f"Slot/{slot_id} has no Schedule on this server", expression=where)
    actor = next((a for a in schedule.get("actor") or () if literal(a, "HealthcareService")), None)
    service_ref = reference_of(actor)
    service = load(work, service_ref, "HealthcareService") if service_ref else None
    if service is None:
        raise Unprocessable(
            f"The Schedule of Slot/{slot_id} has no HealthcareService actor on this server; "
            "a first visit is booked with the unit's HealthcareService",
            expression=where,
        )
    return service_ref, service


def _care_level_of(work: Work, service: dict) -> str:
    """The care level the service's unit implies (400 when it implies none or several)."""
    unit = load(work, service.get("providedBy"), "Organization")
    types = organization_types(unit)
    levels = {CARE_LEVEL_BY_UNIT_TYPE[u] for u in types if u in CARE_LEVEL_BY_UNIT_TYPE}
    if len(levels) != 1:
        described = ", ".join(sorted(types)) or "no evi-organization-type"
        raise BadRequest(
            f"Parameter 'careLevel' is required: the Slot's unit ({reference_of(service.get('providedBy'))}, "
            f"{described}) is neither primary-care nor bup-clinic, so the care level cannot be derived",
            expression="careLevel",
        )
    return levels.pop()
