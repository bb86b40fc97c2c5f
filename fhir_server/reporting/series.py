"""Measures for a row of periods (the dashboard's weeks or months) in one pass each:
one tabulation over the periods' whole range with the date that places a resource in a
period as a column, then Python puts each row in the periods whose search it matches.

    measure_series(runtime, ctx, "evi-contacts", [(date(2026, 3, 2), date(2026, 3, 8)), ...], key=key)
        -> one summary MeasureReport per period

Evaluating each period on its own ran every tabulation once per period (61 evaluations
for a chart page, each a few index probes per counted resource); here each resource is
probed once whatever the number of periods. The reports carry what the charts read: the
populations and the score, and for ``evi-contacts`` its ``channel`` stratifier; the
other strata come from ``$evaluate-measure``. Periods may overlap (the range as a whole
plus its weeks): a resource counts in each period it falls in.

A row falls in a period as the period's search criteria (``ge`` first moment, ``lt`` the
moment after, ``search.params.date``) would match its stored ``low`` and ``high``, so the
numbers are those of ``evaluate_measure`` for each period (tests/integration/reporting).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Callable

from fhir_server.engine import RequestContext, Runtime, Work
from fhir_server.errors import BadRequest, NotFound
from fhir_server.reporting.access import check_reporting, reporting_pseudonymizer
from fhir_server.reporting.evaluate import measure_report, region_zone
from fhir_server.reporting.measures import (
    CS,
    GUARANTEE_DAYS,
    SLOT_HORIZON_DAYS,
    Result,
    Stratifier,
    first_visit_column,
    intake_criteria,
)
from fhir_server.reporting.period import Period, parse_period
from fhir_server.reporting.strata import NONE
from fhir_server.reporting.tables import tabulate
from fhir_server.storage.tabulation import Follow, Id, NotAfter, Value

__all__ = ["SERIES", "measure_series"]

#: periods one call may ask for (a chart shows twelve, plus the whole range)
MAX_PERIODS = 60


@dataclass(frozen=True)
class _Bounds:
    """A period's search bounds as the stored fixed-width UTC instants compare."""

    lower_low: str
    lower_high: str  # the last microsecond of the second ``ge`` names
    upper_low: str

    def matches(self, low: str | None, high: str | None) -> bool:
        """Mirror of ``ge{lower}`` and ``lt{upper}`` on one stored range."""
        if low is None or high is None:
            return False
        ge = high > self.lower_high or (low >= self.lower_low and high <= self.lower_high)
        return ge and low < self.upper_low


def _utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _bounds(period: Period) -> _Bounds:
    lower = datetime.fromisoformat(period.lower)
    return _Bounds(_utc(lower), _utc(lower + timedelta(microseconds=999_999)),
                   _utc(datetime.fromisoformat(period.upper)))


class _Row:
    """The periods a (low, high) pair falls in, remembered: rows repeat their dates."""

    def __init__(self, periods: list[Period]):
        self.periods = periods
        self._bounds = [_bounds(p) for p in periods]
        self._seen: dict[tuple, tuple[int, ...]] = {}

    def of(self, low: str | None, high: str | None) -> tuple[int, ...]:
        key = (low, high)
        found = self._seen.get(key)
        if found is None:
            found = self._seen[key] = tuple(i for i, b in enumerate(self._bounds) if b.matches(low, high))
        return found


def _cover(periods: list[Period]) -> Period:
    return Period(min(p.start for p in periods), max(p.end for p in periods), periods[0].zone)


def _proportion(numerator: int, total: int) -> Result:
    populations = {"initial-population": total, "denominator": total, "numerator": numerator}
    return Result(populations, score=numerator / total if total else None, score_unit="proportion")


# -- the measures, per period --------------------------------------------------------


def contacts(work: Work, periods: list[Period]) -> list[Result]:
    rows = _Row(periods)
    totals = [0] * len(periods)
    channels = [Stratifier("channel", system=CS + "evi-contact-channel") for _ in periods]
    for low, high, channel, n in tabulate(work, "Task", intake_criteria(_cover(periods)), Value("authored-on", "low"),
                                          Value("authored-on", "high"),
                                          Follow("focus", "ServiceRequest", Value("contact-channel", "code"))):
        for i in rows.of(low, high):
            totals[i] += n
            channels[i].add(channel or NONE, "initial-population", n)
    return [Result({"initial-population": t}, [s]) for t, s in zip(totals, channels)]


def assessed_within_deadline(work: Work, periods: list[Period]) -> list[Result]:
    rows = _Row(periods)
    end, due = Value("execution-end", "low"), Value("due", "high")
    totals, hits = [0] * len(periods), [0] * len(periods)
    for low, high, status, triaged, has_end, end_on_time, modified_on_time, n in tabulate(
            work, "Task", intake_criteria(_cover(periods)), Value("authored-on", "low"), Value("authored-on", "high"),
            Value("status", "code"), NotAfter(Value("triage-outcome", "code"), Value("triage-outcome", "code")),
            NotAfter(end, end), NotAfter(end, due), NotAfter(Value("modified", "low"), due)):
        on_time = end_on_time if has_end else modified_on_time
        hit = status == "completed" and triaged and on_time
        for i in rows.of(low, high):
            totals[i] += n
            hits[i] += n if hit else 0
    return [_proportion(h, t) for h, t in zip(hits, totals)]


def _first_visits(work: Work, periods: list[Period]) -> list[list[int]]:
    """Per period, the days from receipt to first visit of its referrals that got one
    (as ``measures._first_visits``: one per distinct referral, receipt and visit)."""
    rows = _Row(periods)
    found: list[set[tuple]] = [set() for _ in periods]
    for referral, low, high, visit, _n in tabulate(work, "Task", intake_criteria(_cover(periods)), Value("focus", "target"),
                                                   Value("authored-on", "low"), Value("authored-on", "high"),
                                                   first_visit_column()):
        if visit is None or low is None:
            continue
        for i in rows.of(low, high):
            found[i].add((referral or "", low, visit))
    return [[(periods[0].day(visit) - periods[0].day(low)).days for _, low, visit in sorted(f)] for f in found]


def first_visit_within_30_days(work: Work, periods: list[Period]) -> list[Result]:
    return [_proportion(sum(1 for d in days if d <= GUARANTEE_DAYS), len(days))
            for days in _first_visits(work, periods)]


def days_to_first_visit(work: Work, periods: list[Period]) -> list[Result]:
    out = []
    for days in _first_visits(work, periods):
        n = len(days)
        out.append(Result({"initial-population": n, "measure-population": n, "measure-observation": n},
                          score=float(statistics.median(days)) if days else None, score_unit="days"))
    return out


def units_without_slots(work: Work, periods: list[Period]) -> list[Result]:
    units = {f"Organization/{i}" for i, _ in tabulate(work, "Organization", [
        ("type", f"{CS}evi-organization-type|primary-care,{CS}evi-organization-type|bup-clinic"),
        ("active:not", "false")], Id())}
    ahead = [Period(p.end + timedelta(days=1), p.end + timedelta(days=SLOT_HORIZON_DAYS), p.zone) for p in periods]
    rows = _Row(ahead)
    with_slots: list[set[str]] = [set() for _ in periods]
    for low, high, org, _n in tabulate(
            work, "Slot", [("status", "free"), *_cover(ahead).criteria("start")], Value("start", "low"),
            Value("start", "high"),
            Follow("schedule", "Schedule", Follow("actor", "HealthcareService", Value("organization", "target")))):
        for i in rows.of(low, high):
            with_slots[i].add(org)
    return [Result({"initial-population": len(units - found)}) for found in with_slots]


SERIES: dict[str, Callable[[Work, list[Period]], list[Result]]] = {
    "evi-contacts": contacts,
    "evi-assessed-within-deadline": assessed_within_deadline,
    "evi-first-visit-within-30-days": first_visit_within_30_days,
    "evi-days-to-first-visit": days_to_first_visit,
    "evi-units-without-slots": units_without_slots,
}


def measure_series(runtime: Runtime, ctx: RequestContext, measure_id: str, periods: list[tuple[date, date]], *,
                   key: str | None) -> list[dict]:
    """One summary MeasureReport per ``(first day, last day)``; raises the FhirErrors a
    client is answered with (as ``evaluate_measure``)."""
    check_reporting(ctx, "$evaluate-measure")
    reporting_pseudonymizer(key)
    if measure_id not in SERIES:
        raise NotFound(f"Measure/{measure_id} has no series on this server ({', '.join(SERIES)})")
    if not periods or len(periods) > MAX_PERIODS:
        raise BadRequest(f"A series has 1 to {MAX_PERIODS} periods, not {len(periods)}")
    zone = region_zone(runtime)
    parsed = [parse_period(start.isoformat(), end.isoformat(), zone) for start, end in periods]
    with runtime.work(ctx, write=False) as work:
        results = SERIES[measure_id](work, parsed)
    return [measure_report(measure_id, p, r, "summary") for p, r in zip(parsed, results)]
