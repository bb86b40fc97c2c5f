"""The whole server on the MongoDB store (mongomock), over HTTP on a loopback port.

``standalone``: built from a ``mongodb://`` storage URL, as ``evi-fhir serve``
does; mongomock cannot answer ``hello``, so the store assumes a standalone
server: single writes work, a transaction with several writes gets 501.
``emulated``: the store of the shared suite, where several writes per unit of
work are allowed (as on a replica set).
"""

from __future__ import annotations

import uuid

import httpx
import mongomock
import pymongo
import pytest

import fhir_server.app
from fhir_server.storage.mongo import EMULATED, STANDALONE, MongoStore
from tests.support.live_server import LiveServer

JSON = "application/fhir+json"


@pytest.fixture(params=[STANDALONE, EMULATED])
def server(request, monkeypatch):
    client = mongomock.MongoClient()
    if request.param == STANDALONE:
        monkeypatch.setattr(pymongo, "MongoClient", lambda url, **options: client)
    else:
        monkeypatch.setattr(fhir_server.app, "open_store", lambda url: MongoStore(client, "evi", transactions=EMULATED))
    with LiveServer(storage="mongodb://db.example:27017/evi_test") as live:
        assert live.app.state.runtime.store.mode == request.param
        with httpx.Client(base_url=live.base_url, timeout=30, headers={"Accept": JSON}) as http:
            yield request.param, http


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


def test_transactions_need_a_replica_set_for_several_writes(server):
    mode, http = server
    one, two = uuid.uuid4().hex, uuid.uuid4().hex
    single = http.post("/", json=_transaction(_post(one)), headers={"Content-Type": JSON})
    assert single.status_code == 200, single.text
    response = http.post("/", json=_transaction(_post(two), _post(two)), headers={"Content-Type": JSON})
    stored = http.get("/Patient", params={"identifier": two}).json()["total"]
    if mode == STANDALONE:
        assert response.status_code == 501, response.text
        issue = response.json()["issue"][0]
        assert issue["code"] == "not-supported" and "replica set" in issue["diagnostics"]
        assert stored == 0  # refused, not applied half-way
    else:
        assert response.status_code == 200 and stored == 2
