"""What rule 8 finds wrong with one SIP version (``workflow.sip`` says which CarePlans are
SIPs and when the rule runs): pure functions over the plan and the ``Facts`` gathered for
it, each violation a ``Problem`` that becomes one issue of the 422 OperationOutcome.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from fhir_server.conformance import guide_terminology, ig_directory
from fhir_server.errors import Issue
from fhir_server.workflow.codes import ORGANIZATION_TYPE
from fhir_server.workflow.consent import covered_organizations
from fhir_server.workflow.resources import literal, organization_types

__all__ = [
    "Facts",
    "Problem",
    "describe_reference",
    "local_reference",
    "names_organization",
    "participant_organizations",
    "patient_of",
    "performers",
    "principal_by_type",
    "principal_of",
    "sip_problems",
]

#: the guide's evi-organization-type principals, for an installation without the guide
_FALLBACK_PRINCIPALS = {
    "evi": "region", "bup-clinic": "region", "bup-acute": "region", "bup-mobile-team": "region",
    "primary-care": "region", "social-services": "municipality", "school-health": "municipality",
    "sis-home": "state",
}


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


def describe_reference(reference: object) -> str:
    if isinstance(reference, dict):
        if isinstance(reference.get("reference"), str):
            return reference["reference"]
        identifier = reference.get("identifier") or {}
        if identifier.get("value"):
            return f"identifier {identifier.get('system', '')}|{identifier['value']}"
        if reference.get("display"):
            return repr(reference["display"])
    return "(no reference)"


def names_organization(reference: object, container: dict | None = None) -> bool:
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


def performers(careplan: dict) -> list[tuple[str, dict]]:
    """(expression, reference) of every activity.detail.performer."""
    found = []
    for i, activity in enumerate(careplan.get("activity") or ()):
        detail = (activity or {}).get("detail") or {}
        for j, performer in enumerate(detail.get("performer") or ()):
            found.append((f"CarePlan.activity[{i}].detail.performer[{j}]", performer))
    return found



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
    """Every violation of rule 8 by one SIP version, given what it refers to (in the order:
    subject, care teams, composition, performers and author, consent)."""
    problems: list[Problem] = []
    patient = patient_of(careplan, facts.base_url)
    if patient is None:
        problems.append(Problem(
            "reference", f"A SIP's subject must reference the child's Patient on this server, not "
            f"{describe_reference(careplan.get('subject'))}", "CarePlan.subject"))
    team_problems, resolved = _care_team_problems(careplan, facts, patient)
    problems += team_problems
    participants = participant_organizations(careplan, facts)
    if careplan.get("careTeam") and resolved:
        problems += _composition_problems(participants, facts)
    if patient is None:
        return problems
    needed, reference_problems = _needed_organizations(careplan, participants, facts.base_url)
    problems += reference_problems
    if needed:
        problems += _consent_problems(patient, needed, facts)
    return problems


def _care_team_problems(careplan: dict, facts: Facts, patient: str | None) -> tuple[list[Problem], bool]:
    """Problems of the care teams and their members; whether every team could be read (else
    the composition cannot be judged either)."""
    problems: list[Problem] = []
    teams = careplan.get("careTeam") or []
    resolved = True
    if not teams:
        problems.append(Problem(
            "composition", "A SIP names its participating organisations in a CareTeam: CarePlan.careTeam is missing",
            "CarePlan.careTeam"))
    for i, ct in enumerate(teams):
        where = f"CarePlan.careTeam[{i}]"
        ref = local_reference(ct, facts.base_url)
        if ref is None or not ref.startswith("CareTeam/"):
            problems.append(Problem(
                "reference", f"{where} ({describe_reference(ct)}) must reference a CareTeam resource on this server: "
                "a contained, external or logical care team cannot be checked against the consent", where))
            resolved = False
        elif facts.care_teams.get(ref) is None:
            problems.append(Problem("reference", f"{where}: {ref} does not exist", where, code="not-found"))
            resolved = False
        else:
            problems += _team_problems(ref, facts.care_teams[ref], where, facts, patient)
    return problems, resolved


def _team_problems(ref: str, team: dict, where: str, facts: Facts, patient: str | None) -> list[Problem]:
    problems: list[Problem] = []
    team_patient = local_reference(team.get("subject"), facts.base_url)
    if patient and team_patient and team_patient.startswith("Patient/") and team_patient != patient:
        problems.append(Problem(
            "reference", f"{ref} is the care team of {team_patient}, not of the SIP's subject {patient}", where))
    for k, participant in enumerate(team.get("participant") or ()):
        member = (participant or {}).get("member")
        member_ref = local_reference(member, facts.base_url)
        if member_ref is None:
            if names_organization(member, team):
                problems.append(Problem(
                    "reference", f"Participant {k} of {ref} ({describe_reference(member)}) must reference an "
                    "Organization resource on this server: only those can be named in a Consent", where))
            continue
        if member_ref.startswith("Organization/") and facts.organizations.get(member_ref) is None:
            problems.append(Problem(
                "reference", f"{member_ref}, participant of {ref}, does not exist", where,
                organization=member_ref, code="not-found"))
    return problems


def _composition_problems(participants: list[tuple[str, str]], facts: Facts) -> list[Problem]:
    """At least one region and one municipality participant."""
    found_principals: set[str] = set()
    for ref, _ in participants:
        found_principals |= principal_of(facts.organizations.get(ref), facts.principals)
    listed = ", ".join(
        f"{_name(r, facts)}: {'/'.join(sorted(principal_of(facts.organizations.get(r), facts.principals))) or 'no principal'}"
        for r, _ in participants) or "none"
    return [
        Problem(
            "composition", f"A SIP needs at least one participant from {word} (principal {principal} of "
            f"evi-organization-type); the CareTeam's organisations are: {listed}", "CarePlan.careTeam")
        for principal, word in (("region", "a region"), ("municipality", "a municipality"))
        if principal not in found_principals
    ]


def _needed_organizations(
    careplan: dict, participants: list[tuple[str, str]], base: str | None
) -> tuple[dict[str, str], list[Problem]]:
    """Organization -> expression of every organisation the consent must cover: the care
    team's, then the performers' and the author; and the problems of unusable references."""
    problems: list[Problem] = []
    needed: dict[str, str] = dict(participants)
    for where, ref in performers(careplan) + [("CarePlan.author", careplan.get("author"))]:
        if not ref:
            continue
        local = local_reference(ref, base)
        if local is None:
            if names_organization(ref, careplan):
                problems.append(Problem(
                    "reference", f"{where} ({describe_reference(ref)}) must reference an Organization resource on "
                    "this server: only those can be named in a Consent", where))
        elif local.startswith("Organization/"):
            needed.setdefault(local, where)
    return needed, problems


def _consent_problems(patient: str, needed: dict[str, str], facts: Facts) -> list[Problem]:
    """The organisations no active Consent covers (judged against the Consent that covers most)."""
    if not facts.consents:
        return [Problem(
            "consent", f"no active Consent for {patient}: a SIP needs the consent of the child and guardians, "
            f"listing every participating organisation ({', '.join(_name(r, facts) for r in needed)}) in "
            "Consent.provision.actor with role IRCP", "CarePlan.supportingInfo")]
    best: set[str] | None = None
    for consent in facts.consents:
        missing = set(needed) - covered_organizations(consent, facts.now)
        if best is None or len(missing) < len(best):
            best = missing
    return [
        Problem(
            "consent", f"{_name(ref, facts)} takes part in the SIP but no active Consent for {patient} covers it "
            "(Consent.provision.actor with role IRCP)", where, organization=ref)
        for ref, where in needed.items()
        if ref in (best or ())
    ]


def principal_by_type(profiles_dir: str | None = None) -> dict[str, str]:
    """evi-organization-type code -> its ``principal`` property, from the guide's CodeSystem."""
    terms = guide_terminology(ig_directory(profiles_dir))
    found = {code: values[0] for code in terms.codes(ORGANIZATION_TYPE)
             if (values := terms.property_values(ORGANIZATION_TYPE, code, "principal"))}
    return found or dict(_FALLBACK_PRINCIPALS)


