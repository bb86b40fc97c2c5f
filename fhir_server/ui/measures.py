"""The measures page (domain.md §8 measures as charts per week or month) and the SKR
month table with its CSV download.

The numbers come from the reporting engine through two narrow functions the app hands
the dashboard (``Dashboard.reports``): ``evaluate(runtime, ctx, measure_id, start, end)``
→ the MeasureReport (FHIR JSON) that ``Measure/{id}/$evaluate-measure`` answers, and
``skr_csv(runtime, ctx, month)`` → the CSV of ``$skr-wait-times``. The page reads
MeasureReports only as FHIR defines them (group population counts, measureScore,
stratifier strata), so it does not depend on how reporting computes them. The mobile
teams' places in use are counted here through engine searches (active EpisodeOfCare
plus accepted transfers per team, against its ``evi-capacity``).
"""

from __future__ import annotations

import csv
import io
import re
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Callable
from zoneinfo import ZoneInfo

from starlette.responses import Response

from fhir_server.engine import RequestContext, Runtime, Work, plan_search, search
from fhir_server.errors import BadRequest, Unavailable
from fhir_server.reporting import evaluate_measure, measure_series, skr_csv as skr_csv_text, skr_wait_times
from fhir_server.settings import Settings
from fhir_server.ui.charts import Chart, Point, periods, svg
from fhir_server.ui.labels import CS, EXT, Labels
from fhir_server.ui.reads import search_json
from fhir_server.ui.routes import View

__all__ = ["CACHE_SECONDS", "RecentReports", "Reports", "reporting_engine", "measure_charts", "measures_page", "skr_page", "skr_csv", "places_chart", "score", "population"]

_ZONE = ZoneInfo("Europe/Stockholm")
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_DEFAULT_CAPACITY = 10
#: seconds a measure report is reused by the charts page
CACHE_SECONDS = 300


@dataclass(frozen=True)
class Reports:
    """What reporting offers the dashboard (see the module doc)."""

    evaluate: Callable[[Runtime, RequestContext, str, date, date], dict]
    skr_csv: Callable[[Runtime, RequestContext, str], str]
    #: ``series(runtime, ctx, measure_id, [(start, end), ...])`` -> a summary report per
    #: period, in one pass (``reporting.measure_series``); None: one ``evaluate`` per period
    series: Callable[[Runtime, RequestContext, str, list[tuple[date, date]]], list[dict]] | None = None


class RecentReports:
    """MeasureReports evaluated in the last ``seconds``, per measure, period and kind of
    caller (thread-safe, bounded). A chart page evaluates five measures for twelve periods:
    on a large store that takes seconds (benchmarks/ui.py), and people reload and switch
    between weeks and months. A report is an aggregate without patient data, so serving a
    recent one repeats no access to anyone's record; the page says how old it may be."""

    def __init__(self, seconds: float = CACHE_SECONDS, entries: int = 4096):
        self.seconds = seconds
        self.entries = entries
        self._found: dict[tuple, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple, make: Callable[[], Any]) -> Any:
        now = time.monotonic()
        with self._lock:
            found = self._found.get(key)
        if found is not None and now - found[0] < self.seconds:
            return found[1]
        report = make()
        with self._lock:
            if len(self._found) >= self.entries:
                self._found = {k: v for k, v in self._found.items() if now - v[0] < self.seconds}
                if len(self._found) >= self.entries:
                    self._found.clear()
            self._found[key] = (now, report)
        return report


def _caller_key(ctx: RequestContext) -> tuple:
    caller = ctx.caller
    return ("open",) if caller is None else (caller.role, caller.organization or "")


def reporting_engine(settings: Settings) -> Reports:
    """The reporting package's functions, with the region's pseudonym key (they refuse
    without one, as the operations do); measure reports kept ``CACHE_SECONDS``."""
    recent = RecentReports()

    def evaluate(runtime: Runtime, ctx: RequestContext, measure_id: str, start: date, end: date) -> dict:
        return recent.get((measure_id, start, end, _caller_key(ctx)), lambda: evaluate_measure(
            runtime, ctx, measure_id, period_start=start.isoformat(), period_end=end.isoformat(),
            key=settings.pseudonym_key))

    def skr(runtime: Runtime, ctx: RequestContext, month: str) -> str:
        return skr_csv_text(skr_wait_times(runtime, ctx, month, key=settings.pseudonym_key))

    def series(runtime: Runtime, ctx: RequestContext, measure_id: str, ranges: list[tuple[date, date]]) -> list[dict]:
        # a list under one key: the page asks for the same row of periods each time
        return recent.get((measure_id, tuple(ranges), _caller_key(ctx)), lambda: measure_series(
            runtime, ctx, measure_id, ranges, key=settings.pseudonym_key))

    return Reports(evaluate, skr, series)


# ---- reading MeasureReports ---------------------------------------------------------------


def _code(concept: object) -> str:
    if not isinstance(concept, dict):
        return ""
    for coding in concept.get("coding") or ():
        if coding.get("code"):
            return coding["code"]
    return concept.get("text", "")


def population(report: dict, code: str = "initial-population") -> int:
    for group in report.get("group") or ():
        for pop in group.get("population") or ():
            if _code(pop.get("code")) == code:
                return int(pop.get("count") or 0)
    return 0


def score(report: dict) -> float | None:
    for group in report.get("group") or ():
        value = (group.get("measureScore") or {}).get("value")
        if isinstance(value, (int, float)):
            return float(value)
    return None


def strata(report: dict, stratifier: str) -> dict[str, int]:
    """``{stratum value: initial-population count}`` of the stratifier named ``stratifier``."""
    found: dict[str, int] = {}
    for group in report.get("group") or ():
        for strat in group.get("stratifier") or ():
            if stratifier not in {_code(c) for c in strat.get("code") or ()}:
                continue
            for stratum in strat.get("stratum") or ():
                count = sum(int(p.get("count") or 0) for p in stratum.get("population") or ()
                            if _code(p.get("code")) == "initial-population")
                found[_code(stratum.get("value")) or "none"] = count
    return found


# ---- the charts ----------------------------------------------------------------------------


def _percent(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 1)


def measure_charts(runtime: Runtime, ctx: RequestContext, reports: Reports, kind: str, until: date,
                   labels: Labels) -> list[Chart]:
    shown = periods(kind, until)
    word = "vecka" if kind == "vecka" else "månad"
    ranges = [(p.start, p.end) for p in shown]

    def series(measure: str, value) -> list[Point]:
        return [Point(p.label, value(r)) for p, r in zip(shown, _reports_of(runtime, ctx, reports, measure, ranges))]

    # the whole range first, then its periods: one pass for both (the reports' periods may overlap)
    whole, *per_period = _reports_of(runtime, ctx, reports, "evi-contacts", [(shown[0].start, shown[-1].end), *ranges])
    channels = sorted(strata(whole, "channel").items(), key=lambda kv: (-kv[1], kv[0]))
    return [
        Chart("kontakter", f"Kontakter per {word}", "antal",
              [Point(p.label, population(r)) for p, r in zip(shown, per_period)]),
        Chart("kanaler", f"Kontakter per kanal, {shown[0].label} – {shown[-1].label}", "antal",
              [Point(labels.channel(code), n) for code, n in channels], kind="hbar"),
        Chart("inom-tidsgrans", f"Andel bedömda inom tidsgränsen, per {word}", "procent",
              series("evi-assessed-within-deadline", lambda r: _percent(score(r))), kind="line"),
        Chart("forsta-besok-30", f"Andel första besök inom 30 dagar (vårdgarantin), per {word}", "procent",
              series("evi-first-visit-within-30-days", lambda r: _percent(score(r))), kind="line"),
        Chart("dagar-forsta-besok", f"Median dagar från remiss till första besök, per {word}", "dagar",
              series("evi-days-to-first-visit", score), kind="line"),
        Chart("utan-tider", f"Enheter utan bokningsbara första besök de följande tre veckorna, per {word}",
              "antal", series("evi-units-without-slots", population)),
    ]


def _reports_of(runtime: Runtime, ctx: RequestContext, reports: Reports, measure: str,
                ranges: list[tuple[date, date]]) -> list[dict]:
    if reports.series is not None:
        return reports.series(runtime, ctx, measure, ranges)
    return [reports.evaluate(runtime, ctx, measure, start, end) for start, end in ranges]


def _count(work: Work, resource_type: str, params: list[tuple[str, str]]) -> int:
    query = [*params, ("_summary", "count")]
    return search(work, plan_search(work, resource_type, query), query).total or 0


def _capacity(team: dict) -> int:
    for ext in team.get("extension") or ():
        if ext.get("url") == EXT + "evi-capacity" and isinstance(ext.get("valueInteger"), int):
            return ext["valueInteger"]
    return _DEFAULT_CAPACITY


def places_chart(runtime: Runtime, ctx: RequestContext) -> tuple[Chart, list[tuple[str, int, int]]]:
    """Places in use per mobile team now (active episodes plus accepted transfers, domain.md §2
    "Care transfer"), and (team, in use, capacity) for the table."""
    rows = []
    with runtime.work(ctx, write=False) as work:
        teams = search_json(work, "Organization", [("type", CS + "evi-organization-type|bup-mobile-team"),
                                                   ("_count", "50")])
        for team in sorted(teams, key=lambda t: t.get("name") or t["id"]):
            ref = f"Organization/{team['id']}"
            used = _count(work, "EpisodeOfCare", [("organization", ref), ("status", "active")])
            used += _count(work, "Task", [("code", CS + "evi-task-type|transfer-care-responsibility"),
                                          ("status", "accepted"), ("owner", ref)])
            rows.append((team.get("name") or team["id"], used, _capacity(team)))
    chart = Chart("platser", "Mobila teamets platser i bruk just nu", "antal",
                  [Point(name, used) for name, used, _ in rows], kind="hbar")
    return chart, rows


# ---- the pages -----------------------------------------------------------------------------


def _today() -> date:
    return datetime.now(_ZONE).date()


def _until(raw: str | None) -> date:
    if not raw:
        return _today()
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"till måste vara ett datum (ÅÅÅÅ-MM-DD), inte {raw!r}", expression="till") from None


def _reports(view: View) -> Reports:
    reports = view.dashboard.reports
    if reports is None:
        raise Unavailable("Måtten kan inte beräknas på den här servern: rapportmotorn saknas.")
    return reports


def measures_page(view: View) -> Response:
    query = view.query
    kind = query.get("per", "vecka")
    if kind not in ("vecka", "manad"):
        raise BadRequest(f"per måste vara vecka eller manad, inte {kind!r}", expression="per")
    until = _until(query.get("till"))
    charts = measure_charts(view.runtime, view.ctx, _reports(view), kind, until, view.dashboard.labels)
    places, place_rows = places_chart(view.runtime, view.ctx)
    return view.render("measures.html", "Mått", "measures", charts=charts, svg=svg, kind=kind,
                       until=until.isoformat(), places=places, place_rows=place_rows,
                       cache_minutes=CACHE_SECONDS // 60)


def _month(raw: str | None) -> str:
    if not raw:
        today = _today()
        first = today.replace(day=1)
        return f"{first.year - (first.month == 1)}-{(first.month - 2) % 12 + 1:02d}"  # last month
    if not _MONTH.match(raw):
        raise BadRequest(f"manad måste vara ÅÅÅÅ-MM, inte {raw!r}", expression="manad")
    return raw


#: the CSV's columns and codes as the page shows them (the download keeps the CSV as it is)
SKR_WORDS = {
    "record": "Rad", "month": "Månad", "unit": "Enhet (HSA-id)", "interval": "Intervall", "view": "Vy",
    "total": "Totalt", "excluding-pvv": "Exkl. PvV", "within-30-days": "Inom 30 dagar",
    "days-31-or-more": "31 dagar eller mer", "pseudonym": "Pseudonym", "arrival": "Ankomst", "start": "Start",
    "end": "Slut", "days": "Dagar", "deviation_days": "Avvikelsedagar", "deviations": "Avvikelser",
    "first-assessment": "Första bedömning", "investigation": "Fördjupad utredning", "treatment": "Behandling",
    "completed": "Genomförda", "waiting": "Väntande", "summary": "Summering", "detail": "Detalj",
}


def skr_page(view: View) -> Response:
    month = _month(view.query.get("manad"))
    text = _reports(view).skr_csv(view.runtime, view.ctx, month)
    rows = list(csv.reader(io.StringIO(text)))
    header, body = (rows[0], rows[1:]) if rows else ([], [])
    body = [[SKR_WORDS.get(cell, cell) for cell in row] for row in body]
    return view.render("skr.html", f"SKR väntetider {month}", "skr", month=month,
                       header=[SKR_WORDS.get(h, h) for h in header], rows=body)


def skr_csv(view: View) -> Response:
    month = _month(view.query.get("manad"))
    text = _reports(view).skr_csv(view.runtime, view.ctx, month)
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="skr-vantetider-{month}.csv"',
                             "Cache-Control": "no-store"})
