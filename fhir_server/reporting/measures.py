"""The seven measures of domain.md §8, each computed from store tabulations
(``reporting.tables``): the store groups and counts, Python only codes the few distinct
values (age bands, municipalities, HSA-ids) and the per-resource dates of the measures
that need days (first visit, integrated care).

``MEASURES[id](work, period, subjects)`` returns the measure's ``Result``: population
counts, strata, a score, and (``subjects``) the references each population counts.
The definitions in words are the Measure resources in ``profiles/`` and docs/reporting.md.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Callable

from fhir_server.engine import Work
from fhir_server.reporting.period import Period
from fhir_server.reporting.strata import NONE, age_band, municipality, organization_codes
from fhir_server.reporting.tables import tabulate
from fhir_server.storage.tabulation import Coalesce, Follow, Id, NotAfter, Referrers, TokenIs, Updated, Value

__all__ = ["MEASURES", "Result", "Stratifier", "VISIT_STATUSES", "intake_criteria"]

CS = "https://evi-fhir.org/fhir/CodeSystem/"
#: Appointment statuses of a first visit that happened or is booked to
VISIT_STATUSES = ("booked", "arrived", "checked-in", "fulfilled", "noshow")
#: the care guarantee (vårdgaranti): a first visit at BUP within 30 days
GUARANTEE_DAYS = 30
SLOT_HORIZON_DAYS = 21


@dataclass
class Stratifier:
    name: str
    #: stratum value -> population code -> count
    strata: dict[str, dict[str, int]] = field(default_factory=dict)
    #: the code system of the values, where they are codes of one
    system: str | None = None

    def add(self, value: str, population: str, n: int) -> None:
        counts = self.strata.setdefault(value, {})
        counts[population] = counts.get(population, 0) + n


@dataclass
class Result:
    populations: dict[str, int]
    stratifiers: list[Stratifier] = field(default_factory=list)
    score: float | None = None
    #: "proportion" (a share, 0..1) or "days" (a continuous variable's aggregate)
    score_unit: str | None = None
    subjects: dict[str, list[str]] = field(default_factory=dict)


def intake_criteria(period: Period) -> list[tuple[str, str]]:
    """Intake Tasks (not entered-in-error) received in the period."""
    return [("code", f"{CS}evi-task-type|intake"), *period.criteria("authored-on"), ("status:not", "entered-in-error")]


def _is_set(column) -> NotAfter:
    """1 when the column has a value (a value is never after itself), else 0."""
    return NotAfter(column, column)


# -- evi-assessed-within-deadline ----------------------------------------------------


def assessed_within_deadline(work: Work, period: Period, subjects: bool) -> Result:
    end, due = Value("execution-end", "low"), Value("due", "high")
    columns = [Value("status", "code"), _is_set(Value("triage-outcome", "code")), _is_set(end),
               NotAfter(end, due), NotAfter(Value("modified", "low"), due)]
    rows = tabulate(work, "Task", intake_criteria(period), *columns, *([Id()] if subjects else []))
    total = numerator = 0
    listed: dict[str, list[str]] = {"initial-population": [], "denominator": [], "numerator": []}
    for status, triaged, has_end, end_on_time, modified_on_time, *rest in rows:
        n = rest[-1]
        on_time = end_on_time if has_end else modified_on_time
        hit = status == "completed" and triaged and on_time
        total += n
        numerator += n if hit else 0
        if subjects:
            ref = f"Task/{rest[0]}"
            listed["initial-population"].append(ref)
            listed["denominator"].append(ref)
            if hit:
                listed["numerator"].append(ref)
    populations = {"initial-population": total, "denominator": total, "numerator": numerator}
    return Result(populations, score=numerator / total if total else None, score_unit="proportion",
                  subjects={k: sorted(v) for k, v in listed.items()} if subjects else {})


# -- first visits at BUP ---------------------------------------------------------------


def first_visit_column() -> Follow:
    """The earliest start of a specialist-level Appointment of the contact, booked or held."""
    return Follow("focus", "ServiceRequest", Referrers(
        "Appointment", "based-on", Value("date", "low"),
        (TokenIs("care-level", ("specialist",)), TokenIs("status", VISIT_STATUSES))))


def _first_visits(work: Work, period: Period) -> list[tuple[str, int]]:
    """(referral, days from receipt to first visit) of the referrals received in the
    period that got a first visit at BUP."""
    rows = tabulate(work, "Task", intake_criteria(period), Value("focus", "target"),
                    Value("authored-on", "low"), first_visit_column())
    found = []
    for referral, received, visit, _n in rows:
        if visit is None or received is None:
            continue
        found.append((referral or "", (period.day(visit) - period.day(received)).days))
    return sorted(found)


def first_visit_within_30_days(work: Work, period: Period, subjects: bool) -> Result:
    visits = _first_visits(work, period)
    within = [r for r, days in visits if days <= GUARANTEE_DAYS]
    total = len(visits)
    populations = {"initial-population": total, "denominator": total, "numerator": len(within)}
    listed = {"initial-population": [r for r, _ in visits], "denominator": [r for r, _ in visits], "numerator": within}
    return Result(populations, score=len(within) / total if total else None, score_unit="proportion",
                  subjects=listed if subjects else {})


def days_to_first_visit(work: Work, period: Period, subjects: bool) -> Result:
    visits = _first_visits(work, period)
    days = [d for _, d in visits]
    n = len(visits)
    populations = {"initial-population": n, "measure-population": n, "measure-observation": n}
    refs = [r for r, _ in visits]
    listed = {"initial-population": refs, "measure-population": refs, "measure-observation": refs}
    return Result(populations, score=float(statistics.median(days)) if days else None, score_unit="days",
                  subjects=listed if subjects else {})


# -- evi-contacts ------------------------------------------------------------------------


def handed_to_column() -> Coalesce:
    """Where triage handed the contact (domain.md §8): the Appointment's unit, the
    recipient of the referral or of the Communication, the owner of the handover Task."""
    created = "triage-created"
    return Coalesce((
        Follow(created, "Appointment", Follow("actor", "HealthcareService", Value("organization", "target"))),
        Follow(created, "ServiceRequest", Value("performer", "target", target_type="Organization")),
        Follow(created, "Communication", Value("recipient", "target", target_type="Organization")),
        Follow(created, "Task", Value("owner", "target", target_type="Organization")),
    ))


def _patient(column) -> Follow:
    return Follow("focus", "ServiceRequest", Follow("subject", "Patient", column))


def contacts(work: Work, period: Period, subjects: bool) -> Result:
    criteria = intake_criteria(period)
    pop = "initial-population"
    total = sum(row[-1] for row in tabulate(work, "Task", criteria))
    by_channel = Stratifier("channel", system=CS + "evi-contact-channel")
    for channel, n in tabulate(work, "Task", criteria, Follow("focus", "ServiceRequest", Value("contact-channel", "code"))):
        by_channel.add(channel or NONE, pop, n)
    by_outcome = Stratifier("triage-outcome", system=CS + "evi-triage-outcome")
    for outcome, n in tabulate(work, "Task", criteria, Value("triage-outcome", "code")):
        by_outcome.add(outcome or NONE, pop, n)
    by_age = Stratifier("age-band")
    for received, birth, n in tabulate(work, "Task", criteria, Value("authored-on", "low"),
                                       _patient(Value("birthdate", "low"))):
        by_age.add(age_band(_utc_day(birth), period.day(received)), pop, n)
    by_municipality = municipality_stratifier(
        tabulate(work, "Task", criteria, _patient(Value("home-municipality", "code"))), pop)
    by_unit = Stratifier("unit", system="urn:oid:1.2.752.29.4.19")
    rows = tabulate(work, "Task", criteria, handed_to_column())
    codes = organization_codes(work, {unit for unit, _ in rows})
    for unit, n in rows:
        by_unit.add(codes[unit], pop, n)
    listed = {}
    if subjects:
        listed[pop] = sorted(r for r, _n in tabulate(work, "Task", criteria, Value("focus", "target")) if r)
    return Result({pop: total}, [by_channel, by_outcome, by_age, by_municipality, by_unit], subjects=listed)


def _utc_day(instant: str | None) -> date | None:
    """A birth date's day: its index value is the first moment of that day in UTC."""
    return date.fromisoformat(instant[:10]) if instant else None


def municipality_stratifier(rows: list[tuple], population: str) -> Stratifier:
    stratifier = Stratifier("municipality", system="urn:oid:1.2.752.129.2.2.1.17")
    for district, n in rows:
        stratifier.add(municipality(district), population, n)
    return stratifier


# -- evi-sip-initiated -------------------------------------------------------------------


def sip_initiated(work: Work, period: Period, subjects: bool) -> Result:
    criteria = [("category", f"{CS}evi-careplan-category|sip"), *period.criteria("created"),
                ("status:not", "entered-in-error")]
    pop = "initial-population"
    rows = tabulate(work, "CarePlan", criteria, Follow("subject", "Patient", Value("home-municipality", "code")))
    listed = {pop: sorted(f"CarePlan/{i}" for i, _ in tabulate(work, "CarePlan", criteria, Id()))} if subjects else {}
    return Result({pop: sum(n for _, n in rows)}, [municipality_stratifier(rows, pop)], subjects=listed)


# -- evi-integrated-care -----------------------------------------------------------------


def integrated_care(work: Work, period: Period, subjects: bool) -> Result:
    """Completed transfers: their completion day is computed per Task (completed transfers
    are few; the store still filters by code and status and groups by the times)."""
    criteria = [("code", f"{CS}evi-task-type|transfer-care-responsibility"), ("status", "completed")]
    rows = tabulate(work, "Task", criteria, Value("execution-end", "low"), Value("modified", "low"), Updated(),
                    Value("owner", "target"), *([Id()] if subjects else []))
    pop = "initial-population"
    counted: list[tuple[str | None, int, str | None]] = []
    for end, modified, written, owner, *rest in rows:
        if period.contains(period.day(end or modified or written)):
            counted.append((owner, rest[-1], rest[0] if subjects else None))
    codes = organization_codes(work, {owner for owner, _, _ in counted})
    by_team = Stratifier("mobile-team", system="urn:oid:1.2.752.29.4.19")
    for owner, n, _ in counted:
        by_team.add(codes[owner], pop, n)
    listed = {pop: sorted(f"Task/{tid}" for _, _, tid in counted)} if subjects else {}
    return Result({pop: sum(n for _, n, _ in counted)}, [by_team], subjects=listed)


# -- evi-units-without-slots -------------------------------------------------------------


def units_without_slots(work: Work, period: Period, subjects: bool) -> Result:
    units = {f"Organization/{i}" for i, _ in tabulate(work, "Organization", [
        ("type", f"{CS}evi-organization-type|primary-care,{CS}evi-organization-type|bup-clinic"),
        ("active:not", "false")], Id())}
    ahead = Period(period.end + timedelta(days=1), period.end + timedelta(days=SLOT_HORIZON_DAYS), period.zone)
    with_slots = {org for org, _ in tabulate(
        work, "Slot", [("status", "free"), *ahead.criteria("start")],
        Follow("schedule", "Schedule", Follow("actor", "HealthcareService", Value("organization", "target"))))}
    without = sorted(units - with_slots)
    pop = "initial-population"
    return Result({pop: len(without)}, subjects={pop: without} if subjects else {})


MEASURES: dict[str, Callable[[Work, Period, bool], Result]] = {
    "evi-assessed-within-deadline": assessed_within_deadline,
    "evi-first-visit-within-30-days": first_visit_within_30_days,
    "evi-days-to-first-visit": days_to_first_visit,
    "evi-contacts": contacts,
    "evi-sip-initiated": sip_initiated,
    "evi-integrated-care": integrated_care,
    "evi-units-without-slots": units_without_slots,
}
