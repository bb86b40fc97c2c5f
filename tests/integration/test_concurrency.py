"""Concurrent writers: If-Match races, concurrent creates, two app instances on one SQLite file."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support.live_server import LiveServer

FHIR_JSON = "application/fhir+json"
SYS = "urn:evi:test:concurrency"


def patient(value: str, **extra) -> dict:
    return {"resourceType": "Patient", "identifier": [{"system": SYS, "value": value}], **extra}


def race(base_urls: list[str], n: int, request) -> list[httpx.Response]:
    """Run ``request(client, i)`` from ``n`` threads released together; client i talks to base_urls[i % len]."""
    clients = [httpx.Client(base_url=base_urls[i % len(base_urls)], timeout=60) for i in range(n)]
    try:
        for c in clients:  # open the connections before the start line
            assert c.get("/metadata").status_code == 200
        barrier = threading.Barrier(n)

        def run(i: int) -> httpx.Response:
            barrier.wait()
            return request(clients[i], i)

        with ThreadPoolExecutor(max_workers=n) as pool:
            return list(pool.map(run, range(n)))
    finally:
        for c in clients:
            c.close()


def if_match_race(base_urls: list[str], rid: str, value: str, n: int = 20) -> list[httpx.Response]:
    def put(client: httpx.Client, i: int) -> httpx.Response:
        return client.put(
            f"/Patient/{rid}",
            json={**patient(value, name=[{"family": f"writer-{i}"}]), "id": rid},
            headers={"Content-Type": FHIR_JSON, "If-Match": 'W/"1"'},
        )

    return race(base_urls, n, put)


def assert_single_winner(http: httpx.Client, rid: str, responses: list[httpx.Response]) -> None:
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [412] * (len(responses) - 1), statuses
    winner = next(r for r in responses if r.status_code == 200)
    assert winner.headers["etag"] == 'W/"2"'
    for loser in (r for r in responses if r.status_code == 412):
        assert loser.json()["resourceType"] == "OperationOutcome"
    history = http.get(f"/Patient/{rid}/_history").json()
    assert history["total"] == 2
    assert [e["response"]["etag"] for e in history["entry"]] == ['W/"2"', 'W/"1"']
    current = http.get(f"/Patient/{rid}")
    assert current.headers["etag"] == 'W/"2"'
    assert current.json()["name"] == winner.json()["name"]


def test_if_match_race_has_exactly_one_winner(server, http, uid):
    r = http.post("/Patient", json=patient(uid), headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    responses = if_match_race([server.base_url], rid, uid)
    assert_single_winner(http, rid, responses)


def test_concurrent_creates_get_distinct_ids_and_are_all_readable(server, http, uid):
    def create_ten(worker: int) -> list[str]:
        ids = []
        with httpx.Client(base_url=server.base_url, timeout=60) as client:
            for k in range(10):
                r = client.post(
                    "/Patient",
                    json=patient(uid, name=[{"family": f"w{worker}-{k}"}]),
                    headers={"Content-Type": FHIR_JSON, "Prefer": "return=minimal"},
                )
                assert r.status_code == 201, r.text
                assert r.headers["etag"] == 'W/"1"'
                ids.append(r.headers["location"].split("/Patient/")[1].split("/")[0])
        return ids

    with ThreadPoolExecutor(max_workers=5) as pool:
        ids = [rid for chunk in pool.map(create_ten, range(5)) for rid in chunk]
    assert len(ids) == 50
    assert len(set(ids)) == 50
    families = set()
    for rid in ids:
        r = http.get(f"/Patient/{rid}")
        assert r.status_code == 200, r.text
        assert r.json()["meta"]["versionId"] == "1"
        families.add(r.json()["name"][0]["family"])
    assert len(families) == 50
    found = http.get("/Patient", params={"identifier": f"{SYS}|{uid}", "_count": "100"}).json()
    assert found["total"] == 50
    assert {e["resource"]["id"] for e in found["entry"]} == set(ids)


def test_concurrent_conditional_creates_create_once(server, http, uid):
    def create(client: httpx.Client, i: int) -> httpx.Response:
        return client.post(
            "/Patient",
            json=patient(uid, name=[{"family": f"c{i}"}]),
            headers={"Content-Type": FHIR_JSON, "If-None-Exist": f"identifier={SYS}|{uid}"},
        )

    responses = race([server.base_url], 10, create)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 9 + [201], statuses
    assert len({r.json()["id"] for r in responses}) == 1
    assert http.get("/Patient", params={"identifier": f"{SYS}|{uid}"}).json()["total"] == 1


def test_concurrent_transactions_on_one_resource_serialise(server, http, uid):
    """Ten transactions each bump the same Patient (If-Match on what they read): one wins per version."""
    r = http.post("/Patient", json=patient(uid), headers={"Content-Type": FHIR_JSON})
    rid = r.json()["id"]

    def bump(client: httpx.Client, i: int) -> httpx.Response:
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": patient(f"{uid}-tx{i}"),
                    "request": {"method": "POST", "url": "Patient"},
                },
                {
                    "resource": {**patient(uid, name=[{"family": f"tx{i}"}]), "id": rid},
                    "request": {"method": "PUT", "url": f"Patient/{rid}", "ifMatch": 'W/"1"'},
                },
            ],
        }
        return client.post("", json=bundle, headers={"Content-Type": FHIR_JSON})

    responses = race([server.base_url], 10, bump)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [412] * 9, statuses
    assert http.get(f"/Patient/{rid}/_history").json()["total"] == 2
    # only the winner's other entry exists: the losers rolled back completely
    created = sum(
        http.get("/Patient", params={"identifier": f"{SYS}|{uid}-tx{i}"}).json()["total"] for i in range(10)
    )
    assert created == 1


@pytest.fixture
def two_servers(tmp_path):
    """Two app instances (two store connections) on one SQLite file."""
    db = tmp_path / "shared.db"
    with LiveServer(storage=f"sqlite://{db}") as a, LiveServer(storage=f"sqlite://{db}") as b:
        yield a, b


def test_if_match_race_across_two_app_instances_on_one_file(two_servers, uid):
    a, b = two_servers
    with httpx.Client(base_url=a.base_url, timeout=60) as http_a, httpx.Client(base_url=b.base_url, timeout=60) as http_b:
        r = http_a.post("/Patient", json=patient(uid), headers={"Content-Type": FHIR_JSON})
        assert r.status_code == 201, r.text
        rid = r.json()["id"]
        # B sees what A wrote
        assert http_b.get(f"/Patient/{rid}").status_code == 200
        responses = if_match_race([a.base_url, b.base_url], rid, uid)
        assert_single_winner(http_a, rid, responses)
        assert_single_winner(http_b, rid, responses)


def test_creates_across_two_app_instances_on_one_file(two_servers, uid):
    a, b = two_servers

    def create(client: httpx.Client, i: int) -> httpx.Response:
        return client.post(
            "/Patient", json=patient(uid, name=[{"family": f"x{i}"}]), headers={"Content-Type": FHIR_JSON}
        )

    with httpx.Client(base_url=b.base_url, timeout=60) as http:
        before = http.get("/_history").json()["total"]  # the implementation guide, stored at start-up
    responses = race([a.base_url, b.base_url], 20, create)
    assert [r.status_code for r in responses] == [201] * 20, [r.text for r in responses if r.status_code != 201]
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 20
    with httpx.Client(base_url=b.base_url, timeout=60) as http:
        assert http.get("/Patient", params={"identifier": f"{SYS}|{uid}"}).json()["total"] == 20
        history = http.get("/_history", params={"_count": "1000"}).json()
        assert history["total"] == before + 20
        stamps = [e["response"]["lastModified"] for e in history["entry"]]
        # one timeline: newest first, no two versions with the same instant
        assert stamps == sorted(stamps, reverse=True)
        assert len(set(stamps)) == before + 20


def test_conditional_creates_across_two_app_instances_create_once(two_servers, uid):
    a, b = two_servers

    def create(client: httpx.Client, i: int) -> httpx.Response:
        return client.post(
            "/Patient",
            json=patient(uid),
            headers={"Content-Type": FHIR_JSON, "If-None-Exist": f"identifier={SYS}|{uid}"},
        )

    responses = race([a.base_url, b.base_url], 10, create)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 9 + [201], statuses
    assert len({r.json()["id"] for r in responses}) == 1
