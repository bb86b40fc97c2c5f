"""Care-responsibility transfer (domain.md §3 rule 7): a Task with code
``evi-task-type|transfer-care-responsibility`` (profile evi-care-transfer; the rule
follows the code, whether or not the profile is claimed). requester = the SiS home,
owner = the BUP mobile team, focus = the EpisodeOfCare (evi-integrated-care), for = the
patient. The episode's own rules (steps, closure, flags) are ``integrated_care``.

**Acceptance.** When a transfer Task arrives at a status that holds a place — ``accepted``,
and also ``ready``, ``in-progress`` and ``on-hold`` (a transfer holds its place until
completed or cancelled, domain.md §2), so that requested → in-progress is no way around
the check — from a status that does not (or is created in one), or changes its owner while
holding a place, the inclusion criteria are checked at the end of the unit of work. Each one that fails is one issue
(``business-rule``) of a 422 OperationOutcome:

  age        the patient (Task.for, else the episode's patient) is under 18 now, by
             Patient.birthDate, in the region's time zone
  placement  the Patient's evi-placement has type ``sis`` and legalBasis ``LVU``
  consent    an active Consent of the patient covers the mobile team (``workflow.consent``)
  capacity   the team has a free place: its places taken are below its capacity
             (Organization extension evi-capacity, else the region's default_team_capacity)

plus, when they are wrong, the references the rule needs (owner an Organization on this
server; focus an EpisodeOfCare on this server that has not ended).

**Places taken** by a team: the distinct episodes that are (a) managed by the team and
not ended (status planned, waitlist, active or onhold), or (b) the focus of another
transfer Task of the team in a place-holding status whose episode has not ended (a
transfer without a known episode counts by itself); the episode being transferred does
not count against itself. Closing an episode (status finished) frees its place. The count
runs after ``uow.guard("team-capacity:Organization/{id}")``, so two transfers racing for
the last place are serialized, on SQLite across processes sharing the file, on MongoDB
through a write conflict on the guard document.

**Completion.** accepted → in-progress → completed, or accepted → completed directly: the
server allows that jump for a transfer Task: an AFTER_VALIDATION hook grants the
state machine's ``ServerTransition`` exemption, which its BEFORE_COMMIT check of the same
write honours. The acceptance check and the completion run at the end of the unit of
work (a deferred ``TransferSettlement``). When a transfer Task that exists becomes ``completed``, in the same unit of
work the episode's managingOrganization becomes the owner (a new version of the
EpisodeOfCare) and a Provenance is written, shaped like
examples/valid/Provenance-care-transfer-kevin.json:

  target    EpisodeOfCare/{id}/_history/{new version}, Task/{id}
  recorded  the time of the new episode version
  activity  v3-DataOperation#UPDATE
  reason    v3-ActReason#TREAT, text "Psykiatriskt vårdansvar övergår till {team name}"
  agent     type provenance-participant-type#author, who = Task.owner (the accepting team)

Creating a transfer Task already ``completed`` records a transfer made elsewhere: no
episode change, no Provenance (loading examples/valid stays side-effect free).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import orjson

from fhir_server.engine import DeferredRule, HookPoint, Runtime, Work, WriteEvent, create, find_matches, update
from fhir_server.errors import Issue, Unprocessable
from fhir_server.workflow.codes import EXT_CAPACITY, PLACEMENT_LEGAL_BASIS, PLACEMENT_TYPE, TASK_TYPE
from fhir_server.workflow.consent import consent_covering
from fhir_server.workflow.eligibility import age_on, placement_of
from fhir_server.workflow.integrated_care import ENDED, install_integrated_care
from fhir_server.workflow.region import Region
from fhir_server.workflow.resources import codes_of, extension, has_code, literal, load, reference_of
from fhir_server.workflow.task_states import allow_server_transition

__all__ = [
    "TRANSFER",
    "HOLDING",
    "OPEN_EPISODE",
    "install_care_transfer",
    "is_transfer",
    "capacity_of",
    "places_taken",
    "age_problem",
    "placement_problem",
    "inclusion_issues",
    "TransferSettlement",
]

TRANSFER = "transfer-care-responsibility"
#: Task statuses in which a transfer holds a place in the team
HOLDING = frozenset({"accepted", "ready", "in-progress", "on-hold"})
#: EpisodeOfCare statuses that take a place when the team manages the episode
OPEN_EPISODE = ("planned", "waitlist", "active", "onhold")
ADULT_AGE = 18

_LIMIT = 1000
_DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
_ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
_PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"


def is_transfer(task: dict | None) -> bool:
    return bool(task) and has_code(task.get("code"), TASK_TYPE, TRANSFER)


def capacity_of(team: dict | None, default: int) -> int:
    ext = extension(team, EXT_CAPACITY)
    value = (ext or {}).get("valueInteger")
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def places_taken(work: Work, team_ref: str, *, exclude_task: str | None = None,
                 exclude_episode: str | None = None) -> set[str]:
    """References of what takes a place in ``team_ref`` (see the module docstring)."""
    taken: set[str] = set()
    managed = find_matches(
        work, "EpisodeOfCare", [("organization", team_ref), ("status", ",".join(OPEN_EPISODE))], limit=_LIMIT
    )
    taken.update(f"EpisodeOfCare/{i}" for i in managed)
    transfers = find_matches(
        work, "Task",
        [("owner", team_ref), ("code", f"{TASK_TYPE}|{TRANSFER}"), ("status", ",".join(sorted(HOLDING)))],
        limit=_LIMIT,
    )
    for tid in transfers:
        if tid == exclude_task:
            continue
        task = load(work, f"Task/{tid}")
        if task is None or not is_transfer(task):
            continue
        focus = literal(task.get("focus"), "EpisodeOfCare")
        episode = load(work, f"EpisodeOfCare/{focus[1]}") if focus else None
        if episode is None:
            taken.add(f"Task/{tid}")
        elif episode.get("status") not in ENDED:
            taken.add(f"EpisodeOfCare/{focus[1]}")
    if exclude_episode:
        taken.discard(exclude_episode)
    return taken


def age_problem(patient: dict | None, now: datetime, zone) -> str | None:
    """Why the patient is not under 18 at ``now`` in ``zone`` (None: they are)."""
    birth = (patient or {}).get("birthDate")
    if not isinstance(birth, str):
        return "age: the Patient has no birthDate, so being under 18 cannot be established"
    today = now.astimezone(zone).date()
    age = age_on(birth, today)
    if age is None:
        return f"age: the birthDate {birth!r} cannot be read"
    if age >= ADULT_AGE:
        return f"age: the young person is {age} years old on {today.isoformat()} (born {birth}); integrated care is for those under 18"
    return None


def placement_problem(patient: dict | None) -> str | None:
    """Why the Patient's evi-placement is not 'sis' under 'LVU' (None: it is)."""
    placement = placement_of(patient)
    if placement is None:
        return "placement: the Patient has no evi-placement; integrated care is for young people placed at a SiS home under LVU"
    kind = codes_of(placement.get("type"), PLACEMENT_TYPE)
    basis = codes_of(placement.get("legalBasis"), PLACEMENT_LEGAL_BASIS)
    wrong = []
    if kind != ["sis"]:
        wrong.append(f"type {kind[0] if kind else 'missing'} (not sis)")
    if basis != ["LVU"]:
        wrong.append(f"legalBasis {basis[0] if basis else 'missing'} (not LVU)")
    if wrong:
        return (f"placement: evi-placement has {' and '.join(wrong)}; integrated care is for young people "
                "placed at a SiS home under LVU")
    return None


def _issue(text: str, expression: str) -> Issue:
    return Issue(text, "business-rule", (expression,))


def inclusion_issues(work: Work, region: Region, task_id: str, task: dict, now: datetime) -> list[Issue]:
    """Every inclusion criterion (and needed reference) the transfer fails, one issue each."""
    issues: list[Issue] = []
    focus = literal(task.get("focus"), "EpisodeOfCare")
    episode = load(work, f"EpisodeOfCare/{focus[1]}") if focus else None
    episode_ref = f"EpisodeOfCare/{focus[1]}" if focus else None
    if episode is None:
        issues.append(_issue("focus: the transfer's focus must be an EpisodeOfCare on this server", "Task.focus"))
    elif episode.get("status") in ENDED:
        issues.append(_issue(f"focus: {episode_ref} has ended (status {episode['status']})", "Task.focus"))

    patient_ref = reference_of(task.get("for")) or reference_of((episode or {}).get("patient"))
    patient = load(work, patient_ref, "Patient") if patient_ref else None
    if patient is None:
        issues.append(_issue(
            f"patient: Task.for must reference a Patient on this server (it is {patient_ref or 'missing'}); "
            "age, placement and consent cannot be checked", "Task.for"))
    else:
        for problem in (age_problem(patient, now, region.zone), placement_problem(patient)):
            if problem:
                issues.append(_issue(f"{problem} ({patient_ref})", "Task.for"))

    owner = literal(task.get("owner"), "Organization")
    team_ref = f"Organization/{owner[1]}" if owner else None
    team = load(work, team_ref, "Organization") if team_ref else None
    if team is None:
        issues.append(_issue(
            f"owner: Task.owner must be the BUP mobile team, an Organization on this server "
            f"(it is {reference_of(task.get('owner')) or 'missing'}); consent and capacity cannot be checked",
            "Task.owner"))
        return issues

    if patient is not None:
        consent, _missing = consent_covering(work, patient_ref, {team_ref})
        if consent is None:
            issues.append(_issue(
                f"consent: no active Consent of {patient_ref} covers {team_ref} ({team.get('name', 'unnamed')}) "
                "as an information recipient (provision.actor with role IRCP)", "Task.owner"))

    work.uow.guard(f"team-capacity:{team_ref}")
    capacity = capacity_of(team, region.default_team_capacity)
    taken = places_taken(work, team_ref, exclude_task=task_id, exclude_episode=episode_ref)
    if len(taken) >= capacity:
        issues.append(_issue(
            f"capacity: {team_ref} ({team.get('name', 'unnamed')}) has no free place: "
            f"{len(taken)} of {capacity} places taken (ongoing episodes it manages and accepted transfers)",
            "Task.owner"))
    return issues


def _status(version) -> str | None:
    if version is None or version.deleted:
        return None
    status = orjson.loads(version.body).get("status")
    return status if isinstance(status, str) else None


@dataclass(frozen=True)
class TransferSettlement(DeferredRule):
    """The end-of-unit-of-work check (and completion) of one transfer Task's writes."""

    rule = "care transfer (rule 7)"
    task_id: str


def _allow_direct_completion(event: WriteEvent) -> None:
    """AFTER_VALIDATION: accepted → completed is a server rule for a transfer (the state
    machine checks at BEFORE_COMMIT, after this)."""
    if event.resource_type != "Task" or event.resource.get("status") != "completed":
        return
    if is_transfer(event.resource) and _status(event.previous) == "accepted":
        allow_server_transition(event.work, event.id, "accepted", "completed", granted_by="care transfer")


def _settle(work: Work, region: Region, task_id: str, before: str | None, before_owner: str | None) -> None:
    task = load(work, f"Task/{task_id}")
    if task is None or not is_transfer(task):
        return
    status = task.get("status")
    moved = before not in HOLDING or reference_of(task.get("owner")) != before_owner
    if status in HOLDING and moved:
        issues = inclusion_issues(work, region, task_id, task, datetime.now(timezone.utc))
        if issues:
            raise Unprocessable(
                f"Task/{task_id}: the care-responsibility transfer cannot be {status}: "
                + "; ".join(i.diagnostics for i in issues),
                issues=issues,
            )
    if status == "completed" and before is not None and before != "completed":
        _complete(work, task_id, task)


def _complete(work: Work, task_id: str, task: dict) -> None:
    focus = literal(task.get("focus"), "EpisodeOfCare")
    episode = load(work, f"EpisodeOfCare/{focus[1]}") if focus else None
    if episode is None:
        raise Unprocessable(
            f"Task/{task_id}: a completed transfer changes its focus EpisodeOfCare, which is not on this server",
            expression="Task.focus",
        )
    if episode.get("status") in ENDED:
        raise Unprocessable(
            f"Task/{task_id}: EpisodeOfCare/{focus[1]} has ended (status {episode['status']}); "
            "its care responsibility cannot be transferred",
            expression="Task.focus",
        )
    owner = literal(task.get("owner"), "Organization")
    if owner is None:
        raise Unprocessable(
            f"Task/{task_id}: a completed transfer hands the episode to Task.owner, which must be an Organization",
            expression="Task.owner",
        )
    team_ref = f"Organization/{owner[1]}"
    team = load(work, team_ref, "Organization")
    if reference_of(episode.get("managingOrganization")) != team_ref:
        episode["managingOrganization"] = {"reference": team_ref}
        version = update(work, "EpisodeOfCare", focus[1], episode).version
    else:
        version = work.uow.current("EpisodeOfCare", focus[1])
    team_name = (team or {}).get("name") or "Mobilt team BUP"
    create(work, "Provenance", {
        "resourceType": "Provenance",
        "target": [
            {"reference": f"EpisodeOfCare/{focus[1]}/_history/{version.version_id}"},
            {"reference": f"Task/{task_id}"},
        ],
        "recorded": version.last_updated,
        "reason": [{
            "coding": [{"system": _ACT_REASON, "code": "TREAT"}],
            "text": f"Psykiatriskt vårdansvar övergår till {team_name}",
        }],
        "activity": {"coding": [{"system": _DATA_OPERATION, "code": "UPDATE"}]},
        "agent": [{
            "type": {"coding": [{"system": _PARTICIPANT_TYPE, "code": "author"}]},
            "who": {"reference": team_ref},
        }],
    })


def install_care_transfer(runtime: Runtime, region: Region) -> None:
    install_integrated_care(runtime)

    def on_task(event: WriteEvent) -> None:
        """BEFORE_COMMIT: settle the transfer at the end of the unit of work, against the
        status and owner it had before the unit of work's first write of it."""
        if event.resource_type != "Task" or not is_transfer(event.resource):
            return
        work = event.work
        before = _status(event.previous)
        before_owner = None
        if event.previous is not None and not event.previous.deleted:
            before_owner = reference_of(orjson.loads(event.previous.body).get("owner"))
        work.defer(TransferSettlement(event.id), lambda: _settle(work, region, event.id, before, before_owner))

    runtime.hooks.register(HookPoint.AFTER_VALIDATION, _allow_direct_completion)
    runtime.hooks.register(HookPoint.BEFORE_COMMIT, on_task)
