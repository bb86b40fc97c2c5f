"""Reading MeasureReports into chart points (the page depends on FHIR's MeasureReport
shape only; the reporting engine is replaced here by recorded reports)."""

from datetime import date

from fhir_server.ui.labels import Labels
from fhir_server.ui.measures import Reports, measure_charts, population, score, strata

POP = "http://terminology.hl7.org/CodeSystem/measure-population"


def _report(counts: dict, value: float | None = None, channels: dict | None = None) -> dict:
    group: dict = {"population": [{"code": {"coding": [{"system": POP, "code": c}]}, "count": n}
                                  for c, n in counts.items()]}
    if value is not None:
        group["measureScore"] = {"value": value}
    if channels:
        group["stratifier"] = [{"code": [{"text": "channel"}], "stratum": [
            {"value": {"coding": [{"code": code}], "text": code},
             "population": [{"code": {"coding": [{"system": POP, "code": "initial-population"}]}, "count": n}]}
            for code, n in channels.items()]}]
    return {"resourceType": "MeasureReport", "group": [group]}


def test_counts_scores_and_strata_are_read_as_fhir_defines_them():
    report = _report({"initial-population": 7, "numerator": 3, "denominator": 7}, 3 / 7,
                     {"phone-advice": 4, "referral-paper": 3})
    assert population(report) == 7 and population(report, "numerator") == 3 and population(report, "x") == 0
    assert score(report) == 3 / 7 and score(_report({})) is None
    assert strata(report, "channel") == {"phone-advice": 4, "referral-paper": 3}
    assert strata(report, "unit") == {}


def test_each_chart_has_one_point_per_period_from_its_measure():
    asked = []

    def evaluate(runtime, ctx, measure, start, end):
        asked.append((measure, start, end))
        n = start.month
        return {
            "evi-contacts": _report({"initial-population": n}, channels={"phone-advice": 2 * n}),
            "evi-assessed-within-deadline": _report({"initial-population": n}, 0.5),
            "evi-first-visit-within-30-days": _report({"initial-population": n}, None if n == 1 else 0.25),
            "evi-days-to-first-visit": _report({"initial-population": n}, 12.5),
            "evi-units-without-slots": _report({"initial-population": n % 3}),
        }[measure]

    charts = {c.id: c for c in measure_charts(None, None, Reports(evaluate, lambda *a: ""), "manad",
                                              date(2026, 3, 15), Labels(None))}
    assert [p.value for p in charts["kontakter"].points][-3:] == [1, 2, 3]
    assert [p.label for p in charts["kontakter"].points][-3:] == ["jan 2026", "feb 2026", "mar 2026"]
    assert {p.value for p in charts["inom-tidsgrans"].points} == {50.0}
    assert charts["forsta-besok-30"].points[-3].value is None and charts["forsta-besok-30"].points[-1].value == 25.0
    assert charts["dagar-forsta-besok"].points[-1].value == 12.5
    assert [p.value for p in charts["utan-tider"].points][-3:] == [1, 2, 0]
    # the channel chart sums the whole range in one evaluation, labelled in Swedish
    assert [(p.label, p.value) for p in charts["kanaler"].points] == [("Telefon – rådgivning", 2 * 4)]
    assert ("evi-contacts", date(2025, 4, 1), date(2026, 3, 31)) in asked


def test_recent_reports_are_reused_until_they_are_too_old(monkeypatch):
    from fhir_server.ui import measures

    now = [1000.0]
    monkeypatch.setattr(measures.time, "monotonic", lambda: now[0])
    recent = measures.RecentReports(seconds=300, entries=2)
    made = []

    def make(n):
        return lambda: made.append(n) or {"n": n}

    assert recent.get(("a",), make(1)) == {"n": 1}
    assert recent.get(("a",), make(2)) == {"n": 1}  # reused
    now[0] += 301
    assert recent.get(("a",), make(3)) == {"n": 3}  # too old: evaluated again
    recent.get(("b",), make(4))
    recent.get(("c",), make(5))  # bounded: never more than ``entries``
    assert len(recent._found) <= 2 and made == [1, 3, 4, 5]


def test_with_a_series_each_measure_is_asked_once_for_all_its_periods():
    asked = []

    def evaluate(*_args):
        raise AssertionError("no evaluation per period when the engine offers series")

    def series(runtime, ctx, measure, ranges):
        asked.append((measure, len(ranges)))
        return [_report({"initial-population": start.month}, 0.5, channels={"phone-advice": 10})
                for start, _end in ranges]

    charts = {c.id: c for c in measure_charts(None, None, Reports(evaluate, lambda *a: "", series), "vecka",
                                              date(2026, 3, 15), Labels(None))}
    # five measures; the contacts' row starts with the whole range (its channels), then the twelve weeks
    assert sorted(asked) == sorted([("evi-contacts", 13), ("evi-assessed-within-deadline", 12),
                                    ("evi-first-visit-within-30-days", 12), ("evi-days-to-first-visit", 12),
                                    ("evi-units-without-slots", 12)])
    assert [p.value for p in charts["kontakter"].points][-2:] == [3, 3] and charts["kontakter"].points[0].value == 12
    assert [(p.label, p.value) for p in charts["kanaler"].points] == [("Telefon – rådgivning", 10)]
