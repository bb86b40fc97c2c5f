"""Reporting operations (domain.md §8); the reports themselves are ``fhir_server.reporting``:

  GET|POST Measure/{id}/$evaluate-measure   periodStart, periodEnd, reportType -> MeasureReport
  GET      $skr-wait-times                  month, detail -> MeasureReport, or CSV with
                                            ``Accept: text/csv`` or ``_format=csv``
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api.content import body_of, check_accept, fhir_response
from fhir_server.api.deps import context_of, is_pretty, query_pairs, runtime_of, settings_of
from fhir_server.errors import BadRequest, NotAcceptable
from fhir_server.model import parse_json
from fhir_server.reporting import evaluate_measure as evaluate, skr_csv, skr_measure_report, skr_wait_times

__all__ = ["evaluate_measure", "skr_wait_times_operation"]

_PASSED = frozenset({"_format", "_pretty"})
_MEASURE_PARAMETERS = ("periodStart", "periodEnd", "reportType")
_SKR_PARAMETERS = ("month", "detail")
_CSV = frozenset({"csv", "text/csv"})
_VALUE_KEYS = ("valueDate", "valueDateTime", "valueString", "valueCode", "valueBoolean")


def _single(pairs: list[tuple[str, str]], allowed: tuple[str, ...], operation: str) -> dict[str, str]:
    given: dict[str, str] = {}
    for name, value in pairs:
        if name in _PASSED:
            continue
        if name not in allowed:
            raise BadRequest(f"{operation} does not take parameter '{name}'; it takes {', '.join(allowed)}",
                             expression=name)
        if name in given:
            raise BadRequest(f"Parameter '{name}' may be given only once", expression=name)
        given[name] = value
    return given


def _parameters_body(request: Request) -> list[tuple[str, str]]:
    raw = body_of(request)
    if not raw:
        return []
    parameters = parse_json(raw, settings_of(request).max_json_depth)
    if not isinstance(parameters, dict) or parameters.get("resourceType") != "Parameters":
        raise BadRequest("$evaluate-measure takes a Parameters resource", expression="resourceType")
    pairs = []
    for p in parameters.get("parameter") or ():
        if not isinstance(p, dict) or not isinstance(p.get("name"), str):
            raise BadRequest("Each parameter needs a name", expression="Parameters.parameter")
        value = next((p[k] for k in _VALUE_KEYS if k in p), None)
        if not isinstance(value, str):
            raise BadRequest(f"Parameter '{p['name']}' needs a date, string or code value",
                             expression=f"Parameters.parameter.where(name='{p['name']}')")
        pairs.append((p["name"], value))
    return pairs


def evaluate_measure(request: Request, id: str) -> Response:
    check_accept(request)
    pairs = query_pairs(request) + (_parameters_body(request) if request.method == "POST" else [])
    given = _single(pairs, _MEASURE_PARAMETERS, "$evaluate-measure")
    report = evaluate(runtime_of(request), context_of(request), id, period_start=given.get("periodStart"),
                      period_end=given.get("periodEnd"), report_type=given.get("reportType"),
                      key=settings_of(request).pseudonym_key)
    return fhir_response(report, pretty=is_pretty(request))


def _wants_csv(request: Request) -> bool:
    fmt = request.query_params.get("_format")
    if fmt is not None:
        if fmt.lower().split(";")[0].strip() in _CSV:
            return True
        check_accept(request)  # 406 for anything but JSON
        return False
    for part in (request.headers.get("accept") or "").split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media == "text/csv":
            return True
        if media and (media in ("*/*", "application/*") or "json" in media):
            return False
    try:
        check_accept(request)
    except NotAcceptable:
        raise NotAcceptable("$skr-wait-times answers FHIR JSON (application/fhir+json) or CSV (text/csv)") from None
    return False


def _boolean(raw: str | None) -> bool:
    if raw is None or raw == "false":
        return False
    if raw == "true":
        return True
    raise BadRequest(f"Parameter 'detail' must be true or false, got {raw!r}", expression="detail")


def skr_wait_times_operation(request: Request) -> Response:
    as_csv = _wants_csv(request)
    given = _single(query_pairs(request), _SKR_PARAMETERS, "$skr-wait-times")
    report = skr_wait_times(runtime_of(request), context_of(request), given.get("month"),
                            key=settings_of(request).pseudonym_key, detail=_boolean(given.get("detail")))
    if as_csv:
        filename = f"skr-wait-times-{report.month}.csv"
        return Response(skr_csv(report), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})
    return fhir_response(skr_measure_report(report), pretty=is_pretty(request))
