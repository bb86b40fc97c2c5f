"""The PDL access log over HTTP with auth off (domain.md §6): the events each interaction
writes (BALP patterns), one per patient for searches, operations and Bundle entries,
refused and failed requests logged, append-only, AuditEvent search and $access-log in
both formats. With auth on (roles, 401/403/404): tests/integration/test_audit_roles.py."""

from __future__ import annotations

import base64
import csv
import io
import uuid

import httpx
import pytest

from tests.support.live_server import LiveServer

FHIR_JSON = {"Content-Type": "application/fhir+json"}
CS = "https://evi-fhir.org/fhir/CodeSystem/"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    db = tmp_path_factory.mktemp("audit-http") / "evi.db"
    with LiveServer(storage=f"sqlite://{db}") as server:
        yield server


@pytest.fixture
def http(live):
    with httpx.Client(base_url=live.base_url, timeout=30, headers={"Accept": "application/fhir+json"}) as client:
        yield client


def _patient(http) -> str:
    r = http.post("/Patient", json={"resourceType": "Patient", "name": [{"family": uuid.uuid4().hex}]})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _observation(http, pid: str, **extra) -> dict:
    body = {"resourceType": "Observation", "status": "final", "code": {"text": "mood"},
            "subject": {"reference": f"Patient/{pid}"}, **extra}
    r = http.post("/Observation", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def _log(http, pid: str) -> list[dict]:
    r = http.get("/AuditEvent", params={"patient": pid, "_count": "1000"})
    assert r.status_code == 200, r.text
    return [e["resource"] for e in r.json().get("entry", [])]


def _last(http, pid: str) -> dict:
    return _log(http, pid)[-1]


def _subtype(event) -> str:
    return event["subtype"][0]["code"]


def _refs(event, role: str) -> list[str]:
    return [e["what"]["reference"] for e in event["entity"] if (e.get("role") or {}).get("code") == role]


def _query(event) -> str | None:
    found = [e for e in event["entity"] if (e.get("role") or {}).get("code") == "24"]
    return base64.b64decode(found[0]["query"]).decode() if found and "query" in found[0] else None


def test_each_interaction_writes_its_pattern(http):
    pid = _patient(http)
    created = _last(http, pid)
    assert (_subtype(created), created["action"], created["outcome"]) == ("create", "C", "0")
    assert _refs(created, "1") == [f"Patient/{pid}"] and _refs(created, "4") == [f"Patient/{pid}/_history/1"]
    client = created["agent"][0]
    assert client["requestor"] and client["who"]["display"].startswith("anonymous")  # auth off
    assert created["source"]["observer"]["identifier"]["value"] == str(http.base_url).rstrip("/")

    obs = _observation(http, pid)
    oid = obs["id"]
    steps = [
        (lambda: http.get(f"/Observation/{oid}"), "read", "R"),
        (lambda: http.get(f"/Observation/{oid}/_history/1"), "vread", "R"),
        (lambda: http.put(f"/Observation/{oid}", json={**obs, "status": "amended"}), "update", "U"),
        (lambda: http.patch(f"/Observation/{oid}", json=[{"op": "replace", "path": "/status", "value": "final"}],
                            headers={"Content-Type": "application/json-patch+json"}), "patch", "U"),
        (lambda: http.get(f"/Observation/{oid}/_history"), "history-instance", "E"),
        (lambda: http.delete(f"/Observation/{oid}"), "delete", "D"),
    ]
    for request, subtype, action in steps:
        before = len(_log(http, pid))
        r = request()
        assert r.status_code < 300, (subtype, r.text)
        events = _log(http, pid)
        assert len(events) == before + 1, subtype
        event = events[-1]
        assert (_subtype(event), event["action"], event["outcome"]) == (subtype, action, "0")
        assert _refs(event, "1") == [f"Patient/{pid}"]
        assert any(ref.startswith(f"Observation/{oid}") for ref in _refs(event, "4")), subtype
    assert _query(events[-2]) is None  # history of an instance: no query string was sent


def test_a_search_writes_one_event_per_patient_with_its_query(http):
    tag = uuid.uuid4().hex
    a, b = _patient(http), _patient(http)
    oa, ob = (_observation(http, p, code={"coding": [{"system": "urn:t", "code": tag}]}) for p in (a, b))
    r = http.get("/Observation", params={"code": f"urn:t|{tag}", "_include": "Observation:subject"})
    assert r.status_code == 200 and r.json()["total"] == 2
    for pid, obs in ((a, oa), (b, ob)):
        event = _last(http, pid)
        assert (_subtype(event), event["action"]) == ("search-type", "E")
        assert _refs(event, "1") == [f"Patient/{pid}"]
        assert set(_refs(event, "4")) == {f"Observation/{obs['id']}/_history/1", f"Patient/{pid}/_history/1"}
        assert _query(event) == f"code=urn%3At%7C{tag}&_include=Observation%3Asubject"
    # a compartment search names its patient even when it finds nothing
    empty = _patient(http)
    assert http.get(f"/Patient/{empty}/Condition").status_code == 200
    assert (_subtype(_last(http, empty)), _refs(_last(http, empty), "4")) == ("search-type", [])


def test_everything_and_transaction_entries(http):
    pid, other = _patient(http), _patient(http)
    obs = _observation(http, pid)
    assert http.get(f"/Patient/{pid}/$everything").status_code == 200
    event = _last(http, pid)
    assert (_subtype(event), event["action"], event["subtype"][1]["display"]) == ("operation", "E", "$everything")
    assert f"Observation/{obs['id']}/_history/1" in _refs(event, "4")

    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "GET", "url": f"Observation/{obs['id']}"}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                      "subject": {"reference": f"Patient/{other}"}}, "request": {"method": "POST", "url": "Observation"}},
    ]}
    r = http.post("", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    assert (_subtype(_last(http, pid)), _last(http, pid)["action"]) == ("read", "R")
    assert (_subtype(_last(http, other)), _last(http, other)["action"]) == ("create", "C")


def test_a_failed_transaction_logs_its_entries_as_refused(http):
    pid = _patient(http)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                      "subject": {"reference": f"Patient/{pid}"}}, "request": {"method": "POST", "url": "Observation"}},
        {"resource": {"resourceType": "Observation", "status": "not-a-status", "code": {"text": "x"}},
         "request": {"method": "POST", "url": "Observation"}},
    ]}
    r = http.post("", json=bundle, headers=FHIR_JSON)
    assert r.status_code >= 400
    event = _last(http, pid)
    assert (_subtype(event), event["outcome"]) == ("create", "4")


def test_refused_reads_are_logged(http):
    pid = _patient(http)
    assert http.get(f"/Patient/{pid}/_history/99").status_code == 404
    event = _last(http, pid)
    assert (_subtype(event), event["outcome"]) == ("vread", "4")
    assert http.get("/Observation/no-such-thing").status_code == 404
    r = http.get("/AuditEvent", params={"date": "ge2000-01-01", "_count": "1000"})
    last = [e["resource"] for e in r.json()["entry"] if "Observation/no-such-thing" in _refs(e["resource"], "4")]
    assert last and last[-1]["outcome"] == "4" and _refs(last[-1], "1") == []


def test_guide_and_directory_reads_are_not_patient_data(http):
    org = http.post("/Organization", json={"resourceType": "Organization", "name": "Enhet"}).json()
    before = http.get("/AuditEvent", params={"_count": "0"}).json()["total"]
    assert http.get(f"/Organization/{org['id']}").status_code == 200
    assert http.get("/Organization", params={"name": "Enhet"}).status_code == 200
    assert http.get("/metadata").status_code == 200
    assert http.get("/AuditEvent", params={"_count": "0"}).json()["total"] == before


@pytest.mark.parametrize("method, path", [
    ("POST", "/AuditEvent"), ("PUT", "/AuditEvent/1"), ("PATCH", "/AuditEvent/1"), ("DELETE", "/AuditEvent/1"),
    ("PUT", "/AuditEvent?patient=x"), ("DELETE", "/AuditEvent?patient=x"),
])
def test_no_client_writes_an_audit_event(http, method, path):
    body = {"resourceType": "AuditEvent", "id": "1", "type": {"code": "rest"}, "recorded": "2026-01-01T00:00:00Z",
            "agent": [{"requestor": True}], "source": {"observer": {"display": "me"}}}
    before = http.get("/AuditEvent", params={"_count": "0"}).json()["total"]
    r = http.request(method, path, json=[] if method == "PATCH" else body)
    assert r.status_code == 405 and r.json()["resourceType"] == "OperationOutcome", r.text
    assert r.headers["allow"] == "GET"
    assert http.get("/AuditEvent", params={"_count": "0"}).json()["total"] == before


def test_nor_inside_a_transaction(http):
    before = http.get("/AuditEvent", params={"_count": "0"}).json()["total"]
    for kind, method, url in (("transaction", "POST", "AuditEvent"), ("batch", "DELETE", "AuditEvent/1"),
                              ("transaction", "PUT", "AuditEvent/1")):
        bundle = {"resourceType": "Bundle", "type": kind, "entry": [{"request": {"method": method, "url": url}}]}
        if method != "DELETE":
            bundle["entry"][0]["resource"] = {"resourceType": "AuditEvent", "id": "1", "recorded": "2026-01-01T00:00:00Z"}
        r = http.post("", json=bundle, headers=FHIR_JSON)
        status = r.status_code if kind == "transaction" else int(r.json()["entry"][0]["response"]["status"][:3])
        assert status == 405, r.text
    # what was stored: only the server's record of the two refused transactions themselves
    new = http.get("/AuditEvent", params={"_count": "1000"}).json()["entry"][before:]
    assert [(_subtype(e["resource"]), e["resource"]["outcome"]) for e in new] == [("transaction", "4")] * 2
    assert all(not _refs(e["resource"], "4") for e in new)
    first = http.get("/AuditEvent/1").json()
    assert first["id"] == "1" and first["type"]["code"] == "rest"  # the server's own first event, untouched


def test_audit_event_search_pages_oldest_first(http):
    pid = _patient(http)
    for _ in range(4):
        http.get(f"/Patient/{pid}")
    r = http.get("/AuditEvent", params={"patient": f"Patient/{pid}", "_count": "2"})
    body = r.json()
    assert body["total"] == 5 and len(body["entry"]) == 2
    nxt = next(link["url"] for link in body["link"] if link["relation"] == "next")
    rest = httpx.get(nxt, headers={"Accept": "application/fhir+json"}).json()
    ids = [int(e["resource"]["id"]) for e in body["entry"] + rest["entry"]]
    assert ids == sorted(ids) and len(ids) == 4
    one = http.get(f"/AuditEvent/{ids[0]}")
    assert one.status_code == 200 and one.json()["id"] == str(ids[0])
    assert http.get(f"/AuditEvent/{ids[0]}/_history/1").status_code == 200
    assert http.get("/AuditEvent/999999999").status_code == 404
    assert http.get("/AuditEvent", params={"patient": pid, "date": "lt2000-01-01"}).json()["total"] == 0
    assert http.get("/AuditEvent", params={"subtype": "read"}).status_code == 400
    counted = http.get("/AuditEvent", params={"patient": pid, "_summary": "count", "_total": "accurate"}).json()
    assert counted["total"] == 5 and "entry" not in counted  # the total alone
    fhirpy_count = http.get("/AuditEvent", params={"patient": pid, "_count": "0", "_totalMethod": "count"})
    assert fhirpy_count.status_code == 200 and fhirpy_count.json()["total"] == 5  # what fhirpy's .count() sends
    assert http.get("/AuditEvent", params={"patient": pid, "_summary": "true"}).status_code == 400


def test_access_log_as_bundle_and_csv(http):
    pid = _patient(http)
    obs = _observation(http, pid, code={"text": "=cmd|' /C calc'!A0"})
    http.get(f"/Observation/{obs['id']}")
    bundle = http.get(f"/Patient/{pid}/$access-log", params={"start": "2000-01-01", "end": "2099-12-31"})
    assert bundle.status_code == 200, bundle.text
    body = bundle.json()
    assert (body["resourceType"], body["type"], body["total"]) == ("Bundle", "collection", 3)
    assert [e["resource"]["action"] for e in body["entry"]] == ["C", "C", "R"]
    recorded = [e["resource"]["recorded"] for e in body["entry"]]
    assert recorded == sorted(recorded)
    for request in (lambda: http.get(f"/Patient/{pid}/$access-log", headers={"Accept": "text/csv"}),
                    lambda: http.get(f"/Patient/{pid}/$access-log", params={"_format": "csv"})):
        r = request()
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(r.text)))
        assert rows[0] == ["time", "action", "user", "care_unit", "client", "resource"]
        assert [row[1] for row in rows[1:]] == ["C", "C", "R"] and [row[0] for row in rows[1:]] == recorded
        assert rows[3][5] == f"Observation/{obs['id']}/_history/1"
    assert http.get(f"/Patient/{pid}/$access-log", params={"start": "2099-01-01"}).json()["total"] == 0
    assert http.get(f"/Patient/{pid}/$access-log", params={"start": "nonsense"}).status_code == 400
    assert http.get("/Patient/nobody-here/$access-log").status_code == 404


def test_generated_events_validate_against_the_profile(http):
    pid = _patient(http)
    http.get(f"/Patient/{pid}")
    http.get("/Patient", params={"_id": pid})
    for event in _log(http, pid):
        r = http.post("/AuditEvent/$validate", json=event, headers=FHIR_JSON)
        errors = [i for i in r.json()["issue"] if i["severity"] in ("error", "fatal")]
        assert r.status_code == 200 and not errors, (_subtype(event), errors)


def test_the_triage_queue_writes_one_event_per_child(http):
    owner = f"Organization/{http.post('/Organization', json={'resourceType': 'Organization', 'name': 'Kö'}).json()['id']}"
    children = [_patient(http) for _ in range(2)]
    for pid in children:
        task = {"resourceType": "Task", "status": "requested", "intent": "order", "authoredOn": "2026-01-05T08:00:00Z",
                "code": {"coding": [{"system": f"{CS}evi-task-type", "code": "intake"}]},
                "owner": {"reference": owner}, "for": {"reference": f"Patient/{pid}"}}
        assert http.post("/Task", json=task).status_code == 201
    r = http.get("/Task/$triage-queue", params={"owner": owner})
    assert r.status_code == 200 and r.json()["total"] == 2, r.text
    for pid in children:
        event = _last(http, pid)
        assert (_subtype(event), event["action"], event["subtype"][1]["display"]) == ("operation", "E", "$triage-queue")
        assert _refs(event, "1") == [f"Patient/{pid}"] and len(_refs(event, "4")) == 1
        assert _query(event) == f"owner={owner.replace('/', '%2F')}"


def test_the_log_is_searched_only_where_it_lives(http):
    assert http.get("/AuditEvent/_history").status_code == 404  # read by id: no such event
    assert http.get("/AuditEvent/1/_history").status_code == 400
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [{"request": {"method": "GET", "url": "AuditEvent?date=ge2000"}}]}
    r = http.post("", json=bundle, headers=FHIR_JSON)
    assert r.json()["entry"][0]["response"]["status"].startswith("400")


def test_the_capability_statement_offers_the_log_read_only(http):
    statement = http.get("/metadata").json()["rest"][0]
    audit = next(r for r in statement["resource"] if r["type"] == "AuditEvent")
    assert [i["code"] for i in audit["interaction"]] == ["read", "vread", "search-type"]
    assert {p["name"] for p in audit["searchParam"]} == {"patient", "date"}
    assert not any(k.startswith("conditional") for k in audit)
    patient = next(r for r in statement["resource"] if r["type"] == "Patient")
    assert {"name": "access-log", "definition": "https://evi-fhir.org/fhir/OperationDefinition/access-log"} in patient["operation"]


def test_a_server_failure_is_logged_with_outcome_8(http, monkeypatch):
    import fhir_server.api.interactions.read as read_interaction

    pid = _patient(http)

    def boom(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(read_interaction.engine, "read", boom)
    assert http.get(f"/Patient/{pid}").status_code == 500
    monkeypatch.undo()
    event = _last(http, pid)
    assert (_subtype(event), event["action"], event["outcome"]) == ("read", "R", "8")
    assert "HTTP 500" in event["outcomeDesc"]


def test_each_page_of_a_search_logs_the_children_it_shows(http):
    tag = uuid.uuid4().hex
    a, b = _patient(http), _patient(http)
    for pid in (a, b):
        _observation(http, pid, code={"coding": [{"system": "urn:t", "code": tag}]})
    first = http.get("/Observation", params={"code": f"urn:t|{tag}", "_count": "1"}).json()
    shown_first = first["entry"][0]["resource"]["subject"]["reference"].split("/")[1]
    nxt = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = httpx.get(nxt, headers={"Accept": "application/fhir+json"}).json()
    shown_second = second["entry"][0]["resource"]["subject"]["reference"].split("/")[1]
    assert {shown_first, shown_second} == {a, b}
    for pid in (a, b):
        searches = [e for e in _log(http, pid) if _subtype(e) == "search-type"]
        assert len(searches) == 1, pid  # logged by the page that showed its data, once
