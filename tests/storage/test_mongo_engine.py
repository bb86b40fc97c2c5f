"""The whole server on the MongoDB store, over HTTP on a loopback port, built from a
``mongodb://`` storage URL as ``evi-fhir serve`` does; the client is mongomock dressed
as a single-node replica set (``tests/support/mongo_replica_set.py``). A standalone
server is refused at start, with the way to make it a replica set.
"""

from __future__ import annotations

import uuid

import httpx
import pymongo
import pytest

from fhir_server.app import create_app
from fhir_server.cli import main
from fhir_server.settings import Settings
from fhir_server.storage.mongo import ReplicaSetRequired
from tests.support.live_server import LiveServer
from tests.support.mongo_replica_set import ReplicaSet, Standalone

JSON = "application/fhir+json"


@pytest.fixture
def server(monkeypatch):
    client = ReplicaSet()
    monkeypatch.setattr(pymongo, "MongoClient", lambda url, **options: client)
    with LiveServer(storage="mongodb://db.example:27017/evi_test?replicaSet=rs0") as live:
        with httpx.Client(base_url=live.base_url, timeout=30, headers={"Accept": JSON}) as http:
            yield client, http


def _patient(value: str) -> dict:
    return {"resourceType": "Patient", "identifier": [{"system": "urn:test", "value": value}], "gender": "female"}


def test_crud_history_and_search(server):
    _, http = server
    value = uuid.uuid4().hex
    created = http.post("/Patient", json=_patient(value), headers={"Content-Type": JSON})
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    updated = http.put(f"/Patient/{pid}", json={**_patient(value), "id": pid, "gender": "male"},
                       headers={"Content-Type": JSON, "If-Match": 'W/"1"'})
    assert updated.status_code == 200 and updated.json()["meta"]["versionId"] == "2"
    stale = http.put(f"/Patient/{pid}", json={**_patient(value), "id": pid}, headers={"Content-Type": JSON, "If-Match": 'W/"1"'})
    assert stale.status_code == 412
    assert http.get(f"/Patient/{pid}/_history/1").json()["gender"] == "female"
    history = http.get(f"/Patient/{pid}/_history").json()
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["2", "1"]
    found = http.get("/Patient", params={"identifier": f"urn:test|{value}", "gender": "male"}).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [pid] and found["total"] == 1
    assert http.get("/Patient", params={"identifier": f"urn:test|{value}", "gender": "female"}).json()["total"] == 0
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": f"Patient/{pid}"}}
    assert http.post("/Observation", json=obs, headers={"Content-Type": JSON}).status_code == 201
    chained = http.get("/Observation", params={"subject:Patient.identifier": f"urn:test|{value}"}).json()
    assert chained["total"] == 1
    has = http.get("/Patient", params={"_has:Observation:subject:status": "final", "identifier": value}).json()
    assert [e["resource"]["id"] for e in has["entry"]] == [pid]
    assert http.delete(f"/Patient/{pid}").status_code in (200, 204)
    assert http.get(f"/Patient/{pid}").status_code == 410


def _transaction(*entries) -> dict:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def _post(value: str) -> dict:
    return {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": _patient(value), "request": {"method": "POST", "url": "Patient"}}


def test_a_transaction_with_several_writes_is_all_or_nothing(server):
    client, http = server
    one, two = uuid.uuid4().hex, uuid.uuid4().hex
    single = http.post("/", json=_transaction(_post(one)), headers={"Content-Type": JSON})
    assert single.status_code == 200, single.text
    response = http.post("/", json=_transaction(_post(two), _post(two)), headers={"Content-Type": JSON})
    assert response.status_code == 200 and http.get("/Patient", params={"identifier": two}).json()["total"] == 2
    # the POST is stored, then the PUT fails its If-Match (POST runs before PUT): all is taken back
    pid = http.get("/Patient", params={"identifier": one}).json()["entry"][0]["resource"]["id"]
    stale = {"resource": {**_patient(one), "id": pid}, "request": {"method": "PUT", "url": f"Patient/{pid}",
                                                                   "ifMatch": 'W/"9"'}}
    sessions = len(client.sessions)
    refused = http.post("/", json=_transaction(_post(one + "x"), stale), headers={"Content-Type": JSON})
    assert refused.status_code == 412, refused.text
    assert http.get("/Patient", params={"identifier": one + "x"}).json()["total"] == 0
    assert http.get(f"/Patient/{pid}").json()["meta"]["versionId"] == "1"
    assert len(client.sessions) > sessions and not any(s.in_transaction for s in client.sessions)
    assert any(s.aborted for s in client.sessions[sessions:])


def test_a_standalone_server_is_refused_at_start(monkeypatch, capsys):
    monkeypatch.setattr(pymongo, "MongoClient", lambda url, **options: Standalone())
    with pytest.raises(ReplicaSetRequired, match="replica set"):
        create_app(Settings(storage="mongodb://db.example:27017/evi_test"))
    assert main(["load", "--storage", "mongodb://db.example:27017/evi_test", "examples/valid"]) == 2
    err = capsys.readouterr().err
    assert "standalone" in err and "rs.initiate()" in err and "Traceback" not in err
