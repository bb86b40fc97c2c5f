"""Coding of the measures' strata (reporting/strata.py)."""

from datetime import date

from fhir_server.reporting.strata import age_band, municipality


def test_age_bands_on_the_day_of_receipt():
    assert age_band(date(2020, 5, 6), date(2026, 5, 5)) == "0-5"
    assert age_band(date(2020, 5, 6), date(2026, 5, 6)) == "6-12"
    assert age_band(date(2013, 5, 6), date(2026, 5, 5)) == "6-12"
    assert age_band(date(2013, 5, 6), date(2026, 5, 6)) == "13-17"
    assert age_band(date(2008, 5, 6), date(2026, 5, 6)) == "18+"
    assert age_band(date(2012, 2, 29), date(2025, 2, 28)) == "6-12"  # 13 only on 1 March
    assert age_band(None, date(2026, 1, 1)) == "unknown"
    assert age_band(date(2027, 1, 1), date(2026, 1, 1)) == "unknown"


def test_municipalities_by_name_or_code():
    assert municipality("Uddevalla") == "1485"
    assert municipality(" göteborg ") == "1480"
    assert municipality("1480") == "1480"
    assert municipality("Malung-Sälen") == "2023"
    assert municipality("Atlantis") == "Atlantis"
    assert municipality(None) == municipality("  ") == "unknown"
