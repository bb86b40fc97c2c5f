"""Each request's budget (issue 11): a time limit that answers 503 too-costly and rolls
back, and a limit on the resources one answer carries (400 too-costly). Reads never wait
for the SQLite writer, so a held write lock stalls only writers."""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support.live_server import LiveServer

FHIR_JSON = {"Content-Type": "application/fhir+json"}
SYS = "urn:evi:test:budget"


def _transaction(n: int, uid: str, **extra) -> dict:
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient", "identifier": [{"system": SYS, "value": uid}], **extra},
         "request": {"method": "POST", "url": "Patient"}} for _ in range(n)]}


@pytest.fixture
def file_server(tmp_path):
    db = tmp_path / "budget.db"
    with LiveServer(storage=f"sqlite://{db}", request_timeout=1.0) as live:
        yield live, db


def test_a_held_write_lock_stalls_writers_only_and_they_get_503_within_the_budget(file_server, uid):
    live, db = file_server
    with httpx.Client(base_url=live.base_url, timeout=30) as c:
        rid = c.post("/Patient", json={"resourceType": "Patient"}, headers=FHIR_JSON).json()["id"]
        other = sqlite3.connect(db, isolation_level=None, timeout=1)
        other.execute("BEGIN IMMEDIATE")  # another process holds SQLite's one write lock
        try:
            with ThreadPoolExecutor(4) as pool:
                started = time.monotonic()
                write = pool.submit(c.post, "/Patient", json={"resourceType": "Patient",
                                    "identifier": [{"system": SYS, "value": uid}]}, headers=FHIR_JSON)
                reads = [pool.submit(c.get, f"/Patient/{rid}") for _ in range(5)]
                searches = [pool.submit(c.get, "/Patient", params={"_count": "5"}) for _ in range(5)]
                for f in reads + searches:
                    assert f.result().status_code == 200
                read_time = time.monotonic() - started
                answer = write.result()
                write_time = time.monotonic() - started
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert read_time < 0.8, read_time  # reads did not queue behind the lock
        assert answer.status_code == 503, answer.text
        issue = answer.json()["issue"][0]
        assert issue["code"] == "too-costly"
        assert 0.8 < write_time < 5, write_time
        assert c.get("/Patient", params={"identifier": f"{SYS}|{uid}"}).json()["total"] == 0  # nothing stored
        assert c.post("/Patient", json={"resourceType": "Patient"}, headers=FHIR_JSON).status_code == 201


def test_an_answer_larger_than_the_limit_is_400_too_costly(uid):
    with LiveServer(storage="sqlite://:memory:", max_response_entries=5) as live:
        with httpx.Client(base_url=live.base_url, timeout=30) as c:
            assert c.post("", json=_transaction(8, uid), headers=FHIR_JSON).status_code == 200
            query = {"identifier": f"{SYS}|{uid}"}
            assert len(c.get("/Patient", params={**query, "_count": "5"}).json()["entry"]) == 5
            r = c.get("/Patient", params={**query, "_count": "6"})
            assert r.status_code == 400, r.text
            assert r.json()["issue"][0]["code"] == "too-costly"
            assert "EVI_MAX_RESPONSE_ENTRIES" in r.json()["issue"][0]["diagnostics"]
            # a batch shares one budget: the second search of three no longer fits
            batch = {"resourceType": "Bundle", "type": "batch", "entry": [
                {"request": {"method": "GET", "url": f"Patient?identifier={SYS}|{uid}&_count=3"}} for _ in range(2)]}
            answer = c.post("", json=batch, headers=FHIR_JSON).json()
            statuses = [e["response"]["status"] for e in answer["entry"]]
            assert statuses[0].startswith("200") and statuses[1].startswith("400"), statuses


def test_includes_count_into_the_answer(uid):
    with LiveServer(storage="sqlite://:memory:", max_response_entries=6) as live:
        with httpx.Client(base_url=live.base_url, timeout=30) as c:
            org = c.post("/Organization", json={"resourceType": "Organization", "name": "x"}, headers=FHIR_JSON).json()
            patients = _transaction(5, uid, managingOrganization={"reference": f"Organization/{org['id']}"})
            assert c.post("", json=patients, headers=FHIR_JSON).status_code == 200
            params = {"identifier": f"{SYS}|{uid}", "_include": "Patient:organization", "_count": "5"}
            assert c.get("/Patient", params=params).status_code == 200  # 5 matches + 1 include
            params = {"_id": org["id"], "_revinclude": "Patient:organization"}
            r = c.get("/Organization", params=params)
            assert r.status_code == 200 and len(r.json()["entry"]) == 6
            patients = _transaction(1, uid, managingOrganization={"reference": f"Organization/{org['id']}"})
            assert c.post("", json=patients, headers=FHIR_JSON).status_code == 200
            r = c.get("/Organization", params=params)
            assert r.status_code == 400 and r.json()["issue"][0]["code"] == "too-costly"


def test_a_request_that_waited_past_its_budget_is_503_and_changes_nothing(uid):
    with LiveServer(storage="sqlite://:memory:", request_timeout=0.000001) as live:
        r = httpx.post(f"{live.base_url}/Patient", json={"resourceType": "Patient",
                       "identifier": [{"system": SYS, "value": uid}]}, headers=FHIR_JSON)
        assert r.status_code == 503 and r.json()["issue"][0]["code"] == "too-costly"
