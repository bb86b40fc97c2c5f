"""SiS integrated care (domain.md §1 'The SiS integrated-care pilot', §2 evi-integrated-care):
the process step of the young person's EpisodeOfCare, its closure, and the flags reports
look for.

**Which episodes.** An EpisodeOfCare that claims ``evi-integrated-care`` or carries the
``evi-integrated-care-step`` extension. The rules run on every write of one (create,
update, patch, transaction entry), in the write pipeline's AFTER_VALIDATION hook (the one
point where a hook may set server-owned parts: the flags below), except a write whose
status is ``entered-in-error`` (correcting an error is never blocked).

**Steps only move forward.** The step (``sis-assessment`` 1 … ``closure`` 8) of an update
may stay, or move to any later step (a step may be skipped: the process is a guide, and
``closure`` may come from any step). Moving to an earlier step is refused with **409
Conflict**, naming both steps, like an illegal Task status change (rule 5). Creating an
episode at any step is allowed (it records a state reached elsewhere).

**Closure (step 8).** The client sets status ``finished``, ``period.end`` and step
``closure`` in one write; step ``closure`` without both is 422 (the profile's evi-ic-1
already refuses ``finished`` without closure). That ends the episode: the place it held in
a mobile team is free (``care_transfer.places_taken`` counts only episodes not ended).
The transition to open or other care is recorded by the server as a **ServiceRequest to
the receiving unit**, named by the episode's extension

    https://evi-fhir.org/fhir/StructureDefinition/evi-receiving-unit  (valueReference Organization)

The ServiceRequest: status active, intent order, subject the patient, requester the
episode's managingOrganization (the responsible unit), performer the receiving unit,
supportingInfo the EpisodeOfCare, authoredOn the closing write's time. It does not claim
evi-referral (it is no contact to EVI and starts no intake). It is made once, on the
update that moves the episode to closure. Without a receiving unit no ServiceRequest is
made and the episode is tagged ``no-receiving-unit`` (below) instead; a later update of
the closed episode that adds the receiving unit makes the ServiceRequest then and drops
the tag. An episode created already closed (history recorded elsewhere) gets neither.

**Flags (meta.tag, searchable with ``_tag``).** The server owns the tags of the system

    https://evi-fhir.org/fhir/CodeSystem/evi-integrated-care-flag

on every version it stores (what a client sends of that system is replaced):

  sip-missing        the episode is at step ``long-term-collaboration`` (and not ended)
                     and no SIP exists for its patient: a CarePlan with category
                     evi-careplan-category|sip, subject the patient, status other than
                     revoked / entered-in-error.
                     ``GET EpisodeOfCare?_tag=https://evi-fhir.org/fhir/CodeSystem/evi-integrated-care-flag|sip-missing``
  no-receiving-unit  closed without a receiving unit: no ServiceRequest was made.

A write of a SIP CarePlan (or of one that was a SIP) re-evaluates ``sip-missing`` on the
patient's episodes at step 7 at the end of the unit of work (a deferred ``SipFlagRefresh``),
storing a new version of each episode whose flag changes; the answer to the CarePlan's
write names those versions as its side effects.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import orjson

from fhir_server.engine import DeferredRule, HookPoint, Runtime, Work, WriteEvent, create, find_matches, update
from fhir_server.errors import Conflict, Issue, Unprocessable
from fhir_server.workflow.codes import (
    BASE,
    CAREPLAN_CATEGORY,
    EXT_INTEGRATED_CARE_STEP,
    INTEGRATED_CARE,
    INTEGRATED_CARE_STEP,
    SD,
)
from fhir_server.workflow.resources import claims, codes_of, extension, literal, load, reference_of

__all__ = [
    "STEPS",
    "ENDED",
    "FLAG_SYSTEM",
    "EXT_RECEIVING_UNIT",
    "install_integrated_care",
    "is_integrated_care",
    "step_of",
    "step_change_problem",
    "closure_problems",
    "sip_exists",
    "refresh_sip_flags",
    "SipFlagRefresh",
    "TransitionToOpenCare",
]

log = logging.getLogger(__name__)

STEPS = (
    "sis-assessment",
    "referral",
    "bup-assessment",
    "decision",
    "offer",
    "efforts",
    "long-term-collaboration",
    "closure",
)
#: EpisodeOfCare statuses after which the episode holds no place
ENDED = frozenset({"finished", "cancelled", "entered-in-error"})
FLAG_SYSTEM = f"{BASE}/CodeSystem/evi-integrated-care-flag"
EXT_RECEIVING_UNIT = SD + "evi-receiving-unit"
FLAG_DISPLAYS = {
    "sip-missing": "Steg 7 (långsiktig samverkan) utan SIP för patienten",
    "no-receiving-unit": "Avslutad utan mottagande enhet: ingen remiss till fortsatt vård skapades "
    "(ange extension evi-receiving-unit)",
}
STEP_EXPRESSION = f"EpisodeOfCare.extension('{EXT_INTEGRATED_CARE_STEP}')"
_SIP_INACTIVE = frozenset({"revoked", "entered-in-error"})
_LIMIT = 200


def is_integrated_care(episode: dict | None) -> bool:
    return bool(episode) and (claims(episode, INTEGRATED_CARE) or extension(episode, EXT_INTEGRATED_CARE_STEP) is not None)


def step_of(episode: dict | None) -> str | None:
    ext = extension(episode, EXT_INTEGRATED_CARE_STEP)
    codes = codes_of((ext or {}).get("valueCoding"), INTEGRATED_CARE_STEP)
    return codes[0] if codes else None


def step_change_problem(old: str | None, new: str | None) -> str | None:
    """Why moving from step ``old`` to ``new`` is not allowed (None: it is)."""
    if old not in STEPS or new not in STEPS:
        return None  # unknown codes are the profile's binding's business
    if STEPS.index(new) >= STEPS.index(old):
        return None
    return (
        f"the integrated-care step cannot move back from '{old}' (step {STEPS.index(old) + 1}) "
        f"to '{new}' (step {STEPS.index(new) + 1}); steps only move forward, and 'closure' may follow any step"
    )


def closure_problems(episode: dict) -> list[str]:
    """What a write at step ``closure`` lacks (status finished, period.end)."""
    problems = []
    if episode.get("status") != "finished":
        problems.append(f"step 'closure' needs status 'finished' (it is '{episode.get('status')}')")
    if not (episode.get("period") or {}).get("end"):
        problems.append("step 'closure' needs period.end (when the integrated care ended)")
    return problems


def sip_exists(work: Work, patient_ref: str) -> bool:
    ids = find_matches(
        work, "CarePlan", [("subject", patient_ref), ("category", f"{CAREPLAN_CATEGORY}|sip")], limit=_LIMIT
    )
    for cid in ids:
        plan = load(work, f"CarePlan/{cid}")
        if plan is not None and plan.get("status") not in _SIP_INACTIVE:
            return True
    return False


def _tags(resource: dict | None) -> set[str]:
    return {
        t.get("code")
        for t in ((resource or {}).get("meta") or {}).get("tag") or ()
        if isinstance(t, dict) and t.get("system") == FLAG_SYSTEM
    }


def _set_tags(resource: dict, codes: set[str]) -> None:
    meta = resource.setdefault("meta", {})
    kept = [t for t in meta.get("tag") or () if not (isinstance(t, dict) and t.get("system") == FLAG_SYSTEM)]
    kept += [{"system": FLAG_SYSTEM, "code": c, "display": FLAG_DISPLAYS[c]} for c in sorted(codes)]
    if kept:
        meta["tag"] = kept
    else:
        meta.pop("tag", None)


def _sip_missing(work: Work, episode: dict) -> bool:
    if step_of(episode) != "long-term-collaboration" or episode.get("status") in ENDED:
        return False
    patient_ref = reference_of(episode.get("patient"))
    return patient_ref is not None and patient_ref.startswith("Patient/") and not sip_exists(work, patient_ref)


def _receiving_unit(episode: dict) -> str | None:
    """``Organization/{id}`` named by evi-receiving-unit (None: absent); 422 when unusable."""
    ext = extension(episode, EXT_RECEIVING_UNIT)
    if ext is None:
        return None
    found = literal(ext.get("valueReference"), "Organization")
    if found is None:
        raise Unprocessable(
            "The receiving unit (extension evi-receiving-unit) must be a literal reference to an Organization",
            expression=f"EpisodeOfCare.extension('{EXT_RECEIVING_UNIT}')",
        )
    return f"Organization/{found[1]}"


@dataclass(frozen=True)
class TransitionToOpenCare(DeferredRule):
    """The ServiceRequest to the receiving unit of a closed episode, made once."""

    rule = "integrated care: transition to open care"
    once = True
    episode_id: str


@dataclass(frozen=True)
class SipFlagRefresh(DeferredRule):
    """Re-evaluating sip-missing on a patient's step-7 episodes after a SIP write."""

    rule = "integrated care: sip-missing flag"
    patient: str


def _check_step(event: WriteEvent, previous: dict | None) -> None:
    """409 for a step back; 422 for a closure without status finished and period.end."""
    episode = event.resource
    old_step, new_step = step_of(previous), step_of(episode)
    if previous is not None and old_step is not None:
        problem = step_change_problem(old_step, new_step)
        if problem:
            raise Conflict(f"EpisodeOfCare/{event.id}: {problem}", expression=STEP_EXPRESSION)
    if new_step == "closure" and previous is not None and old_step != "closure":
        problems = closure_problems(episode)
        if problems:
            raise Unprocessable(
                f"EpisodeOfCare/{event.id}: {'; '.join(problems)}",
                issues=[Issue(f"EpisodeOfCare/{event.id}: {p}", "business-rule", (STEP_EXPRESSION,)) for p in problems],
            )


def _on_episode(event: WriteEvent) -> None:
    """AFTER_VALIDATION: steps, closure, and the server-owned flags (meta.tag)."""
    episode = event.resource
    if event.resource_type != "EpisodeOfCare" or not is_integrated_care(episode):
        return
    if episode.get("status") == "entered-in-error":
        return
    previous = None
    if event.previous is not None and not event.previous.deleted:
        previous = orjson.loads(event.previous.body)
    _check_step(event, previous)
    flags: set[str] = set()
    if _sip_missing(event.work, episode):
        flags.add("sip-missing")
    closing = step_of(episode) == "closure" and previous is not None and step_of(previous) != "closure"
    if step_of(episode) == "closure" and (closing or "no-receiving-unit" in _tags(previous)):
        receiving = _receiving_unit(episode)
        if receiving is None:
            flags.add("no-receiving-unit")
            log.info("EpisodeOfCare/%s closed without a receiving unit: no ServiceRequest made", event.id)
        else:
            work, rid, when = event.work, event.id, episode["meta"]["lastUpdated"]
            work.defer(TransitionToOpenCare(rid), lambda: _transition_to_open_care(work, rid, receiving, when))
    _set_tags(episode, flags)


def _transition_to_open_care(work: Work, episode_id: str, receiving: str, when: str) -> None:
    episode = load(work, f"EpisodeOfCare/{episode_id}")
    if episode is None:
        return
    unit = load(work, receiving, "Organization")
    if unit is None:
        raise Unprocessable(
            f"EpisodeOfCare/{episode_id}: the receiving unit {receiving} is not on this server",
            expression=f"EpisodeOfCare.extension('{EXT_RECEIVING_UNIT}')",
        )
    request: dict = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "category": [{
            "coding": [{"system": "http://snomed.info/sct", "code": "3457005", "display": "Patient referral"}],
            "text": "Övergång till öppen vård",
        }],
        "code": {"text": "Övergång till öppen eller annan vårdform efter integrerad vård vid SiS"},
        "subject": episode.get("patient"),
        "authoredOn": when,
        "performer": [{"reference": receiving}],
        "supportingInfo": [{"reference": f"EpisodeOfCare/{episode_id}"}],
        "note": [{
            "time": when,
            "text": f"Integrerad vård avslutad (EpisodeOfCare/{episode_id}); fortsatt vård hos "
            f"{unit.get('name') or receiving}.",
        }],
    }
    if reference_of(episode.get("managingOrganization")):
        request["requester"] = {"reference": reference_of(episode["managingOrganization"])}
    create(work, "ServiceRequest", request)


def _sip_patients(resource: dict | None) -> set[str]:
    if not resource or "sip" not in codes_of(resource.get("category") or [], CAREPLAN_CATEGORY):
        return set()
    ref = reference_of(resource.get("subject"))
    return {ref} if ref and ref.startswith("Patient/") else set()


def _on_care_plan(event: WriteEvent) -> None:
    """BEFORE_COMMIT: a SIP write refreshes its patient's flags at the end of the unit of work."""
    if event.resource_type != "CarePlan":
        return
    patients = _sip_patients(event.resource)
    if event.previous is not None and not event.previous.deleted:
        patients |= _sip_patients(orjson.loads(event.previous.body))
    work = event.work
    for patient_ref in sorted(patients):
        work.defer(SipFlagRefresh(patient_ref), lambda p=patient_ref: refresh_sip_flags(work, p))


def refresh_sip_flags(work: Work, patient_ref: str) -> None:
    """Store a new version of each of the patient's step-7 episodes whose sip-missing flag changes."""
    params = [("patient", patient_ref), ("integrated-care-step", f"{INTEGRATED_CARE_STEP}|long-term-collaboration")]
    for eid in find_matches(work, "EpisodeOfCare", params, limit=_LIMIT):
        episode = load(work, f"EpisodeOfCare/{eid}")
        if episode is None or episode.get("status") == "entered-in-error":
            continue
        if ("sip-missing" in _tags(episode)) != _sip_missing(work, episode):
            update(work, "EpisodeOfCare", eid, episode)  # the episode hook sets the flag


def install_integrated_care(runtime: Runtime) -> None:
    runtime.hooks.register(HookPoint.AFTER_VALIDATION, _on_episode)
    runtime.hooks.register(HookPoint.BEFORE_COMMIT, _on_care_plan)
