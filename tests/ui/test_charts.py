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


def test_count_axes_have_whole_number_ticks():
    for top, expected in ((2, "4"), (3, "4"), (7, "8"), (13, "20"), (0, "4"), (180, "200")):
        drawn = str(svg(Chart("c", "t", "antal", [Point("a", top)])))
        ticks = re.findall(r'text-anchor="end">([^<]+)<', drawn)[:5]
        assert ticks[-1] == expected and all("," not in t and "." not in t for t in ticks), (top, ticks)


def test_categories_with_long_names_are_horizontal_bars():
    chart = Chart("k", "Kanaler", "antal", [Point("1177 e-tjänst – egenremiss för barn och unga", 3)], kind="hbar")
    drawn = str(svg(chart))
    assert 'data-label="1177 e-tjänst – egenremiss för barn och unga" data-value="3"' in drawn
    assert "rotate" not in drawn


def test_a_line_breaks_where_a_period_has_no_value():
    chart = Chart("s", "Andel", "procent", [Point("a", 10.0), Point("b", 20.0), Point("c", None),
                                            Point("d", 30.0), Point("e", 40.0)], kind="line")
    assert str(svg(chart)).count("<polyline") == 2
