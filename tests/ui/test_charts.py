import re
from datetime import date

from fhir_server.ui.charts import Chart, Point, periods, svg


def test_weeks_are_iso_weeks_ending_with_the_one_holding_the_day():
    weeks = periods("vecka", date(2026, 1, 1), 3)
    assert [w.label for w in weeks] == ["v51 2025", "v52 2025", "v1 2026"]
    assert weeks[-1].start == date(2025, 12, 29) and weeks[-1].end == date(2026, 1, 4)
    assert all(w.start.weekday() == 0 and (w.end - w.start).days == 6 for w in weeks)


def test_months_run_over_the_year_end():
    months = periods("manad", date(2026, 2, 14), 3)
    assert [(m.label, m.start, m.end) for m in months] == [
        ("dec 2025", date(2025, 12, 1), date(2025, 12, 31)),
        ("jan 2026", date(2026, 1, 1), date(2026, 1, 31)),
        ("feb 2026", date(2026, 2, 1), date(2026, 2, 28)),
    ]


def test_each_bar_carries_its_data_point_and_a_gap_draws_nothing():
    chart = Chart("c", "Kontakter <per> vecka", "antal", [Point("v1", 3), Point("v2", None), Point("v3", 12)])
    drawn = str(svg(chart))
    assert re.findall(r'data-label="([^"]+)" data-value="([^"]+)"', drawn) == [("v1", "3"), ("v3", "12")]
    assert "&lt;per&gt;" in drawn and "<per>" not in drawn  # escaped
    heights = [float(h) for h in re.findall(r'height="([\d.]+)"', drawn)]
    assert heights[1] == 4 * heights[0]


def test_a_share_is_drawn_as_a_line_on_a_percent_scale():
    chart = Chart("s", "Andel", "procent", [Point("a", 50.0), Point("b", 100.0)], kind="line")
    drawn = str(svg(chart))
    assert "<polyline" in drawn and drawn.count('class="dot"') == 2 and ">100 %<" in drawn
    assert chart.shown(None) == "–" and chart.shown(12.4) == "12 %"
