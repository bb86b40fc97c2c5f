"""``Task/{id}/$triage`` (rule 4): record a contact's triage outcome and create what it
implies, atomically, in one unit of work.

What each outcome creates, which Parameters it requires and accepts, and which outputs
it records on the intake Task is the table ``mappings/triage-outcomes.json``
(``fhir_server.conformance.mappings.triage_outcome``). The input is checked by
``triage_parameters``, the outcomes are built by ``triage_outcomes`` and ``booking``;
this module runs them and completes the Task:

  advice, redirect-existing-contact, not-eligible   nothing besides the outcome
  refer-primary-care    ServiceRequest to the primary-care unit (performer = recipient)
  refer-other-actor     Communication to the actor (recipient)
  book-first-visit      Appointment (evi-appointment) on a free Slot; the Slot becomes busy
  acute-handover        Task acute-handover owned by the region's BUP acute unit (or recipient)

The intake Task becomes ``completed`` (businessStatus ``triaged``) with output
``triage-outcome`` and one output ``created`` per created resource (the state machine's
``ServerTransition`` exemption allows the jump). The answer is a Parameters resource:
``task`` (the stored Task) and one ``created`` per created resource, as committed (after
the unit of work's deferred rules). The Task is written with ``If-Match`` of the version
read, like the Slot (``booking``): a lost race is 409.
"""

from __future__ import annotations

from typing import Callable

import orjson

from fhir_server.conformance.mappings import TriageOutcomeMapping, load_mappings, triage_outcome
from fhir_server.engine import RequestContext, Runtime, Work, WriteOutcome, create, read
from fhir_server.errors import Conflict, Unprocessable
from fhir_server.workflow.booking import book_first_visit
from fhir_server.workflow.codes import TASK_PARAMETER, TASK_STAGE, TASK_TYPE, TRIAGE_OUTCOME
from fhir_server.workflow.displays import coding
from fhir_server.workflow.region import Region
from fhir_server.workflow.resources import codes_of, has_code
from fhir_server.workflow.task_states import allow_server_transition
from fhir_server.workflow.triage_outcomes import SIMPLE_BUILDERS, TriageContext, update_read_version
from fhir_server.workflow.triage_parameters import TriageRequest, parse_parameters

__all__ = ["BUILDERS", "triage"]

#: outcome code -> what it creates (one builder per row of mappings/triage-outcomes.json)
BUILDERS: dict[str, Callable[[TriageContext], list[tuple[str, dict]]]] = {
    **SIMPLE_BUILDERS,
    "book-first-visit": book_first_visit,
}


def _completes_from() -> tuple[str, ...]:
    return tuple(load_mappings("triage-outcomes")["intakeTask"]["completesFrom"])


def _parameter_type(kind: str, profiles_dir: str | None) -> dict:
    return {"coding": [coding(TASK_PARAMETER, kind, profiles_dir)]}


def _complete(t: TriageContext, version_read: int, created: list[dict]) -> WriteOutcome:
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
    allow_server_transition(t.work, t.task_id, old, "completed", granted_by="$triage")
    return update_read_version(t.work, "Task", t.task_id, task, version_read)


def _check_intake_task(task_id: str, task: dict) -> None:
    """422 unless an intake Task; 409 unless in a status $triage completes from."""
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


def _run(work: Work, region: Region, mapping: TriageOutcomeMapping, task_id: str, request: TriageRequest) -> dict:
    current = read(work, "Task", task_id)  # 404 / 410; in SQLite this takes the write lock
    task = orjson.loads(current.body)
    _check_intake_task(task_id, task)
    now = work.next_instant()  # never before what is stored; the versions written below come after it
    t = TriageContext(work, region, request, task_id, task, now)
    created = [create(work, rtype, resource) for rtype, resource in BUILDERS[mapping.code](t)]
    completed = _complete(t, current.version_id, [c.resource for c in created])
    work.run_before_commit()  # the rules' deferred runs: the answer shows what commits
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": "task", "resource": completed.resource}]
        + [{"name": "created", "resource": c.resource} for c in created],
    }


def triage(runtime: Runtime, ctx: RequestContext, task_id: str, parameters: dict) -> dict:
    """Triage intake Task/{task_id}; returns Parameters (task, created...). Raises FhirError."""
    request = parse_parameters(parameters, base_url=ctx.base_url, profiles_dir=runtime.profiles_dir)
    region = runtime.services.get("region") or Region()
    mapping = triage_outcome(request.outcome)
    with runtime.work(ctx, write=True) as work:
        return _run(work, region, mapping, task_id, request)
