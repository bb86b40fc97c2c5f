"""Records, the log's stored form of an event: the event built from a record is the one
its chain value was computed over, byte for byte, now and in every later version of the
server. The bytes of format 1 are pinned below for every shape of event: if this test
fails, what ``balp`` builds changed for facts already stored, and the chain of every
stored event of that shape would break. Give the change a new record format and keep
format 1's building (audit/record.py); do not update the hashes."""

import hashlib

import orjson
import pytest

from fhir_server.audit import RECORD_FORMAT, Access, RequestFacts, ServerIdentity, check, entries_of, event_body, seal, seal_record
from fhir_server.audit.balp import audit_event
from fhir_server.audit.record import CallerFacts
from fhir_server.storage import AuditRow

SERVER = ServerIdentity("https://evi.example.se/fhir")
T = "2026-12-03T10:00:00.123456Z"
USER = CallerFacts("evi", "ehr-1", "EHR Vendor", "SE2321000032-USR1", "Organization/o1", "SE2321000032-ORG1")
CLIENT = CallerFacts("municipality", "soc-7", None, None, None, "SE2321000032-ORG2")
SHAPES = {
    "read, log without authentication": (RequestFacts(T, "r1", 200, None, False, "127.0.0.1"),
                                         Access("read", "p1", ("ServiceRequest/s1/_history/1",))),
    "create by a user of a care unit": (RequestFacts(T, "r2", 201, USER, True, "10.0.0.7"),
                                        Access("create", "p1", ("Observation/o1/_history/1",))),
    "search by a client, its query": (RequestFacts(T, "r3", 200, CLIENT, True, "10.0.0.8"),
                                      Access("search-type", "p2", ("Task/t1/_history/2", "Task/t2/_history/1"),
                                             "subject=Patient/p2&_count=10&name=Åsa", "Task")),
    "operation refused by the rules": (RequestFacts(T, "r4", 200, USER, True, None),
                                       Access("operation", None, (), "start=2026", "Patient/p3/$everything",
                                              outcome=403, operation="everything")),
    "an operation of the spec's": (RequestFacts(T, "r5", 200, USER, True, "::1"),
                                   Access("operation", "p4", ("Patient/p4",), None, "Patient/p4/$match",
                                          operation="match")),
    "a delivery to a rest-hook": (RequestFacts(T, "Subscription/sub1#3-5", 200, CLIENT, True,
                                               "https://soc.example.se/hook", "5"),
                                  Access("operation", "p5", ("Patient/p5/_history/2",), operation="notification")),
    "a relay, no client": (RequestFacts(T, "relay/k1#1-1", 200, None, False, "https://up.example.se/fhir", "5",
                                        "the server's relay"),
                           Access("operation", "p6", ("Condition/c1/_history/1",), operation="relay")),
    "unauthenticated, refused": (RequestFacts(T, "r8", 401, None, True, "192.0.2.1"),
                                 Access("read", None, ("Observation/o9",))),
    "a server failure": (RequestFacts(T, "r9", 500, CLIENT, True, "10.0.0.8"), Access("update", "p7", ("Patient/p7",))),
    "delete, vread, history": (RequestFacts(T, "r10", 200, USER, True, "10.0.0.7"),
                               Access("history-instance", "p8", ("Patient/p8/_history/3",), None, "Patient/p8/_history")),
}

#: SHA-256 of each shape's event as served (seq 42, after the chain value "ab" * 32)
FORMAT_1 = {
    'read, log without authentication': "b735191c5a73f3b95e49d4eaed107055f2d8302ace4341e08ba12702da8338bc",
    'create by a user of a care unit': "97a1a5f3c9682f434d9559ce7aaef2e7cc0c22727003909a89a49433faadfe83",
    'search by a client, its query': "7a190ac02aaa79a12f6e7ba4ce8d21368ef72b5eb46e43980a3adf218d99c9a5",
    'operation refused by the rules': "c7cb44e9b38d99abe20fb8550846c50108236fbb31f636ce35b3deceaa4eec5e",
    "an operation of the spec's": "2b84e4917f7970df7ab00d7cf721bdb299252cca8e1ca2ba1ff9619f3607eff7",
    'a delivery to a rest-hook': "857ca6185f0c38852b659d3ff8728332230315f7621b435a7f4a8131889384a4",
    'a relay, no client': "a713b0f98df28a01554825a9389de5032fbc079e712ea10ac4f20ec75678a6c2",
    'unauthenticated, refused': "ce65138f47e3e80db782753c67f37ff5b98fe80d751571a94298a7adb8c58a02",
    'a server failure': "f07773df58d8d389aad1a95037960f2d96818147fda44de4fe8c25e4c2fcb11c",
    'delete, vread, history': "21e2a926a42312fc55dde3831bed75db9bd9447dab87e067ef92c0e5a5bef64e",
}


def _stored(facts, access, seq=42, previous="ab" * 32) -> AuditRow:
    entry = entries_of(facts, [access], SERVER)[0]
    chain, stored = seal_record(entry.content, seq, previous)
    return AuditRow(seq, entry.patient, entry.recorded, chain, stored)


def test_every_shape_is_pinned():
    assert set(FORMAT_1) == set(SHAPES)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_format_1_builds_the_same_bytes_as_ever(shape):
    facts, access = SHAPES[shape]
    row = _stored(facts, access)
    assert orjson.loads(row.body)[0] == RECORD_FORMAT == 1
    body = event_body(row)
    assert hashlib.sha256(body).hexdigest() == FORMAT_1[shape], body.decode()


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_the_chain_value_is_the_served_events(shape):
    facts, access = SHAPES[shape]
    row = _stored(facts, access)
    body = event_body(row)
    assert check(body, "ab" * 32, "42") == (row.chain, None)  # what a verifier recomputes from the event
    whole = audit_event(facts, access, SERVER)  # built plainly, as before records
    assert seal(whole, 42, "ab" * 32) == (row.chain, body)
    assert len(row.body) * 4 < len(body)  # the point of records


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_record_read_back_from_json_seals_and_serves_the_same(shape):
    facts, access = SHAPES[shape]
    entry = entries_of(facts, [access], SERVER)[0]
    again = orjson.loads(orjson.dumps(entry.content))  # as a pending file gives it back
    assert seal_record(again, 7, "") == seal_record(entry.content, 7, "")


def test_events_stored_whole_are_served_as_stored_and_unknown_records_refused():
    whole = b'{"resourceType":"AuditEvent","id":"5"}'
    assert event_body(AuditRow(5, None, "2026-01-01T00:00:00Z", "c" * 64, whole)) is whole
    facts, access = SHAPES["read, log without authentication"]
    row = _stored(facts, access)
    future = orjson.dumps([2, *orjson.loads(row.body)[1:]])
    with pytest.raises(ValueError, match="format 2"):
        event_body(row._replace(body=future))
    with pytest.raises(ValueError):
        event_body(row._replace(body=b'[1, "too", "short"]'))
