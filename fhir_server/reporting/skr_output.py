"""The SKR report as FHIR (a MeasureReport of Measure evi-skr-wait-times, the default)
and as CSV (the extract regions send to SKR). Both carry the same counts; ``detail``
adds one line per referral and interval under the child's pseudonym (never a
personnummer, a name or a server id of the child).

CSV columns: ``record`` (``summary`` or ``detail``), ``month``, ``unit`` (HSA-id),
``interval``, ``view``, then for summary rows the four counts, for detail rows the
pseudonym, the dates (arrival, start, end; ``YYYY-MM-DD``), the days counted, the days
deviations took out and the deviation types (``;``-separated).
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

from fhir_server.model import format_instant
from fhir_server.reporting.skr import COUNTS, INTERVALS, VIEWS, Case, SkrReport

__all__ = ["CSV_COLUMNS", "skr_csv", "skr_measure_report"]

CS = "https://evi-fhir.org/fhir/CodeSystem/"
SD = "https://evi-fhir.org/fhir/StructureDefinition/"
POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
HSA = "urn:oid:1.2.752.29.4.19"
#: count -> the population code the Measure gives it
_POPULATIONS = {"total": (POPULATION, "initial-population"), "excluding-pvv": (POPULATION, "measure-population"),
                "within-30-days": (POPULATION, "numerator"), "days-31-or-more": (CS + "evi-wait-count", "days-31-or-more")}
CSV_COLUMNS = ("record", "month", "unit", "interval", "view", *COUNTS, "pseudonym", "arrival", "start", "end",
               "days", "deviation_days", "deviations")


def skr_csv(report: SkrReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    blank = [""] * 7
    for (unit, interval, view), counts in report.counts().items():
        writer.writerow(["summary", report.month, unit, interval, view, *(counts[c] for c in COUNTS), *blank])
    if report.detail:
        for case in _sorted(report.cases):
            writer.writerow(["detail", report.month, case.unit, case.interval, case.view, "", "", "", "",
                             case.pseudonym, case.arrival.isoformat(), case.start.isoformat(),
                             case.end.isoformat() if case.end else "", case.days, case.deviation_days,
                             ";".join(case.deviations)])
    return out.getvalue()


def _sorted(cases: list[Case]) -> list[Case]:
    return sorted(cases, key=lambda c: (c.unit, INTERVALS.index(c.interval), VIEWS.index(c.view), c.pseudonym,
                                        c.start))


def _populations(counts: dict[str, int]) -> list[dict]:
    return [{"code": {"coding": [{"system": _POPULATIONS[c][0], "code": _POPULATIONS[c][1]}], "text": c},
             "count": counts[c]} for c in COUNTS]


def _add(target: dict, counts: dict[str, int]) -> None:
    for c in COUNTS:
        target[c] = target.get(c, 0) + counts[c]


def _group(interval: str, rows: dict) -> dict:
    total: dict[str, int] = dict.fromkeys(COUNTS, 0)
    by_view: dict[str, dict] = {}
    by_unit: dict[str, dict] = {}
    strata_uv = []
    for (unit, iv, view), counts in rows.items():
        if iv != interval:
            continue
        _add(total, counts)
        _add(by_view.setdefault(view, {}), counts)
        _add(by_unit.setdefault(unit, {}), counts)
        strata_uv.append({"component": [
            {"code": {"text": "unit"}, "value": _unit_value(unit)},
            {"code": {"text": "view"}, "value": _view_value(view)}], "population": _populations(counts)})
    return {
        "code": {"coding": [{"system": CS + "evi-wait-interval", "code": interval}]},
        "population": _populations(total),
        "stratifier": [
            {"code": [{"text": "view"}], "stratum": [{"value": _view_value(v), "population": _populations(c)}
                                                      for v, c in sorted(by_view.items())]},
            {"code": [{"text": "unit"}], "stratum": [{"value": _unit_value(u), "population": _populations(c)}
                                                      for u, c in sorted(by_unit.items())]},
            {"code": [{"text": "unit-view"}], "stratum": strata_uv},
        ],
    }


def _view_value(view: str) -> dict:
    return {"coding": [{"system": CS + "evi-wait-view", "code": view}], "text": view}


def _unit_value(unit: str) -> dict:
    if unit == "none" or "/" in unit:
        return {"text": unit}
    return {"coding": [{"system": HSA, "code": unit}], "text": unit}


def _detail_entry(case: Case) -> dict:
    parts = [("interval", "valueCode", case.interval), ("view", "valueCode", case.view), ("unit", "valueString", case.unit),
             ("arrival", "valueDate", case.arrival.isoformat()), ("start", "valueDate", case.start.isoformat())]
    if case.end is not None:
        parts.append(("end", "valueDate", case.end.isoformat()))
    parts += [("days", "valueInteger", case.days), ("deviationDays", "valueInteger", case.deviation_days)]
    parts += [("deviation", "valueCoding", {"system": CS + "evi-wait-deviation-type", "code": d})
              for d in case.deviations]
    return {"extension": [{"url": SD + "evi-wait-detail",
                           "extension": [{"url": url, kind: value} for url, kind, value in parts]}],
            "item": {"identifier": {"system": "urn:evi-fhir:pseudonym", "value": case.pseudonym},
                     "display": f"pseudonym {case.pseudonym[:12]}"}}


def skr_measure_report(report: SkrReport) -> dict:
    rows = report.counts()
    measure_report = {
        "resourceType": "MeasureReport",
        "status": "complete",
        "type": "summary",
        "measure": "https://evi-fhir.org/fhir/Measure/evi-skr-wait-times",
        "date": format_instant(datetime.now(timezone.utc)),
        "period": {"start": report.period.start.isoformat(), "end": report.period.end.isoformat()},
        "group": [_group(interval, rows) for interval in INTERVALS],
    }
    if report.detail:
        measure_report["contained"] = [{
            "resourceType": "List", "id": "detail", "status": "current", "mode": "snapshot",
            "title": f"SKR wait times {report.month}: one entry per referral and interval",
            "entry": [_detail_entry(c) for c in _sorted(report.cases)]}]
        measure_report["evaluatedResource"] = [{"reference": "#detail"}]
    return measure_report
