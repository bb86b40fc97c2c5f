"""SIP rules (domain.md §3 rule 8): a SIP CarePlan needs an active Consent covering every
participating organisation, and at least one region and one municipality participant.

**Which CarePlans are SIPs.** A CarePlan whose category holds
``evi-careplan-category|sip``, or that claims the ``evi-sip`` profile. A plan that does not
claim the profile is checked all the same; a revision that drops the category of a plan
that was a SIP is checked as a SIP too (dropping the category is no way around the rule).

**When the rule runs.** On every write of a SIP whatever the interaction (create, update,
patch, transaction or batch entry, conditional variants): they all store through the
write pipeline, whose BEFORE_COMMIT hook defers the check to the end of the unit of work
(``Work.before_commit``), so the CareTeam, Consent and Organizations of a transaction are
in place whatever their order in the Bundle. The check is skipped for:

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

Each problem is one issue of the 422 OperationOutcome, naming the organisation
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

from dataclasses import dataclass, field
from datetime import datetime, timezone

import orjson

from fhir_server.conformance import guide_terminology, ig_directory
from fhir_server.engine import HookPoint, Runtime, Work, WriteEvent, find_matches
from fhir_server.errors import Issue, Unprocessable
from fhir_server.workflow.codes import CAREPLAN_CATEGORY, ORGANIZATION_TYPE, SIP
from fhir_server.workflow.consent import active_consents, covered_organizations
from fhir_server.workflow.resources import claims, has_code, literal, load, organization_types

__all__ = [
    "CLOSED",
    "Facts",
    "Problem",
    "install_sip",
    "in_force",
    "is_sip",
    "local_reference",
    "named_organizations",
    "needs_check",
    "participant_organizations",
    "principal_by_type",
    "sip_problems",
]

#: statuses of a closed plan (closing an existing SIP needs no consent, see above)
CLOSED = frozenset({"completed", "revoked"})
ERROR = "entered-in-error"
_PENDING = "sip.pending"  # CarePlan id -> previous body (None: new), checks deferred to before_commit
_CHECKED = "sip.checked"  # CarePlan ids checked in this unit of work
_LIMIT = 100
_PERSONS = frozenset({"Patient", "RelatedPerson", "Practitioner", "PractitionerRole"})
#: the guide's evi-organization-type principals, for an installation without the guide
_FALLBACK_PRINCIPALS = {
    "evi": "region", "bup-clinic": "region", "bup-acute": "region", "bup-mobile-team": "region",
    "primary-care": "region", "social-services": "municipality", "school-health": "municipality",
    "sis-home": "state",
}


# ---- pure logic ------------------------------------------------------------------------


def is_sip(careplan: dict | None) -> bool:
    if not careplan or careplan.get("resourceType", "CarePlan") != "CarePlan":
        return False
    return has_code(careplan.get("category") or [], CAREPLAN_CATEGORY, "sip") or claims(careplan, SIP)


def local_reference(reference: object, base_url: str | None = None) -> str | None:
    """``Type/id`` of a reference to a resource on this server; None for a contained (``#x``),
    external or logical (identifier only) reference."""
    ref = reference.get("reference") if isinstance(reference, dict) else reference
    if not isinstance(ref, str) or not ref or ref.startswith("#") or ref.startswith("urn:"):
        return None
    if "://" in ref:
        base = (base_url or "").rstrip("/")
        if not base or not ref.startswith(base + "/"):
            return None
        ref = ref[len(base) + 1:]
    found = literal(ref)
    return f"{found[0]}/{found[1]}" if found else None


def _describe(reference: object) -> str:
    if isinstance(reference, dict):
        if isinstance(reference.get("reference"), str):
            return reference["reference"]
        identifier = reference.get("identifier") or {}
        if identifier.get("value"):
            return f"identifier {identifier.get('system', '')}|{identifier['value']}"
        if reference.get("display"):
            return repr(reference["display"])
    return "(no reference)"


def _names_organization(reference: object, container: dict | None = None) -> bool:
    """Whether a non-local reference is (or says it is) to an Organization."""
    if not isinstance(reference, dict):
        return False
    ref = reference.get("reference")
    if reference.get("type") == "Organization":
        return True
    if isinstance(ref, str):
        if ref.startswith("#"):
            contained = {c.get("id"): c for c in (container or {}).get("contained") or () if isinstance(c, dict)}
            return (contained.get(ref[1:]) or {}).get("resourceType") == "Organization"
        return "Organization/" in ref
    return False


def _performers(careplan: dict) -> list[tuple[str, dict]]:
    """(expression, reference) of every activity.detail.performer."""
    found = []
    for i, activity in enumerate(careplan.get("activity") or ()):
        detail = (activity or {}).get("detail") or {}
        for j, performer in enumerate(detail.get("performer") or ()):
            found.append((f"CarePlan.activity[{i}].detail.performer[{j}]", performer))
    return found


def named_organizations(careplan: dict | None, base_url: str | None = None) -> set[str]:
    """What a plan names itself: its CareTeam references, its performer and author Organizations."""
    if not careplan:
        return set()
    named = {local_reference(ct, base_url) or _describe(ct) for ct in careplan.get("careTeam") or ()}
    refs = [p for _, p in _performers(careplan)] + [careplan.get("author")]
    for ref in refs:
        local = local_reference(ref, base_url)
        if local and local.startswith("Organization/"):
            named.add(local)
        elif ref:
            named.add(_describe(ref))
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


@dataclass(frozen=True)
class Problem:
    """One violation: ``kind`` composition | consent | reference; ``organization`` the
    ``Organization/{id}`` it is about, if any."""

    kind: str
    diagnostics: str
    expression: str
    organization: str | None = None
    code: str = "business-rule"

    def issue(self) -> Issue:
        return Issue(self.diagnostics, code=self.code, expression=(self.expression,))


@dataclass
class Facts:
    """What the rule needs from the store, gathered for one plan."""

    #: ``CareTeam/{id}`` -> the CareTeam (None: not on this server)
    care_teams: dict[str, dict | None] = field(default_factory=dict)
    #: ``Organization/{id}`` -> the Organization (None: not on this server)
    organizations: dict[str, dict | None] = field(default_factory=dict)
    #: active Consents of the plan's Patient
    consents: list[dict] = field(default_factory=list)
    #: evi-organization-type code -> principal (region, municipality, state)
    principals: dict[str, str] = field(default_factory=lambda: dict(_FALLBACK_PRINCIPALS))
    base_url: str | None = None
    now: datetime | None = None


def _name(ref: str, facts: Facts) -> str:
    org = facts.organizations.get(ref)
    name = (org or {}).get("name")
    return f"{ref} ({name})" if name else ref


def patient_of(careplan: dict, base_url: str | None = None) -> str | None:
    ref = local_reference(careplan.get("subject"), base_url)
    return ref if ref and ref.startswith("Patient/") else None


def participant_organizations(careplan: dict, facts: Facts) -> list[tuple[str, str]]:
    """(``Organization/{id}``, expression) of every CareTeam member Organization, in order."""
    found: list[tuple[str, str]] = []
    for i, ct in enumerate(careplan.get("careTeam") or ()):
        team = facts.care_teams.get(local_reference(ct, facts.base_url) or "")
        for member in (p.get("member") for p in (team or {}).get("participant") or () if isinstance(p, dict)):
            ref = local_reference(member, facts.base_url)
            if ref and ref.startswith("Organization/") and ref not in {r for r, _ in found}:
                found.append((ref, f"CarePlan.careTeam[{i}]"))
    return found


def principal_of(organization: dict | None, principals: dict[str, str]) -> set[str]:
    return {principals[t] for t in organization_types(organization) if t in principals}


def sip_problems(careplan: dict, facts: Facts) -> list[Problem]:
    """Every violation of rule 8 by one SIP version, given what it refers to."""
    problems: list[Problem] = []
    base = facts.base_url
    patient = patient_of(careplan, base)
    if patient is None:
        problems.append(Problem(
            "reference", f"A SIP's subject must reference the child's Patient on this server, not "
            f"{_describe(careplan.get('subject'))}", "CarePlan.subject"))

    # the care teams and their organisations
    teams = careplan.get("careTeam") or []
    unresolved = False  # a care team that cannot be read: its composition cannot be judged either
    if not teams:
        problems.append(Problem(
            "composition", "A SIP names its participating organisations in a CareTeam: CarePlan.careTeam is missing",
            "CarePlan.careTeam"))
    for i, ct in enumerate(teams):
        where = f"CarePlan.careTeam[{i}]"
        ref = local_reference(ct, base)
        if ref is None or not ref.startswith("CareTeam/"):
            problems.append(Problem(
                "reference", f"{where} ({_describe(ct)}) must reference a CareTeam resource on this server: "
                "a contained, external or logical care team cannot be checked against the consent", where))
            unresolved = True
            continue
        team = facts.care_teams.get(ref)
        if team is None:
            problems.append(Problem("reference", f"{where}: {ref} does not exist", where, code="not-found"))
            unresolved = True
            continue
        team_patient = local_reference(team.get("subject"), base)
        if patient and team_patient and team_patient.startswith("Patient/") and team_patient != patient:
            problems.append(Problem(
                "reference", f"{ref} is the care team of {team_patient}, not of the SIP's subject {patient}", where))
        for k, participant in enumerate(team.get("participant") or ()):
            member = (participant or {}).get("member")
            member_ref = local_reference(member, base)
            if member_ref is None:
                if _names_organization(member, team):
                    problems.append(Problem(
                        "reference", f"Participant {k} of {ref} ({_describe(member)}) must reference an Organization "
                        "resource on this server: only those can be named in a Consent", where))
                continue
            if member_ref.startswith("Organization/") and facts.organizations.get(member_ref) is None:
                problems.append(Problem(
                    "reference", f"{member_ref}, participant of {ref}, does not exist", where,
                    organization=member_ref, code="not-found"))

    participants = participant_organizations(careplan, facts)
    found_principals: set[str] = set()
    for ref, _ in participants:
        found_principals |= principal_of(facts.organizations.get(ref), facts.principals)
    if teams and not unresolved:
        listed = ", ".join(
            f"{_name(r, facts)}: {'/'.join(sorted(principal_of(facts.organizations.get(r), facts.principals))) or 'no principal'}"
            for r, _ in participants) or "none"
        for principal, word in (("region", "a region"), ("municipality", "a municipality")):
            if principal not in found_principals:
                problems.append(Problem(
                    "composition", f"A SIP needs at least one participant from {word} (principal {principal} of "
                    f"evi-organization-type); the CareTeam's organisations are: {listed}", "CarePlan.careTeam"))

    # consent
    if patient is None:
        return problems
    needed: dict[str, str] = dict((r, w) for r, w in participants)
    for where, ref in _performers(careplan) + [("CarePlan.author", careplan.get("author"))]:
        if not ref:
            continue
        local = local_reference(ref, base)
        if local is None:
            if _names_organization(ref, careplan):
                problems.append(Problem(
                    "reference", f"{where} ({_describe(ref)}) must reference an Organization resource on this server: "
                    "only those can be named in a Consent", where))
        elif local.startswith("Organization/"):
            needed.setdefault(local, where)
    if not needed:
        return problems
    if not facts.consents:
        problems.append(Problem(
            "consent", f"no active Consent for {patient}: a SIP needs the consent of the child and guardians, "
            f"listing every participating organisation ({', '.join(_name(r, facts) for r in needed)}) in "
            "Consent.provision.actor with role IRCP", "CarePlan.supportingInfo"))
        return problems
    best: set[str] | None = None
    for consent in facts.consents:
        missing = set(needed) - covered_organizations(consent, facts.now)
        if best is None or len(missing) < len(best):
            best = missing
    for ref, where in needed.items():
        if ref in (best or ()):
            problems.append(Problem(
                "consent", f"{_name(ref, facts)} takes part in the SIP but no active Consent for {patient} covers it "
                "(Consent.provision.actor with role IRCP)", where, organization=ref))
    return problems


def principal_by_type(profiles_dir: str | None = None) -> dict[str, str]:
    """evi-organization-type code -> its ``principal`` property, from the guide's CodeSystem."""
    terms = guide_terminology(ig_directory(profiles_dir))
    found = {code: values[0] for code in terms.codes(ORGANIZATION_TYPE)
             if (values := terms.property_values(ORGANIZATION_TYPE, code, "principal"))}
    return found or dict(_FALLBACK_PRINCIPALS)


# ---- over a unit of work ---------------------------------------------------------------


def gather(work: Work, careplan: dict) -> Facts:
    base = work.ctx.base_url
    facts = Facts(principals=principal_by_type(work.runtime.profiles_dir), base_url=base,
                  now=datetime.now(timezone.utc))
    for ct in careplan.get("careTeam") or ():
        ref = local_reference(ct, base)
        if ref and ref.startswith("CareTeam/") and ref not in facts.care_teams:
            facts.care_teams[ref] = load(work, ref)
    orgs = [p for _, p in _performers(careplan)] + [careplan.get("author")]
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
    checked = work.state.setdefault(_CHECKED, set())
    if plan_id in checked:
        return
    checked.add(plan_id)
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


def _check_care_team(work: Work, team_id: str, added: set[str]) -> None:
    """A CareTeam write that added organisations: each in-force SIP using it must still hold."""
    team_ref = f"CareTeam/{team_id}"
    checked = work.state.setdefault(_CHECKED, set())
    pending = work.state.get(_PENDING, {})
    for plan_id in find_matches(work, "CarePlan", [("care-team", team_ref)], limit=_LIMIT):
        if plan_id in checked or plan_id in pending:
            continue  # written in this unit of work: checked in full as a plan
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


def install_sip(runtime: Runtime) -> None:
    def on_write(event: WriteEvent) -> None:
        if event.resource is None:
            return  # deletes are not blocked
        work = event.work
        previous = None
        if event.previous is not None and not event.previous.deleted and event.previous.body:
            previous = orjson.loads(event.previous.body)
        if event.resource_type == "CarePlan":
            if not (is_sip(event.resource) or is_sip(previous)):
                return
            pending = work.state.setdefault(_PENDING, {})
            if event.id in pending:
                return
            pending[event.id] = previous
            work.before_commit.append(lambda: _check_plan(work, event.id, pending[event.id]))
        elif event.resource_type == "CareTeam":
            base = work.ctx.base_url
            added = _member_organizations(event.resource, base) - _member_organizations(previous, base)
            if not added:
                return
            work.before_commit.append(lambda: _check_care_team(work, event.id, added))

    runtime.hooks.register(HookPoint.BEFORE_COMMIT, on_write)
