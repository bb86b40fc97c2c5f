"""``Measure/{id}/$evaluate-measure`` (domain.md §8): one of the guide's measures for a
period, as a MeasureReport (FHIR R4 Measure-evaluate-measure; ``reportType`` summary or
subject-list).

    evaluate_measure(runtime, ctx, "evi-contacts", period_start="2026-03-01",
                     period_end="2026-03-31", report_type="summary", key=settings.pseudonym_key)

A subject-list report carries, per population, a contained List of the resources it
counts (``population.subjectResults``): server references (``Task/{id}``,
``ServiceRequest/{id}``, ``CarePlan/{id}``, ``Organization/{id}``), never names or
personnummer. They are the same for every role; the ``reporting`` role cannot read them
through the API, they only let it tell subjects apart and follow them across reports.
"""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from fhir_server.engine import RequestContext, Runtime
from fhir_server.errors import BadRequest, NotFound
from fhir_server.model import format_instant
from fhir_server.reporting.access import check_reporting, reporting_pseudonymizer
from fhir_server.reporting.measures import MEASURES, Result
from fhir_server.reporting.period import Period, parse_period
from fhir_server.reporting.strata import municipality_name

__all__ = ["MEASURE_BASE", "REPORT_TYPES", "evaluate_measure", "measure_report", "region_zone"]

MEASURE_BASE = "https://evi-fhir.org/fhir/Measure/"
POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
REPORT_TYPES = ("summary", "subject-list")
_KOMMUNKOD = "urn:oid:1.2.752.129.2.2.1.17"


def region_zone(runtime: Runtime) -> ZoneInfo:
    region = runtime.services.get("region")
    return region.zone if region is not None else ZoneInfo("Europe/Stockholm")


def evaluate_measure(runtime: Runtime, ctx: RequestContext, measure_id: str, *, period_start: str | None,
                     period_end: str | None, report_type: str | None = None, key: str | None = None) -> dict:
    """The MeasureReport of one measure; raises the FhirErrors a client is answered with."""
    check_reporting(ctx, "$evaluate-measure")
    reporting_pseudonymizer(key)
    if measure_id not in MEASURES:
        known = ", ".join(MEASURES)
        raise NotFound(f"Measure/{measure_id} is not a measure this server evaluates ({known})")
    kind = report_type or "summary"
    if kind not in REPORT_TYPES:
        raise BadRequest(f"reportType must be summary or subject-list, got {kind!r}", expression="reportType")
    period = parse_period(period_start, period_end, region_zone(runtime))
    with runtime.work(ctx, write=False) as work:
        result = MEASURES[measure_id](work, period, kind == "subject-list")
    return measure_report(measure_id, period, result, kind)


def _population(code: str, count: int, subjects: list[str] | None, contained: list[dict]) -> dict:
    population = {"code": {"coding": [{"system": POPULATION, "code": code}]}, "count": count}
    if subjects is not None:
        list_id = f"{code}-subjects"
        contained.append({"resourceType": "List", "id": list_id, "status": "current", "mode": "snapshot",
                          "title": f"Subjects of {code}",
                          "entry": [{"item": {"reference": ref}} for ref in subjects]})
        population["subjectResults"] = {"reference": f"#{list_id}"}
    return population


def _stratum_value(value: str, system: str | None) -> dict:
    if system is None or value in ("none", "unknown") or "/" in value:
        return {"text": value}
    coding = {"system": system, "code": value}
    if system == _KOMMUNKOD and (name := municipality_name(value)):
        coding["display"] = name
    elif system == _KOMMUNKOD:
        return {"text": value}  # a district that names no municipality, as written
    return {"coding": [coding], "text": value}


def _score(result: Result) -> dict | None:
    if result.score is None:
        return None
    if result.score_unit == "days":
        return {"value": result.score, "unit": "d", "system": "http://unitsofmeasure.org", "code": "d"}
    return {"value": round(result.score, 6)}


def measure_report(measure_id: str, period: Period, result: Result, report_type: str) -> dict:
    contained: list[dict] = []
    listing = report_type == "subject-list"
    group: dict = {"population": [
        _population(code, n, result.subjects.get(code, []) if listing else None, contained)
        for code, n in result.populations.items()]}
    if (score := _score(result)) is not None:
        group["measureScore"] = score
    if result.stratifiers:
        group["stratifier"] = [{
            "code": [{"text": s.name}],
            "stratum": [{"value": _stratum_value(value, s.system),
                         "population": [{"code": {"coding": [{"system": POPULATION, "code": code}]}, "count": n}
                                        for code, n in counts.items()]}
                        for value, counts in sorted(s.strata.items())],
        } for s in result.stratifiers]
    report = {
        "resourceType": "MeasureReport",
        "status": "complete",
        "type": "subject-list" if listing else "summary",
        "measure": MEASURE_BASE + measure_id,
        "date": format_instant(datetime.now(timezone.utc)),
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "group": [group],
    }
    if contained:
        report["contained"] = contained
    return report
