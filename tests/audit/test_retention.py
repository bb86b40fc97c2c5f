"""Purge refuses dates inside the retention period; ``audit verify``/``purge`` commands."""

import io
from datetime import date, datetime, timezone

import pytest

from fhir_server.audit import RetentionRefused, purge, purge_command, retention_cutoff, seal, verify_command
from fhir_server.storage import AuditEntry
from fhir_server.storage.sqlite.audit import SqliteAuditStore

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def audit():
    store = SqliteAuditStore(":memory:")
    store.append([AuditEntry("p", f"20{y:02d}-06-01T00:00:00.000000Z", {"resourceType": "AuditEvent", "n": y})
                  for y in (18, 19, 20, 25)], lambda c, s, p: seal(dict(c), s, p))
    yield store
    store.close()


def test_cutoff():
    assert retention_cutoff(date(2026, 12, 3), 5) == date(2021, 12, 3)
    assert retention_cutoff(date(2028, 2, 29), 5) == date(2023, 2, 28)


def test_refuses_inside_the_period(audit):
    for before in ("2021-12-04", "2026-01-01", "2021-12-03T00:00:01Z"):
        with pytest.raises(RetentionRefused, match="inside the retention period"):
            purge(audit, before, 5, NOW)
    with pytest.raises(RetentionRefused, match="must be a date"):
        purge(audit, "yesterday", 5, NOW)
    assert len(audit.scan(0, 10)) == 4
    assert purge(audit, "2020-01-01", 5, NOW)[0] == 2
    assert purge(audit, "2021-12-03", 5, NOW)[0] == 1


def test_commands(audit):
    out, err = io.StringIO(), io.StringIO()
    assert purge_command(audit, "2026-01-01", 5, out, err) == 2
    assert "refused" in err.getvalue() and "EVI_AUDIT_RETENTION_YEARS" in err.getvalue()
    assert purge_command(audit, "2019-01-01", 5, out, err) == 0 and "removed 1 events" in out.getvalue()
    assert verify_command(audit, out, err) == 0 and "3 events verified from the purge anchor" in out.getvalue()
