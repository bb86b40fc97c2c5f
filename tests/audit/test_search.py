"""``AuditEvent?patient=&date=`` and ``$access-log``'s period as store queries."""

import pytest

from fhir_server.audit import next_cursor, parse_audit_search, parse_extract_period
from fhir_server.errors import InvalidSearch


def _parse(*params):
    return parse_audit_search(list(params), default_count=20, max_count=100).query


def test_patient_and_date_prefixes():
    q = _parse(("patient", "Patient/p1"), ("date", "ge2026-01-01"), ("date", "lt2026-02-01"), ("_count", "500"))
    assert (q.patient, q.start, q.limit) == ("p1", "2026-01-01T00:00:00.000000Z", 100)
    assert q.end == "2026-01-31T23:59:59.999999Z"
    day = _parse(("patient", "p2"), ("date", "2026-03-04"))
    assert (day.patient, day.start, day.end) == ("p2", "2026-03-04T00:00:00.000000Z", "2026-03-04T23:59:59.999999Z")
    after = _parse(("date", "gt2026-03-04"))
    assert (after.start, after.end) == ("2026-03-05T00:00:00.000000Z", None)
    assert _parse(("_cursor", next_cursor("2026-03-04T00:00:00.000000Z", 7))).after == ("2026-03-04T00:00:00.000000Z", 7)
    assert _parse(("_summary", "count"), ("_count", "50"), ("_total", "accurate")).limit == 0  # the total alone
    assert _parse(("_summary", "false"), ("_total", "none")).limit == 20


@pytest.mark.parametrize("params", [
    [("patient", "Observation/x")], [("patient", "a,b")], [("patient", "a"), ("patient", "b")],
    [("date", "ne2026-01-01")], [("date", "nonsense")], [("action", "R")], [("_count", "-1")],
    [("_cursor", "x~y")], [("_summary", "true")], [("_total", "exact")],
])
def test_refused(params):
    with pytest.raises(InvalidSearch):
        _parse(*params)


def test_extract_period():
    assert parse_extract_period([("start", "2026-01-01"), ("end", "2026-01-31")]) == (
        "2026-01-01T00:00:00.000000Z", "2026-01-31T23:59:59.999999Z")
    assert parse_extract_period([]) == (None, None)
    assert parse_extract_period([("start", "2026-01-01T10:00:00+01:00")])[0] == "2026-01-01T09:00:00.000000Z"
    for bad in ([("start", "soon")], [("start", "2026-02-01"), ("end", "2026-01-01")]):
        with pytest.raises(InvalidSearch):
            parse_extract_period(bad)
