"""The triage queue page: the open intake Tasks in the order of domain.md §3 rule 6
(``workflow.triage_queue``, the same function as ``Task/$triage-queue``), with the
receipt time, due date, overdue mark, channel and child of each, filtered by EVI unit
and paged."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from fhir_server.engine import RequestContext, Runtime, Work
from fhir_server.errors import BadRequest
from fhir_server.model import is_valid_id
from fhir_server.ui.labels import CS, EXT, PRIORITY, Labels, local_time
from fhir_server.ui.reads import by_reference, search_json
from fhir_server.workflow import triage_queue

__all__ = ["PAGE_SIZE", "QueueRow", "QueueView", "contact_channel", "queue_view", "patient_name"]

PAGE_SIZE = 25
_OVERDUE = EXT + "evi-overdue"


@dataclass(frozen=True)
class QueueRow:
    position: int
    task_id: str
    referral_id: str | None
    priority: str
    priority_label: str
    received: str
    due: str
    overdue: bool
    channel: str
    patient: str
    unit: str


@dataclass(frozen=True)
class QueueView:
    rows: list[QueueRow]
    total: int
    page: int
    pages: int
    unit: str | None
    units: list[tuple[str, str]]  # (id, name)


def patient_name(patient: dict | None) -> str:
    if not patient:
        return "–"
    for name in patient.get("name") or ():
        text = name.get("text") or " ".join([*name.get("given", ()), name.get("family", "")]).strip()
        if text:
            return text
    return f"Patient/{patient.get('id', '')}"


def _page_number(raw: str | None) -> int:
    if raw is None or raw == "":
        return 1
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= 100_000:
        raise BadRequest(f"sida måste vara ett heltal från 1, inte {raw!r}", expression="sida")
    return int(raw)


def _unit(raw: str | None) -> str | None:
    if not raw:
        return None
    if not is_valid_id(raw):
        raise BadRequest(f"enhet måste vara ett Organization-id, inte {raw!r}", expression="enhet")
    return raw


def contact_channel(referral: dict | None, labels: Labels) -> str:
    for ext in (referral or {}).get("extension") or ():
        if ext.get("url") == EXT + "evi-contact-channel":
            return labels.coding(ext.get("valueCoding"))
    return "–"


def _ref_id(reference: object, resource_type: str) -> str | None:
    ref = (reference or {}).get("reference") if isinstance(reference, dict) else None
    if isinstance(ref, str) and ref.startswith(resource_type + "/"):
        return ref.split("/", 1)[1]
    return None


def _evi_units(work: Work) -> list[tuple[str, str]]:
    found = search_json(work, "Organization", [("type", CS + "evi-organization-type|evi"), ("_count", "100")])
    return sorted(((o["id"], o.get("name") or o["id"]) for o in found), key=lambda u: u[1])


def _own_unit(runtime: Runtime, ctx: RequestContext) -> str | None:
    """A signed-in person's own EVI unit: their queue unless they choose another (or all)."""
    own = ctx.caller.organization if ctx.caller is not None else None
    if not own or not own.startswith("Organization/"):
        return None
    with runtime.work(ctx, write=False) as work:
        return own.removeprefix("Organization/") if own.removeprefix("Organization/") in dict(_evi_units(work)) else None


def queue_view(runtime: Runtime, ctx: RequestContext, query: dict[str, str], labels: Labels) -> QueueView:
    page = _page_number(query.get("sida"))
    unit = _unit(query["enhet"]) if "enhet" in query else _own_unit(runtime, ctx)
    params = [("_count", str(PAGE_SIZE)), ("_offset", str((page - 1) * PAGE_SIZE))]
    if unit:
        params.append(("owner", f"Organization/{unit}"))
    bundle = triage_queue(runtime, ctx, params)
    entries = bundle.get("entry") or ()
    tasks = [orjson.loads(orjson.dumps(e["resource"])) for e in entries]  # the entries hold raw JSON
    with runtime.work(ctx, write=False) as work:
        referrals = by_reference(work, "ServiceRequest", [i for t in tasks if (i := _ref_id(t.get("focus"), "ServiceRequest"))])
        patients = by_reference(work, "Patient", [i for t in tasks if (i := _ref_id(t.get("for"), "Patient"))])
        units = _evi_units(work)
    names = dict(units)
    rows = []
    for n, (entry, task) in enumerate(zip(entries, tasks)):
        overdue = any(x.get("url") == _OVERDUE and x.get("valueBoolean") for x in entry["search"].get("extension", ()))
        referral_id = _ref_id(task.get("focus"), "ServiceRequest")
        priority = task.get("priority") if task.get("priority") in PRIORITY else "routine"
        owner = _ref_id(task.get("owner"), "Organization")
        rows.append(QueueRow(
            position=(page - 1) * PAGE_SIZE + n + 1, task_id=task["id"], referral_id=referral_id,
            priority=priority, priority_label=PRIORITY[priority],
            received=local_time(task.get("authoredOn")),
            due=local_time(((task.get("restriction") or {}).get("period") or {}).get("end")),
            overdue=overdue,
            channel=contact_channel(referrals.get(f"ServiceRequest/{referral_id}"), labels),
            patient=patient_name(patients.get(f"Patient/{_ref_id(task.get('for'), 'Patient')}")),
            unit=names.get(owner or "", owner or "–"),
        ))
    total = bundle.get("total", 0)
    return QueueView(rows, total, page, max(1, -(-total // PAGE_SIZE)), unit, units)
