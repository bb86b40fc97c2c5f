"""``evi-fhir audit verify`` and ``audit purge`` on a database the server wrote."""

import sqlite3

import httpx
import pytest

from fhir_server.cli import main
from tests.support.live_server import LiveServer


def _logged_database(tmp_path) -> str:
    url = f"sqlite://{tmp_path / 'evi.db'}"
    with LiveServer(storage=url) as live, httpx.Client(base_url=live.base_url) as http:
        patient = http.post("/Patient", json={"resourceType": "Patient", "gender": "female"}).json()
        for _ in range(3):
            assert http.get(f"/Patient/{patient['id']}").status_code == 200
    return url


@pytest.mark.parametrize("edit", [
    lambda body: body.replace(b'"read"', b'"vread"'),  # the event now says another interaction
    lambda body: body.replace(b'"127.0.0.1"', b'"10.0.0.9"'),  # ... another network address
    lambda body: body[:-5],  # ... nothing readable
    lambda body: b'{"resourceType":"AuditEvent","id":"3"}',  # ... an event of someone's making
])
def test_verify_passes_then_names_the_altered_event(tmp_path, capsys, edit):
    url = _logged_database(tmp_path)
    assert main(["audit", "verify", "--storage", url]) == 0
    assert "audit chain ok: 4 events verified" in capsys.readouterr().out
    with sqlite3.connect(tmp_path / "evi.db-audit") as conn:  # someone edits a stored event's bytes
        body = bytes(conn.execute("SELECT body FROM audit_event WHERE seq = 3").fetchone()[0])
        altered = edit(body)
        assert altered != body
        conn.execute("UPDATE audit_event SET body = ? WHERE seq = 3", (altered,))
    assert main(["audit", "verify", "--storage", url]) == 1
    err = capsys.readouterr().err
    assert "chain broken at AuditEvent/3" in err and "2 events before it verified" in err


def test_verify_notices_a_removed_event(tmp_path, capsys):
    url = _logged_database(tmp_path)
    with sqlite3.connect(tmp_path / "evi.db-audit") as conn:
        conn.execute("DELETE FROM audit_event WHERE seq = 2")
    assert main(["audit", "verify", "--storage", url]) == 1
    assert "chain broken at AuditEvent/3" in capsys.readouterr().err


def test_purge_refuses_dates_inside_the_retention_period(tmp_path, capsys, monkeypatch):
    url = _logged_database(tmp_path)
    assert main(["audit", "purge", "--before", "2030-01-01", "--storage", url]) == 2
    assert "inside the retention period" in capsys.readouterr().err
    monkeypatch.setenv("EVI_AUDIT_RETENTION_YEARS", "0")
    assert main(["audit", "purge", "--before", "2000-01-01", "--storage", url]) == 0
    assert "no event removed" in capsys.readouterr().out
    assert main(["audit", "verify", "--storage", url]) == 0
