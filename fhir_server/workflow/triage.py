"""``Task/{id}/$triage`` (rule 4): record a contact's triage outcome and create what it
implies, atomically, in one unit of work.

What each outcome creates, which Parameters it requires and accepts, and which outputs
it records on the intake Task is the table ``mappings/triage-outcomes.json``
(``fhir_server.conformance.mappings.triage_outcome``); this module follows it:

  advice, redirect-existing-contact, not-eligible   nothing besides the outcome
  refer-primary-care    ServiceRequest to the primary-care unit (performer = recipient)
  refer-other-actor     Communication to the actor (recipient)
  book-first-visit      Appointment (evi-appointment) on a free Slot; the Slot becomes busy
  acute-handover        Task acute-handover owned by the region's BUP acute unit (or recipient)

The intake Task becomes ``completed`` (businessStatus ``triaged``) with output
``triage-outcome`` and one output ``created`` per created resource. The answer is a
Parameters resource: ``task`` (the stored Task) and one ``created`` per created resource.

Double booking: a Slot is re-read inside the write unit of work (SQLite takes its write
lock at the first statement, so read-check-write is serialized across processes), the
Slot and the Task are written with ``If-Match`` of the version read, and a version
already taken makes the whole unit of work fail with 409 (any backend).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

import orjson

from fhir_server.conformance import guide_terminology, ig_directory
from fhir_server.conformance.mappings import TriageOutcomeMapping, load_mappings, triage_outcome, triage_outcomes
from fhir_server.engine import RequestContext, Runtime, Work, create, find_matches, read, update
from fhir_server.errors import BadRequest, Conflict, Issue, PreconditionFailed, Unprocessable
from fhir_server.workflow.codes import (
    APPOINTMENT,
    CARE_LEVEL,
    EXT_CARE_LEVEL,
    EXT_VISIT_MODE,
    TASK_PARAMETER,
    TASK_STAGE,
    TASK_TYPE,
    TRIAGE_OUTCOME,
    VISIT_MODE,
)
from fhir_server.workflow.displays import coding
from fhir_server.workflow.region import Region, resolve_unit
from fhir_server.workflow.resources import codes_of, has_code, literal, load, organization_types, reference_of
from fhir_server.workflow.task_states import allow_server_transition

__all__ = ["TriageRequest", "parse_parameters", "triage", "CARE_LEVEL_BY_UNIT_TYPE"]

#: the default care level of a booked first visit, by the evi-organization-type of the Slot's unit
CARE_LEVEL_BY_UNIT_TYPE = {"primary-care": "primary", "bup-clinic": "specialist"}
#: Appointment statuses that no longer hold their Slot
_RELEASED = frozenset({"cancelled", "noshow", "entered-in-error"})
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_FIELD = {"careLevel": "care_level", "visitMode": "visit_mode"}
_CODE_SYSTEMS = {"outcome": TRIAGE_OUTCOME, "careLevel": CARE_LEVEL, "visitMode": VISIT_MODE}
COMMUNICATION_TEXT = "En väg in har bedömt kontakten och hänvisar den till er enligt rutin."


# ---- the request ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TriageRequest:
    """The checked input Parameters of one ``$triage`` call."""

    outcome: str
    note: str | None = None
    slot: str | None = None  # Slot id
    recipient: str | None = None  # Organization id
    care_level: str | None = None
    visit_mode: str | None = None
    #: parameter name -> its index in Parameters.parameter (for error expressions)
    positions: dict[str, int] = field(default_factory=dict, compare=False)

    def where(self, name: str) -> str:
        index = self.positions.get(name)
        return f"Parameters.parameter[{index}]" if index is not None else name


def _definitions() -> dict[str, dict]:
    """name -> {valueType, targetType...} of every input: the table's parameters plus outcome."""
    table = load_mappings("triage-outcomes")
    return {"outcome": {"valueType": "Coding"}, **table["parameters"]}


def _codes(system: str, profiles_dir: str | None) -> frozenset[str]:
    """Every code of one of the guide's CodeSystems (nested concepts too)."""
    return guide_terminology(ig_directory(profiles_dir)).codes(system)


def _known_codes(name: str, profiles_dir: str | None) -> frozenset[str]:
    if name == "outcome":
        return frozenset(triage_outcomes())
    return _codes(_CODE_SYSTEMS[name], profiles_dir)


def _literal_id(value: dict, target: str, base_url: str | None) -> str | None:
    """The id of a literal ``{target}/{id}`` reference (relative, or absolute on this server)."""
    reference = value.get("reference")
    if not isinstance(reference, str):
        return None
    if base_url and reference.startswith(base_url.rstrip("/") + "/"):
        reference = reference[len(base_url.rstrip("/")) + 1:]
    rtype, _, rid = reference.partition("/")
    if rtype != target or not _ID.fullmatch(rid):
        return None
    if value.get("type") not in (None, target):
        return None
    return rid


def _value(
    entry: dict, name: str, where: str, definition: dict, base_url: str | None, profiles_dir: str | None
) -> tuple[str | None, Issue | None]:
    """The checked value of one parameter entry, or the issue that makes it unusable."""
    value_type = definition["valueType"]
    key = "value" + value_type[0].upper() + value_type[1:]
    present = [k for k in entry if k.startswith("value")] + [k for k in ("resource", "part") if k in entry]
    if present != [key]:
        got = ", ".join(present) or "no value"
        return None, Issue(f"Parameter '{name}' takes {key}; got {got}", "invalid", (where,))
    value = entry[key]
    if value_type == "string":
        if not isinstance(value, str) or not value.strip():
            return None, Issue(f"Parameter '{name}' needs a non-empty valueString", "invalid", (where,))
        return value, None
    if not isinstance(value, dict):
        return None, Issue(f"Parameter '{name}': {key} must be a JSON object", "invalid", (where,))
    if value_type == "Reference":
        target = definition["targetType"]
        rid = _literal_id(value, target, base_url)
        if rid is None:
            shown = value.get("reference", "no literal reference")
            return None, Issue(
                f"Parameter '{name}' must be a literal reference {target}/{{id}}; got {shown!r}", "invalid", (where,)
            )
        return rid, None
    # Coding
    system, code = value.get("system"), value.get("code")
    expected = _CODE_SYSTEMS[name]
    if not isinstance(code, str) or not code:
        return None, Issue(f"Parameter '{name}': the Coding has no code", "invalid", (where,))
    if system != expected:
        return None, Issue(
            f"Parameter '{name}': the Coding's system must be {expected}; got {system!r}", "code-invalid", (where,)
        )
    known = _known_codes(name, profiles_dir)
    if code not in known:
        return None, Issue(
            f"Parameter '{name}': unknown code '{code}' of {expected}; known: {', '.join(sorted(known))}",
            "code-invalid",
            (where,),
        )
    return code, None


def parse_parameters(
    parameters: dict, *, base_url: str | None = None, profiles_dir: str | None = None
) -> TriageRequest:
    """Check the input Parameters against the outcome's row of the table; 400 lists every problem."""
    definitions = _definitions()
    entries = parameters.get("parameter")
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise BadRequest("Parameters.parameter must be a list", expression="Parameters.parameter")
    issues: list[Issue] = []
    values: dict[str, str] = {}
    positions: dict[str, int] = {}
    for i, entry in enumerate(entries):
        where = f"Parameters.parameter[{i}]"
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name:
            issues.append(Issue("Every parameter needs a name", "invalid", (where,)))
            continue
        if name not in definitions:
            issues.append(Issue(
                f"Unknown parameter '{name}'; $triage takes {', '.join(definitions)}", "invalid", (where,)
            ))
            continue
        if name in positions:
            issues.append(Issue(
                f"Parameter '{name}' is repeated (first at Parameters.parameter[{positions[name]}]); "
                "give it at most once",
                "invalid",
                (where,),
            ))
            continue
        positions[name] = i
        value, issue = _value(entry, name, where, definitions[name], base_url, profiles_dir)
        if issue is not None:
            issues.append(issue)
        else:
            values[name] = value
    outcome = values.get("outcome")
    if "outcome" not in positions:
        issues.insert(0, Issue(
            "Parameter 'outcome' is required (valueCoding from " + TRIAGE_OUTCOME + ")", "required", ("outcome",)
        ))
    if outcome is not None:
        mapping = triage_outcome(outcome)
        for name, index in positions.items():
            if name != "outcome" and name not in mapping.allowed_parameters:
                uses = ", ".join(mapping.required_parameters + mapping.optional_parameters) or "nothing"
                issues.append(Issue(
                    f"The outcome '{outcome}' does not use parameter '{name}' (it takes {uses})",
                    "invalid",
                    (f"Parameters.parameter[{index}]",),
                ))
        for name in mapping.required_parameters:
            if name not in positions:
                issues.append(Issue(f"The outcome '{outcome}' requires parameter '{name}'", "required", (name,)))
    if issues:
        raise BadRequest(issues[0].diagnostics, issues=issues)
    return TriageRequest(
        outcome=outcome,
        note=values.get("note"),
        slot=values.get("slot"),
        recipient=values.get("recipient"),
        care_level=values.get("careLevel"),
        visit_mode=values.get("visitMode"),
        positions=positions,
    )


# ---- the unit of work -------------------------------------------------------------------------


@dataclass
class _Triage:
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


def _refer_primary_care(t: _Triage) -> list[tuple[str, dict]]:
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


def _refer_other_actor(t: _Triage) -> list[tuple[str, dict]]:
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


def _acute_handover(t: _Triage) -> list[tuple[str, dict]]:
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


def _book_first_visit(t: _Triage) -> list[tuple[str, dict]]:
    work, request = t.work, t.request
    slot_id, where = request.slot, request.where("slot")
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
    patient, focus = t.patient, t.focus
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
    care_level = request.care_level
    if care_level is None:
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
        care_level = levels.pop()
    visit_mode = request.visit_mode or _definitions()["visitMode"].get("default", "in-person")

    slot["status"] = "busy"
    _write(work, "Slot", slot_id, slot, current.version_id)

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


_BUILDERS: dict[str, Callable[[_Triage], list[tuple[str, dict]]]] = {
    "advice": lambda t: [],
    "refer-primary-care": _refer_primary_care,
    "refer-other-actor": _refer_other_actor,
    "book-first-visit": _book_first_visit,
    "acute-handover": _acute_handover,
    "redirect-existing-contact": lambda t: [],
    "not-eligible": lambda t: [],
}


def _write(work: Work, resource_type: str, rid: str, resource: dict, version_read: int) -> dict:
    """Update with If-Match of the version read; a lost race is a 409 (the caller read stale data)."""
    try:
        return update(work, resource_type, rid, resource, if_match=f'W/"{version_read}"').resource
    except PreconditionFailed as exc:
        raise Conflict(f"{resource_type}/{rid} changed while $triage ran; try again ({exc.message})") from None


def _completes_from() -> tuple[str, ...]:
    return tuple(load_mappings("triage-outcomes")["intakeTask"]["completesFrom"])


def _parameter_type(kind: str, profiles_dir: str | None) -> dict:
    return {"coding": [coding(TASK_PARAMETER, kind, profiles_dir)]}


def _complete(t: _Triage, version_read: int, created: list[dict]) -> dict:
    task, profiles_dir = t.task, t.profiles_dir
    old = task.get("status")
    # earlier triage outputs cannot exist on an open Task, but never leave two outcomes
    kept = [
        o for o in task.get("output") or ()
        if not set(codes_of(o.get("type"), TASK_PARAMETER)) & {"triage-outcome", "created"}
    ]
    outputs = [{
        "type": _parameter_type("triage-outcome", profiles_dir),
        "valueCoding": coding(TRIAGE_OUTCOME, t.request.outcome, profiles_dir),
    }]
    outputs += [
        {
            "type": _parameter_type("created", profiles_dir),
            "valueReference": {"reference": f"{r['resourceType']}/{r['id']}"},
        }
        for r in created
    ]
    task["status"] = "completed"
    task["businessStatus"] = {"coding": [coding(TASK_STAGE, "triaged", profiles_dir)]}
    task["output"] = kept + outputs
    task["lastModified"] = t.now
    period = dict(task.get("executionPeriod") or {})
    period["end"] = t.now
    task["executionPeriod"] = period
    if t.request.note:
        task["note"] = list(task.get("note") or []) + [{"time": t.now, "text": t.request.note}]
    allow_server_transition(t.work, t.task_id, old, "completed")
    return _write(t.work, "Task", t.task_id, task, version_read)


def _run(work: Work, region: Region, mapping: TriageOutcomeMapping, task_id: str, request: TriageRequest) -> dict:
    current = read(work, "Task", task_id)  # 404 / 410; in SQLite this takes the write lock
    task = orjson.loads(current.body)
    if not has_code(task.get("code"), TASK_TYPE, "intake"):
        shown = ", ".join(codes_of(task.get("code"), TASK_TYPE)) or "no evi-task-type code"
        raise Unprocessable(
            f"Task/{task_id} is not an intake Task (code {TASK_TYPE}|intake; it has {shown}); "
            "$triage works on intake Tasks only",
            expression="Task.code",
        )
    status = task.get("status")
    allowed = _completes_from()
    if status not in allowed:
        raise Conflict(
            f"Task/{task_id} is '{status}'; $triage completes an intake Task only from {', '.join(allowed)}",
            expression="Task.status",
        )
    now = work.next_instant()  # never before what is stored; the versions written below come after it
    t = _Triage(work, region, request, task_id, task, now)
    created = [create(work, rtype, resource).resource for rtype, resource in _BUILDERS[mapping.code](t)]
    stored_task = _complete(t, current.version_id, created)
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": "task", "resource": stored_task}]
        + [{"name": "created", "resource": r} for r in created],
    }


def triage(runtime: Runtime, ctx: RequestContext, task_id: str, parameters: dict) -> dict:
    """Triage intake Task/{task_id}; returns Parameters (task, created...). Raises FhirError."""
    request = parse_parameters(parameters, base_url=ctx.base_url, profiles_dir=runtime.profiles_dir)
    region = runtime.services.get("region") or Region()
    mapping = triage_outcome(request.outcome)
    with runtime.work(ctx, write=True) as work:
        return _run(work, region, mapping, task_id, request)
