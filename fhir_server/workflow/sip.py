"""SIP rules (domain.md §3 rule 8): a SIP CarePlan needs an active Consent covering every
participating organisation, and at least one region and one municipality participant.

**Which CarePlans are SIPs.** A CarePlan whose category holds
``evi-careplan-category|sip``, or that claims the ``evi-sip`` profile. A plan that does not
claim the profile is checked all the same; a revision that drops the category of a plan
that was a SIP is checked as a SIP too (dropping the category is no way around the rule).

**When the rule runs.** On every write of a SIP whatever the interaction (create, update,
patch, transaction or batch entry, conditional variants): they all store through the
write pipeline, whose BEFORE_COMMIT hook defers the check to the end of the unit of work
(a ``SipCheck``, once per plan and unit of work, against the version before the unit of
work's first write of it), so the CareTeam, Consent and Organizations of a transaction
are in place whatever their order in the Bundle. The check is skipped for:

* ``entered-in-error``: a correction of an error must never be blocked;
* closing a plan that exists: a revision whose status is ``completed`` or ``revoked``,
  whose previous version was a SIP, and which names no organisation (care team,
  activity performer, author) that the previous version did not. Withdrawing consent
  ends a SIP, and the responsible unit must be able to record that without a consent.
  A closed plan stays closed under the same condition; re-opening it (back to draft,
  active, on-hold or unknown) or creating a SIP that is already closed is checked.

Draft, active, on-hold and unknown plans are checked. Deleting a SIP is not blocked.

**What is checked.**

* ``subject`` is a literal reference to a Patient (whose Consent is looked for).
* ``careTeam`` names at least one CareTeam, each a CareTeam resource on this server
  (a contained, external or unresolvable reference is refused, naming it), about the
  same Patient.
* The participating organisations are the CareTeams' ``participant.member``
  Organizations (literal references; each must exist). Members that are persons
  (Patient, RelatedPerson, Practitioner, PractitionerRole) are not organisations and are
  not checked; a contained or external Organization member is refused, as it cannot be
  named in a Consent. At least one participant's ``evi-organization-type`` has principal
  ``region``, and one ``municipality`` (the ``principal`` property of the guide's
  CodeSystem; a state organisation such as a SiS home counts for neither).
* An active Consent for the Patient (``workflow.consent``: status active, permit,
  in its period, ``provision.actor`` with role IRCP) covers every organisation that
  takes part: the CareTeam participants, and also the Organizations named as
  ``activity.detail.performer`` and as ``author`` - they receive and share the plan's
  information just as much (the issue names the CareTeam participants; performers and
  the author are in the team in every real plan, so this only closes a gap). Any active
  Consent of the Patient may do: ``supportingInfo`` is not required to point at it, so
  a renewed Consent does not force a revision of the plan.

What is wrong with a plan is ``workflow.sip_problems``. Each problem is one issue of the
422 OperationOutcome, naming the organisation
(reference and name) or "no active Consent for Patient/x", with its FHIRPath
expression (``CarePlan.careTeam[0]``, ``CarePlan.activity[1].detail.performer[0]``,
``CarePlan.supportingInfo``...).

**Writes of what a SIP refers to.**

* Consent: never re-checked. Revoking a Consent (status ``inactive``) is always
  possible; the SIP stays as it is and readable, and its next revision fails until a new
  Consent covers its organisations (or the revision closes it, see above).
* CareTeam: a write (create, update, patch) that adds member Organizations to a CareTeam
  that an in-force SIP (checked status) refers to is refused when no active Consent for
  that SIP's Patient covers the added ones, or when the SIP would then lack a region or a
  municipality participant. A CareTeam write that adds no organisation (removes some,
  changes roles or responsibilities) is not checked, so a revoked Consent does not block
  it: taking an organisation out is what a withdrawal needs. The SIP's next revision
  sees the team as it is.
* Organization: not re-checked (changing a unit's type could change a SIP's
  composition; the next revision of the SIP sees it).

There is no authenticated caller yet (``RequestContext.caller`` is None): every revision
is a version in the history, but "who changed it" is only what the client wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import orjson

from fhir_server.engine import DeferredRule, HookPoint, Runtime, Work, WriteEvent, find_matches
from fhir_server.errors import Unprocessable
from fhir_server.workflow.codes import CAREPLAN_CATEGORY, SIP
from fhir_server.workflow.consent import active_consents
from fhir_server.workflow.resources import claims, has_code, load
from fhir_server.workflow.sip_problems import (
    Facts,
    Problem,
    describe_reference,
    local_reference,
    patient_of,
    performers,
    principal_by_type,
    sip_problems,
)

__all__ = [
    "CLOSED",
    "CareTeamCheck",
    "SipCheck",
    "gather",
    "install_sip",
    "in_force",
    "is_sip",
    "named_organizations",
    "needs_check",
]

#: statuses of a closed plan (closing an existing SIP needs no consent, see above)
CLOSED = frozenset({"completed", "revoked"})
ERROR = "entered-in-error"
_LIMIT = 100


@dataclass(frozen=True)
class SipCheck(DeferredRule):
    """Rule 8 over one SIP CarePlan written in the unit of work (once)."""

    rule = "SIP consent and participants (rule 8)"
    once = True
    careplan_id: str


@dataclass(frozen=True)
class CareTeamCheck(DeferredRule):
    """Rule 8 over the in-force SIPs of a CareTeam that gained the ``added`` Organizations."""

    rule = "SIP consent and participants (rule 8)"
    careteam_id: str
    added: frozenset[str]


def is_sip(careplan: dict | None) -> bool:
    if not careplan or careplan.get("resourceType", "CarePlan") != "CarePlan":
        return False
    return has_code(careplan.get("category") or [], CAREPLAN_CATEGORY, "sip") or claims(careplan, SIP)


def named_organizations(careplan: dict | None, base_url: str | None = None) -> set[str]:
    """What a plan names itself: its CareTeam references, its performer and author Organizations."""
    if not careplan:
        return set()
    named = {local_reference(ct, base_url) or describe_reference(ct) for ct in careplan.get("careTeam") or ()}
    refs = [p for _, p in performers(careplan)] + [careplan.get("author")]
    for ref in refs:
        local = local_reference(ref, base_url)
        if local and local.startswith("Organization/"):
            named.add(local)
        elif ref:
            named.add(describe_reference(ref))
    return named


def needs_check(new: dict | None, previous: dict | None, base_url: str | None = None) -> bool:
    """Whether a written CarePlan version (``previous``: the version it replaces) must pass rule 8."""
    if new is None or not (is_sip(new) or is_sip(previous)):
        return False
    status = new.get("status")
    if status == ERROR:
        return False
    if status in CLOSED and is_sip(previous):
        return not named_organizations(new, base_url) <= named_organizations(previous, base_url)
    return True


def in_force(careplan: dict | None) -> bool:
    """A stored SIP whose status is checked (not closed, not entered in error)."""
    return is_sip(careplan) and careplan.get("status") not in CLOSED | {ERROR}


# ---- over a unit of work ---------------------------------------------------------------


def gather(work: Work, careplan: dict) -> Facts:
    base = work.ctx.base_url
    facts = Facts(principals=principal_by_type(work.runtime.profiles_dir), base_url=base,
                  now=datetime.now(timezone.utc))
    for ct in careplan.get("careTeam") or ():
        ref = local_reference(ct, base)
        if ref and ref.startswith("CareTeam/") and ref not in facts.care_teams:
            facts.care_teams[ref] = load(work, ref)
    orgs = [p for _, p in performers(careplan)] + [careplan.get("author")]
    for team in facts.care_teams.values():
        orgs += [p.get("member") for p in (team or {}).get("participant") or () if isinstance(p, dict)]
    for ref in orgs:
        local = local_reference(ref, base)
        if local and local.startswith("Organization/") and local not in facts.organizations:
            facts.organizations[local] = load(work, local)
    patient = patient_of(careplan, base)
    if patient:
        facts.consents = active_consents(work, patient)
    return facts


def _refuse(problems: list[Problem], message: str) -> None:
    if problems:
        raise Unprocessable(message, issues=[p.issue() for p in problems])


def _check_plan(work: Work, plan_id: str, previous: dict | None) -> None:
    plan = load(work, f"CarePlan/{plan_id}")
    if plan is None or not needs_check(plan, previous, work.ctx.base_url):
        return
    problems = sip_problems(plan, gather(work, plan))
    _refuse(problems, f"The SIP CarePlan/{plan_id} breaks rule 8 (consent and participants): "
                      + "; ".join(p.diagnostics for p in problems))


def _member_organizations(team: dict | None, base_url: str | None) -> set[str]:
    found = set()
    for participant in (team or {}).get("participant") or ():
        ref = local_reference((participant or {}).get("member"), base_url)
        if ref and ref.startswith("Organization/"):
            found.add(ref)
    return found


def _check_care_team(work: Work, team_id: str, added: frozenset[str]) -> None:
    """A CareTeam write that added organisations: each in-force SIP using it must still hold."""
    team_ref = f"CareTeam/{team_id}"
    for plan_id in find_matches(work, "CarePlan", [("care-team", team_ref)], limit=_LIMIT):
        if work.changes.wrote("CarePlan", plan_id):
            continue  # written in this unit of work: checked in full as a plan (SipCheck)
        plan = load(work, f"CarePlan/{plan_id}")
        if not in_force(plan):
            continue
        problems = [
            p for p in sip_problems(plan, gather(work, plan))
            if p.kind == "composition" or (p.kind == "consent" and (p.organization in added or p.organization is None))
        ]
        problems = [
            Problem(p.kind, f"{team_ref} is the care team of the SIP CarePlan/{plan_id}: {p.diagnostics}",
                    "CareTeam.participant", p.organization, p.code)
            for p in problems
        ]
        _refuse(problems, f"{team_ref} cannot change as written: the SIP CarePlan/{plan_id} would break rule 8: "
                          + "; ".join(p.diagnostics for p in problems))


def _previous(event: WriteEvent) -> dict | None:
    if event.previous is not None and not event.previous.deleted and event.previous.body:
        return orjson.loads(event.previous.body)
    return None


def install_sip(runtime: Runtime) -> None:
    def on_write(event: WriteEvent) -> None:
        """BEFORE_COMMIT: defer rule 8 over a SIP write, or a CareTeam write that adds organisations."""
        if event.resource is None:
            return  # deletes are not blocked
        work, previous = event.work, _previous(event)
        if event.resource_type == "CarePlan":
            if is_sip(event.resource) or is_sip(previous):
                work.defer(SipCheck(event.id), lambda: _check_plan(work, event.id, previous))
        elif event.resource_type == "CareTeam":
            base = work.ctx.base_url
            added = frozenset(_member_organizations(event.resource, base) - _member_organizations(previous, base))
            if added:
                work.defer(CareTeamCheck(event.id, added), lambda: _check_care_team(work, event.id, added))

    runtime.hooks.register(HookPoint.BEFORE_COMMIT, on_write)
