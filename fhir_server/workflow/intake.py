"""Intake (rules 1–3): an evi-referral ServiceRequest gets its intake Task, exactly once,
in the same transaction; a placed child also gets a notice and a Task to the
responsible municipality's social services.

The work runs at the end of the unit of work (a deferred ``IntakeRun``, once per
referral), so a transaction's Patient, QuestionnaireResponse and Consent are all in place
whatever their order in the Bundle. The answer to the referral's write names what it
created (the intake Task first) as its side effects. The upstream existing-contact check runs after the commit
(``Work.after_commit``): a call to another server must not hold the write lock. It
still finishes before the client gets its response, and adds the flag as a new
version of the Task.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from fhir_server.engine import DeferredRule, HookPoint, Runtime, Work, WriteEvent, create, find_matches, update
from fhir_server.errors import FhirError
from fhir_server.model import format_instant, new_id
from fhir_server.workflow import eligibility as elig
from fhir_server.workflow.codes import (
    ELIGIBILITY_FLAG,
    INTAKE_TASK,
    NOTIFICATION,
    REFERRAL,
    TASK_PARAMETER,
    TASK_STAGE,
    TASK_TYPE,
    TRIAGE_OUTCOME,
)
from fhir_server.workflow.displays import coding
from fhir_server.workflow.receipt import intake_receipt
from fhir_server.workflow.region import Region, resolve_unit
from fhir_server.workflow.resources import claims, codes_of, literal, load
from fhir_server.workflow.task_states import FINAL
from fhir_server.workflow.upstream import UpstreamError, find_upstream_contacts

__all__ = ["IntakeRun", "install_intake", "intake_task_for", "parse_instant"]

log = logging.getLogger(__name__)
NOTICE_TEXT = (
    "Ett barn som är placerat av er kommun har kontaktat En väg in. Vi önskar dialog om fortsatt handläggning."
)


def parse_instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True)
class IntakeRun(DeferredRule):
    """The intake of one referral: its Task (and notice), at most once per unit of work."""

    rule = "intake (rules 1-3)"
    once = True
    service_request_id: str


def install_intake(runtime: Runtime, region: Region) -> None:
    def on_write(event: WriteEvent) -> None:
        """BEFORE_COMMIT: an evi-referral gets its intake at the end of the unit of work."""
        if event.resource_type != "ServiceRequest" or event.resource is None or not claims(event.resource, REFERRAL):
            return
        work = event.work
        work.defer(IntakeRun(event.id), lambda: _intake(work, region, event.id))

    runtime.hooks.register(HookPoint.BEFORE_COMMIT, on_write)


def intake_task_for(work: Work, service_request_id: str) -> str | None:
    found = find_matches(
        work, "Task", [("focus", f"ServiceRequest/{service_request_id}"), ("code", f"{TASK_TYPE}|intake")], limit=1
    )
    return found[0] if found else None


def _parameter(kind: str, profiles_dir: str | None) -> dict:
    return {"coding": [coding(TASK_PARAMETER, kind, profiles_dir)]}


def _note(text: str, when: str) -> dict:
    return {"time": when, "text": text}


def _intake(work: Work, region: Region, sr_id: str) -> None:
    sr = load(work, f"ServiceRequest/{sr_id}")
    if sr is None or not claims(sr, REFERRAL) or intake_task_for(work, sr_id) is not None:
        return
    first = work.uow.version("ServiceRequest", sr_id, 1)
    written = first.last_updated if first is not None and not first.deleted else sr["meta"]["lastUpdated"]
    receipt_text = intake_receipt(sr, written, region)
    owner = resolve_unit(work, region.evi_unit, "evi", "evi_unit")
    subject = literal(sr.get("subject"), "Patient")
    patient_ref = f"Patient/{subject[1]}" if subject else None
    patient = load(work, patient_ref) if patient_ref else None
    found = elig.evaluate(work, region, patient, patient_ref, parse_instant(receipt_text))

    task_id = new_id()
    task = _intake_task(work, region, sr_id, sr, patient_ref, owner, receipt_text, found)
    create(work, "Task", task, assigned_id=task_id)

    placement = elig.placement_of(patient)
    municipality = literal((placement or {}).get("responsibleMunicipality"), "Organization")
    if municipality is not None:
        _notify_social_services(work, sr_id, task_id, patient_ref, owner, f"Organization/{municipality[1]}", receipt_text, sr)

    identifiers = elig.national_identifiers(patient)
    if region.upstream_fhir_url and identifiers and "existing-contact" not in found.flags:
        runtime, ctx = work.runtime, work.ctx
        work.after_commit.append(lambda: _upstream_check(runtime, ctx, region, task_id, identifiers))


def _intake_task(
    work: Work, region: Region, sr_id: str, sr: dict, patient_ref: str | None, owner: str, receipt_text: str,
    found: elig.Eligibility,
) -> dict:
    """The intake Task of a referral received at ``receipt_text``, with what eligibility ``found``."""
    profiles_dir = work.runtime.profiles_dir
    due = format_instant(parse_instant(receipt_text) + timedelta(days=region.assessment_deadline_days))
    task: dict = {
        "resourceType": "Task",
        "meta": {"profile": [INTAKE_TASK]},
        "status": "requested",
        "businessStatus": {"coding": [coding(TASK_STAGE, "received", profiles_dir)]},
        "intent": "order",
        "code": {"coding": [coding(TASK_TYPE, "intake", profiles_dir)]},
        "focus": {"reference": f"ServiceRequest/{sr_id}"},
        "for": {"reference": patient_ref} if patient_ref else sr.get("subject"),
        "authoredOn": receipt_text,
        "owner": {"reference": owner},
        "restriction": {"period": {"start": receipt_text, "end": due}},
    }
    if sr.get("priority"):
        task["priority"] = sr["priority"]
    inputs = [
        {"type": _parameter("eligibility-flag", profiles_dir), "valueCoding": coding(ELIGIBILITY_FLAG, f, profiles_dir)}
        for f in found.flags
    ]
    if found.suggested_outcome:
        inputs.append({
            "type": _parameter("triage-outcome", profiles_dir),
            "valueCoding": coding(TRIAGE_OUTCOME, found.suggested_outcome, profiles_dir),
        })
    if inputs:
        task["input"] = inputs
    if found.notes:
        task["note"] = [_note(n, receipt_text) for n in found.notes]
    return task


def _notify_social_services(
    work: Work, sr_id: str, task_id: str, patient_ref: str, evi_unit: str, municipality: str, when: str, sr: dict
) -> None:
    profiles_dir = work.runtime.profiles_dir
    create(work, "Communication", {
        "resourceType": "Communication",
        "meta": {"profile": [NOTIFICATION]},
        "status": "completed",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/communication-category", "code": "notification",
        }]}],
        "subject": {"reference": patient_ref},
        "about": [{"reference": f"ServiceRequest/{sr_id}"}, {"reference": f"Task/{task_id}"}],
        "sent": when,
        "recipient": [{"reference": municipality}],
        "sender": {"reference": evi_unit},
        "payload": [{"contentString": NOTICE_TEXT}],
    })
    dialogue = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "code": {"coding": [coding(TASK_TYPE, "social-services-dialogue", profiles_dir)]},
        "focus": {"reference": f"ServiceRequest/{sr_id}"},
        "for": {"reference": patient_ref},
        "authoredOn": when,
        "requester": {"reference": evi_unit},
        "owner": {"reference": municipality},
    }
    if sr.get("priority"):
        dialogue["priority"] = sr["priority"]
    create(work, "Task", dialogue)


def _upstream_check(runtime: Runtime, ctx, region: Region, task_id: str, identifiers: list[tuple[str, str]]) -> None:
    """After the commit: ask the region's upstream server; record what it says on the Task."""
    now = format_instant(datetime.now(timezone.utc))
    try:
        contacts = find_upstream_contacts(region.upstream_fhir_url, identifiers, region.upstream_timeout_seconds)
    except UpstreamError as exc:
        log.warning("existing-contact check at %s failed: %s", region.upstream_fhir_url, exc)
        notes = [f"The existing-contact check at {region.upstream_fhir_url} could not be made ({exc}); check manually."]
        _amend_task(runtime, ctx, task_id, notes, now, flag=False)
        return
    if contacts:
        notes = [
            f"Ongoing care contact at {region.upstream_fhir_url}: {c.episode}"
            + (f" at {c.organization} ({c.organization_name or 'unnamed'})" if c.organization else "")
            + "."
            for c in contacts
        ]
        _amend_task(runtime, ctx, task_id, notes, now, flag=True)


def _amend_task(runtime: Runtime, ctx, task_id: str, notes: list[str], when: str, *, flag: bool) -> None:
    for _attempt in range(3):  # a triager may write the Task at the same moment: re-read and retry
        try:
            with runtime.work(ctx, write=True) as work:
                current = work.uow.current("Task", task_id)
                if current is None or current.deleted:
                    return
                task = load(work, f"Task/{task_id}")
                if task.get("status") in FINAL:
                    return
                profiles_dir = runtime.profiles_dir
                inputs = list(task.get("input") or [])
                if flag and not any(
                    "existing-contact" in codes_of(i.get("valueCoding"), ELIGIBILITY_FLAG) for i in inputs
                ):
                    inputs.append({
                        "type": _parameter("eligibility-flag", profiles_dir),
                        "valueCoding": coding(ELIGIBILITY_FLAG, "existing-contact", profiles_dir),
                    })
                    inputs = [i for i in inputs if not codes_of(i.get("type"), TASK_PARAMETER) == ["triage-outcome"]]
                    inputs.append({
                        "type": _parameter("triage-outcome", profiles_dir),
                        "valueCoding": coding(TRIAGE_OUTCOME, "redirect-existing-contact", profiles_dir),
                    })
                if inputs:
                    task["input"] = inputs
                task["note"] = list(task.get("note") or []) + [_note(n, when) for n in notes]
                update(work, "Task", task_id, task, if_match=f'W/"{current.version_id}"')
            return
        except FhirError as exc:
            if exc.status not in (409, 412):
                log.warning("could not record the upstream check on Task/%s: %s", task_id, exc.message)
                return
