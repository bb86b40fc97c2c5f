"""One referral (or self-referral, or phone contact): the ServiceRequest, the child,
its intake Task with the Task's history (every version: status and stage over time),
the eligibility flags the intake recorded, and what triage created."""

from __future__ import annotations

from dataclasses import dataclass, field

from fhir_server.engine import RequestContext, Runtime, Work
from fhir_server.errors import NotFound
from fhir_server.model import is_valid_id
from fhir_server.ui.labels import CS, PRIORITY, TASK_STATUS, Labels, local_time
from fhir_server.ui.queue import contact_channel, patient_name
from fhir_server.ui.reads import history_json, read_json, search_json

__all__ = ["HistoryRow", "Created", "ReferralView", "referral_view"]

_TASK_PARAMETER = CS + "evi-task-parameter"


@dataclass(frozen=True)
class HistoryRow:
    version: str
    when: str
    status: str
    stage: str


@dataclass(frozen=True)
class Created:
    reference: str
    kind: str
    summary: str


@dataclass
class ReferralView:
    id: str
    patient: str
    channel: str
    priority: str
    received: str
    requester: str
    performer: str
    reasons: list[str]
    task_id: str | None = None
    task_status: str = ""
    due: str = ""
    flags: list[str] = field(default_factory=list)
    suggested: str = ""
    outcome: str = ""
    notes: list[str] = field(default_factory=list)
    history: list[HistoryRow] = field(default_factory=list)
    created: list[Created] = field(default_factory=list)


def _parameter(item: dict) -> str | None:
    for coding in (item.get("type") or {}).get("coding") or ():
        if coding.get("system") == _TASK_PARAMETER:
            return coding.get("code")
    return None


def _org_name(work: Work, reference: object) -> str:
    ref = reference.get("reference") if isinstance(reference, dict) else None
    if isinstance(ref, str) and ref.startswith("Organization/"):
        found = read_json(work, "Organization", ref.split("/", 1)[1])
        return (found or {}).get("name") or ref
    return (reference or {}).get("display", "–") if isinstance(reference, dict) else "–"


def _summary(work: Work, resource: dict | None, labels: Labels) -> str:
    if resource is None:
        return "(inte synlig för dig)"
    kind = resource["resourceType"]
    if kind == "Appointment":
        return f"Besök {local_time(resource.get('start'))}, {TASK_STATUS.get(resource.get('status'), resource.get('status', ''))}"
    if kind == "ServiceRequest":
        return "Remiss till " + ", ".join(_org_name(work, p) for p in resource.get("performer") or ()) or "Remiss"
    if kind == "Communication":
        return "Meddelande till " + ", ".join(_org_name(work, r) for r in resource.get("recipient") or ())
    if kind == "Task":
        return "Uppgift till " + _org_name(work, resource.get("owner"))
    return kind


def _created(work: Work, task: dict, labels: Labels) -> list[Created]:
    out = []
    for item in task.get("output") or ():
        ref = (item.get("valueReference") or {}).get("reference")
        if _parameter(item) != "created" or not isinstance(ref, str) or ref.count("/") != 1:
            continue
        rtype, rid = ref.split("/")
        found = read_json(work, rtype, rid) if is_valid_id(rid) and rtype.isalpha() else None
        out.append(Created(ref, rtype, _summary(work, found, labels)))
    return out


def _task_part(work: Work, view: ReferralView, task: dict, labels: Labels) -> None:
    view.task_id = task["id"]
    view.received = local_time(task.get("authoredOn")) or view.received
    view.task_status = TASK_STATUS.get(task.get("status"), task.get("status", ""))
    view.due = local_time(((task.get("restriction") or {}).get("period") or {}).get("end"))
    for item in task.get("input") or ():
        if _parameter(item) == "eligibility-flag":
            view.flags.append(labels.coding(item.get("valueCoding")))
        elif _parameter(item) == "triage-outcome":
            view.suggested = labels.coding(item.get("valueCoding"))
    for item in task.get("output") or ():
        if _parameter(item) == "triage-outcome":
            view.outcome = labels.coding(item.get("valueCoding"))
    view.notes = [n.get("text", "") for n in task.get("note") or () if n.get("text")]
    for version, number, updated in history_json(work, "Task", task["id"]):
        stage = ((version.get("businessStatus") or {}).get("coding") or [{}])[0]
        view.history.append(HistoryRow(number, local_time(updated),
                                       TASK_STATUS.get(version.get("status"), version.get("status", "")),
                                       labels.coding(stage)))
    view.created = _created(work, task, labels)


def referral_view(runtime: Runtime, ctx: RequestContext, rid: str, labels: Labels) -> ReferralView:
    with runtime.work(ctx, write=False) as work:
        referral = read_json(work, "ServiceRequest", rid) if is_valid_id(rid) else None
        if referral is None:
            raise NotFound(f"Remissen {rid} finns inte, eller så får du inte se den")
        subject = (referral.get("subject") or {}).get("reference", "")
        patient = read_json(work, "Patient", subject.split("/", 1)[1]) if subject.startswith("Patient/") else None
        view = ReferralView(
            id=rid, patient=patient_name(patient), channel=contact_channel(referral, labels),
            priority=PRIORITY.get(referral.get("priority") or "routine", ""),
            received=local_time(referral.get("authoredOn") or (referral.get("meta") or {}).get("lastUpdated")),
            requester=_org_name(work, referral.get("requester")),
            performer=", ".join(_org_name(work, p) for p in referral.get("performer") or ()) or "–",
            reasons=[labels.coding(c) for r in referral.get("reasonCode") or () for c in r.get("coding") or ()],
        )
        tasks = search_json(work, "Task", [("focus", f"ServiceRequest/{rid}"),
                                           ("code", CS + "evi-task-type|intake"), ("_count", "1")])
        if tasks:
            _task_part(work, view, tasks[0], labels)
    return view
