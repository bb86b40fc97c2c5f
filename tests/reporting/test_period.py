"""Report periods as calendar days of the region's zone (reporting/period.py)."""

from datetime import date
from zoneinfo import ZoneInfo

import pytest

from fhir_server.errors import BadRequest
from fhir_server.reporting.period import local_day, month_period, parse_period

ZONE = ZoneInfo("Europe/Stockholm")


def test_bounds_follow_the_zone_across_daylight_saving():
    period = parse_period("2026-03-01", "2026-03-31", ZONE)
    assert period.lower == "2026-03-01T00:00:00+01:00"
    assert period.upper == "2026-04-01T00:00:00+02:00"  # summer time began on 2026-03-29
    assert period.criteria("authored-on") == [("authored-on", "ge2026-03-01T00:00:00+01:00"),
                                              ("authored-on", "lt2026-04-01T00:00:00+02:00")]


def test_local_days_of_stored_instants():
    assert local_day("2026-09-30T22:30:00.000000Z", ZONE) == date(2026, 10, 1)
    assert local_day("2026-09-30T21:59:59.999999Z", ZONE) == date(2026, 9, 30)
    assert local_day(None, ZONE) is None


def test_months():
    assert (month_period("2026-02", ZONE).start, month_period("2026-02", ZONE).end) == (date(2026, 2, 1), date(2026, 2, 28))
    assert month_period("2024-12", ZONE).end == date(2024, 12, 31)


@pytest.mark.parametrize("start, end", [(None, "2026-01-01"), ("2026-01-01", None), ("2026-1-1", "2026-01-02"),
                                        ("2026-02-30", "2026-03-01"), ("2026-03-02", "2026-03-01"),
                                        ("2000-01-01", "2026-01-01"), ("2026-01-01T00:00", "2026-01-02"),
                                        ("9999-12-30", "9999-12-31"), ("0001-01-01", "0001-01-02")])
def test_bad_periods_are_400(start, end):
    with pytest.raises(BadRequest):
        parse_period(start, end, ZONE)


@pytest.mark.parametrize("month", [None, "", "2026", "2026-00", "2026-13", "2026-1", "0000-01", "2026-01-01", "9999-12", "0001-01"])
def test_bad_months_are_400(month):
    with pytest.raises(BadRequest):
        month_period(month, ZONE)
