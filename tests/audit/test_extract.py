"""The patient's extract: the Bundle, and CSV written safely (quoting, no formulas)."""

import csv
import io

import orjson

from fhir_server.audit import CSV_HEADER, Access, RequestFacts, ServerIdentity, audit_event, extract_bundle, extract_csv, seal
from fhir_server.security import Caller
from fhir_server.security.scopes import Scopes
from fhir_server.storage import AuditRow

SERVER = ServerIdentity("http://127.0.0.1/fhir")


def _row(seq, caller, access, recorded="2026-12-03T10:00:00.000000Z"):
    facts = RequestFacts(recorded, "r", 200, caller, caller is not None)
    chain, body = seal(audit_event(facts, access, SERVER), seq, "")
    return AuditRow(seq, access.patient, recorded, chain, body)


def test_csv_header_and_lines():
    person = Caller("evi", Scopes.parse("user/*.rs"), client_id="dash", user="SE-USER-1",
                    organization="Organization/evi", organization_hsa="SE-UNIT-1")
    client = Caller("care-unit", Scopes.parse("system/*.rs"), client_id="bup", organization="Organization/bup")
    rows = [_row(1, person, Access("read", "p1", ("Observation/o/_history/1",))),
            _row(2, client, Access("search-type", "p1", ("Observation/o/_history/1", "Observation/q/_history/3"),
                                   "subject=Patient/p1", "Observation")),
            _row(3, None, Access("search-type", "p1", (), "code=x", "Observation"))]
    lines = list(csv.reader(io.StringIO(extract_csv(rows))))
    assert tuple(lines[0]) == CSV_HEADER == ("time", "action", "user", "care_unit", "client", "resource")
    assert lines[1] == ["2026-12-03T10:00:00.000000Z", "R", "SE-USER-1", "SE-UNIT-1", "dash", "Observation/o/_history/1"]
    assert lines[2] == ["2026-12-03T10:00:00.000000Z", "E", "", "Organization/bup", "bup",
                        "Observation/o/_history/1 Observation/q/_history/3"]
    assert lines[3][4].startswith("anonymous") and lines[3][5] == "Observation?code=x"
    assert extract_csv([]).endswith("\r\n") and extract_csv([]).count("\n") == 1


def test_cells_that_look_like_formulas_are_defused_and_quoted():
    evil = Caller("evi", Scopes.parse("system/*.rs"), client_id='=HYPERLINK("http://x","a,b")', user="+1-2", 
                  organization="@SUM(A1)")
    text = extract_csv([_row(1, evil, Access("read", "p1", ("Patient/p1",)))])
    line = list(csv.reader(io.StringIO(text)))[1]
    assert line[2:5] == ["'+1-2", "'@SUM(A1)", "'=HYPERLINK(\"http://x\",\"a,b\")"]
    assert '"\'=HYPERLINK(""http://x"",""a,b"")"' in text  # RFC 4180 quoting


def test_bundle_is_a_collection_oldest_first():
    rows = [_row(1, None, Access("read", "p1")), _row(2, None, Access("create", "p1"))]
    bundle = orjson.loads(orjson.dumps(extract_bundle("http://h/fhir", rows)))
    assert (bundle["type"], bundle["total"]) == ("collection", 2)
    assert [e["fullUrl"] for e in bundle["entry"]] == ["http://h/fhir/AuditEvent/1", "http://h/fhir/AuditEvent/2"]
    assert [e["resource"]["action"] for e in bundle["entry"]] == ["R", "C"]
