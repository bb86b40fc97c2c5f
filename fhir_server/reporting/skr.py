"""SKR's monthly wait-time report for BUP (domain.md §4, §8; docs/reporting.md says it
in words, with a worked example).

    report = skr_wait_times(runtime, ctx, "2026-03", key=settings.pseudonym_key, detail=True)
    skr_measure_report(report)   # FHIR MeasureReport (the operation's default)
    skr_csv(report)              # the CSV of the SKR extract

The referrals at BUP are those with an ``evi-wait-milestone`` Encounter or a first visit
at specialist level. The store tabulates them (one row per referral and milestone), with
their receipt time, first-visit unit, the clinic asked for and the child's personnummer
(for the pseudonym); only referrals that carry ``evi-wait-deviation`` are read whole, for
their deviations' periods. Each referral then has up to three intervals:

  first-assessment  arrival (receipt day)                          -> first-assessment
  investigation     first assessment (else the decision)           -> investigation-start
                    only when an investigation was decided or started
  treatment         investigation start, else first assessment,    -> treatment-start
                    else the decision; only when treatment was decided or started

A milestone's day is the earliest Encounter of its type. An interval is *completed* in
the month when its end falls in it, *waiting* when it started by the month's last day and
had not ended by then. Days run from the start day to the end day (waiting: to the last
day of the month), less the days of the interval's deviations that overlap it. A case
with a PvV deviation in the interval counts in ``total`` only; the others count in
``excluding-pvv`` and in ``within-30-days`` (days <= 30) or ``days-31-or-more``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import orjson

from fhir_server.engine import RequestContext, Runtime, Work
from fhir_server.reporting.access import check_reporting, reporting_pseudonymizer
from fhir_server.reporting.evaluate import region_zone
from fhir_server.reporting.measures import VISIT_STATUSES
from fhir_server.reporting.period import Period, local_day, month_period
from fhir_server.reporting.pseudonyms import Pseudonymizer
from fhir_server.reporting.strata import organization_codes
from fhir_server.reporting.tables import MAX_VALUES, tabulate
from fhir_server.storage.tabulation import Coalesce, Follow, Id, Referrers, TokenIs, Value

__all__ = ["COUNTS", "INTERVALS", "VIEWS", "Case", "SkrReport", "skr_wait_times", "wait_cases"]

CS = "https://evi-fhir.org/fhir/CodeSystem/"
MILESTONE = CS + "evi-wait-milestone"
EXT_DEVIATION = "https://evi-fhir.org/fhir/StructureDefinition/evi-wait-deviation"
PERSONNUMMER = "http://electronichealth.se/identifier/personnummer"
SAMORDNINGSNUMMER = "http://electronichealth.se/identifier/samordningsnummer"
MILESTONES = ("first-assessment", "investigation-decision", "investigation-start", "treatment-decision",
              "treatment-start")
INTERVALS = ("first-assessment", "investigation", "treatment")
VIEWS = ("completed", "waiting")
COUNTS = ("total", "excluding-pvv", "within-30-days", "days-31-or-more")
BAND_DAYS = 30
#: first visits at specialist level (a referral with one is at BUP)
_VISITS = [("care-level", "specialist"), ("status", ",".join(VISIT_STATUSES))]
#: references per search (the planner drives from their index rows)
_REFERENCES = MAX_VALUES


@dataclass(frozen=True)
class Deviation:
    type: str  # PvV, MoV, SoV
    interval: str
    start: date | None
    end: date | None  # None: still running


@dataclass(frozen=True)
class Case:
    """One referral's wait in one interval, as the month's report counts it."""

    referral: str
    pseudonym: str
    unit: str
    interval: str
    view: str
    arrival: date
    start: date
    end: date | None
    days: int
    deviation_days: int
    deviations: tuple[str, ...]

    @property
    def pvv(self) -> bool:
        return "PvV" in self.deviations


@dataclass
class SkrReport:
    month: str
    period: Period
    cases: list[Case] = field(default_factory=list)
    detail: bool = False

    def counts(self) -> dict[tuple[str, str, str], dict[str, int]]:
        """(unit, interval, view) -> the four counts."""
        rows: dict[tuple[str, str, str], dict[str, int]] = {}
        for case in self.cases:
            counts = rows.setdefault((case.unit, case.interval, case.view), dict.fromkeys(COUNTS, 0))
            counts["total"] += 1
            if not case.pvv:
                counts["excluding-pvv"] += 1
                counts["within-30-days" if case.days <= BAND_DAYS else "days-31-or-more"] += 1
        return dict(sorted(rows.items()))


@dataclass
class _Referral:
    arrival: date | None = None
    milestones: dict[str, date] = field(default_factory=dict)
    unit: str | None = None
    person: str | None = None
    deviations: list[Deviation] = field(default_factory=list)
    #: the clinic the referral asked for (ServiceRequest.performer): the last resort for the unit
    asked: str | None = None


def skr_wait_times(runtime: Runtime, ctx: RequestContext, month: str | None, *, key: str | None,
                   detail: bool = False) -> SkrReport:
    """The month's report; raises the FhirErrors a client is answered with."""
    check_reporting(ctx, "$skr-wait-times")
    pseudonymizer = reporting_pseudonymizer(key)
    period = month_period(month, region_zone(runtime))
    with runtime.work(ctx, write=False) as work:
        referrals = _referrals(work, period)
    return SkrReport(month, period, wait_cases(referrals, period, pseudonymizer), detail)


# -- gathering, in the store -----------------------------------------------------------


def _intake_receipt() -> Coalesce:
    intake = (TokenIs("code", ("intake",), system=CS + "evi-task-type"),)
    return Coalesce((Referrers("Task", "focus", Value("authored-on", "low"), intake), Value("authored", "low")))


def _person() -> Coalesce:
    return Coalesce((Follow("subject", "Patient", Value("identifier", "code", system=PERSONNUMMER)),
                     Follow("subject", "Patient", Value("identifier", "code", system=SAMORDNINGSNUMMER))))


def _referrals(work: Work, period: Period) -> dict[str, _Referral]:
    """The referrals at BUP as the month's last day saw them: milestones dated after it
    have not happened yet (the referral is at BUP all the same, from its arrival). These
    two scans cover the history; everything else is read for the month's referrals only."""
    found: dict[str, _Referral] = {}
    days: dict[str, date] = {}  # local day per stored instant: milestone days repeat
    for code in MILESTONES:  # one scan per type: no type column, no OR of five codes
        for referral, day, _n in tabulate(
                work, "Encounter", [("type", f"{MILESTONE}|{code}"), ("status:not", "entered-in-error,cancelled")],
                Value("based-on", "target", target_type="ServiceRequest"), Value("date", "low")):
            if referral is None or day is None:
                continue
            r = found.setdefault(referral, _Referral())
            moment = days.get(day) or days.setdefault(day, local_day(day, period.zone))
            if moment <= period.end and (code not in r.milestones or moment < r.milestones[code]):
                r.milestones[code] = moment
    for referral, _n in tabulate(work, "Appointment", _VISITS, Value("based-on", "target", target_type="ServiceRequest")):
        if referral is not None:
            found.setdefault(referral, _Referral())
    # only the referrals the month can count are described (read by id): the others
    # finished every interval they started before the month began
    found = {ref: r for ref, r in found.items() if _in_month(r, period)}
    _describe(work, period, found)
    return found


def _in_month(r: _Referral, period: Period) -> bool:
    """Whether one of the referral's intervals may end in the month or still wait at its
    end, judged by its milestones alone (its arrival is not known yet: a referral without
    a first assessment may still wait for one)."""
    m = r.milestones
    for decided, ended in (((), "first-assessment"), (("investigation-decision",), "investigation-start"),
                           (("treatment-decision",), "treatment-start")):
        end = m.get(ended)
        if end is not None and end >= period.start:
            return True
        if end is None and (not decided or any(d in m for d in decided)):
            return True
    return False


def _describe(work: Work, period: Period, found: dict[str, _Referral]) -> None:
    """Receipt, clinic asked for and child of each referral: tabulated by id in chunks."""
    ids = sorted(ref.partition("/")[2] for ref in found)
    deviating: list[str] = []
    for start in range(0, len(ids), MAX_VALUES):
        chunk = ids[start:start + MAX_VALUES]
        for rid, received, provider, performer, person, deviation, _n in tabulate(
                work, "ServiceRequest", [("_id", ",".join(chunk))], Id(), _intake_receipt(), _provider(),
                Value("performer", "target", target_type="Organization"), _person(), Value("wait-deviation", "code")):
            r = found[f"ServiceRequest/{rid}"]
            r.arrival = local_day(received, period.zone)
            r.unit, r.asked = provider, performer
            r.person = person
            if deviation is not None:
                deviating.append(rid)
    _visit_units(work, found)
    for version in work.uow.load("ServiceRequest", deviating):
        found[f"ServiceRequest/{version.id}"].deviations = _deviations(orjson.loads(version.body), period)
    codes = organization_codes(work, {r.unit for r in found.values()})
    for r in found.values():
        r.unit = codes[r.unit]
    for ref in [ref for ref, r in found.items() if r.arrival is None]:
        del found[ref]  # deleted, or not a referral this server received


def _provider() -> Referrers:
    """The smallest serviceProvider of the referral's milestone Encounters."""
    return Referrers("Encounter", "based-on", Value("service-provider", "target", target_type="Organization"),
                     (TokenIs("type", MILESTONES, system=MILESTONE),))


def _visit_units(work: Work, found: dict[str, _Referral]) -> None:
    """The first visit's unit for the referrals without a milestone provider (few: they
    wait for their first assessment), else the clinic they asked for."""
    waiting = sorted(ref for ref, r in found.items() if r.unit is None)
    units: dict[str, str] = {}
    for start in range(0, len(waiting), _REFERENCES):
        criteria = [*_VISITS, ("based-on", ",".join(waiting[start:start + _REFERENCES]))]
        for referral, org, _n in tabulate(work, "Appointment", criteria, Value("based-on", "target"),
                                          Follow("actor", "HealthcareService", Value("organization", "target"))):
            if referral and org and (referral not in units or org < units[referral]):
                units[referral] = org
    for ref in waiting:
        r = found[ref]
        r.unit = units.get(ref) or r.asked


def _deviations(resource: dict, period: Period) -> list[Deviation]:
    out = []
    for ext in resource.get("extension") or ():
        if not isinstance(ext, dict) or ext.get("url") != EXT_DEVIATION:
            continue
        parts = {e.get("url"): e for e in ext.get("extension") or () if isinstance(e, dict)}
        kind = ((parts.get("type") or {}).get("valueCoding") or {}).get("code")
        interval = (parts.get("interval") or {}).get("valueCode")
        span = (parts.get("period") or {}).get("valuePeriod") or {}
        if kind and interval:
            out.append(Deviation(kind, interval, _day(span.get("start"), period), _day(span.get("end"), period)))
    return out


def _day(value: object, period: Period) -> date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    if len(value) == 10:
        return date.fromisoformat(value)
    return local_day(value, period.zone)


# -- the intervals, per referral -------------------------------------------------------


def _intervals(r: _Referral) -> list[tuple[str, date, date | None]]:
    m = r.milestones
    out: list[tuple[str, date, date | None]] = [("first-assessment", r.arrival, m.get("first-assessment"))]
    if "investigation-decision" in m or "investigation-start" in m:
        start = m.get("first-assessment") or m.get("investigation-decision") or m["investigation-start"]
        out.append(("investigation", start, m.get("investigation-start")))
    if "treatment-decision" in m or "treatment-start" in m:
        start = (m.get("investigation-start") or m.get("first-assessment") or m.get("treatment-decision")
                 or m["treatment-start"])
        out.append(("treatment", start, m.get("treatment-start")))
    return out


def _days_taken(deviations: list[Deviation], start: date, end: date) -> int:
    """Days of ``[start, end]`` the deviations cover, each day once however many cover it
    (a deviation without a start runs from the interval's start, without an end to its end)."""
    spans = sorted((max(d.start or start, start), min(d.end or end, end)) for d in deviations)
    taken, reached = 0, start
    for low, high in spans:
        low = max(low, reached)
        if high > low:
            taken += (high - low).days
            reached = high
    return taken


def wait_cases(referrals: dict[str, _Referral], period: Period, pseudonymizer: Pseudonymizer) -> list[Case]:
    cases = []
    last = period.end
    for ref, r in sorted(referrals.items()):
        pseudonym = None  # an HMAC per referral the month counts, not per referral looked at
        for interval, start, end in _intervals(r):
            if end is not None and period.start <= end <= last:
                view = "completed"
            elif start <= last and (end is None or end > last):
                view = "waiting"
            else:
                continue
            until = end if view == "completed" else last
            mine = [d for d in r.deviations if d.interval == interval]
            taken = _days_taken(mine, start, until)
            days = max(0, (until - start).days - taken)
            pseudonym = pseudonym or pseudonymizer.pseudonym(r.person or ref)
            cases.append(Case(ref, pseudonym, r.unit or "none", interval, view, r.arrival, start, end, days, taken,
                              tuple(sorted({d.type for d in mine}))))
    return cases
