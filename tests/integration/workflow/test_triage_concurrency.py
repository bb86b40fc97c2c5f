"""Rule 4, "double booking impossible": $triage calls racing for one free Slot from three
server processes' worth of connections on one SQLite file (two in-process LiveServers,
each with its own store connection, and one `evi-fhir serve` subprocess)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import httpx
import pytest

from tests.support.evi import (
    CS,
    TEST_REGION,
    load_examples,
    new_intake_task,
    new_slot,
    triage_parameters,
)
from tests.support.live_server import LiveServer, free_port

SCENARIOS = ("self-referral-guardian", "school-health-referral-npf", "placed-child-phoning")
N = 10


def _wait_for(url: str, proc: subprocess.Popen, log) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise AssertionError(f"evi-fhir serve exited: {log.read().decode()}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError("evi-fhir serve did not come up")


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """Base URLs of three servers sharing one SQLite file (examples/valid loaded once)."""
    folder = tmp_path_factory.mktemp("triage-race")
    storage = f"sqlite://{folder / 'evi.db'}"
    with LiveServer(storage=storage, region_file=str(TEST_REGION)) as first:
        with httpx.Client(base_url=first.base_url, timeout=30) as client:
            load_examples(client)
        with LiveServer(storage=storage, region_file=str(TEST_REGION)) as second:
            port = free_port()
            with open(folder / "serve.log", "w+b") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "fhir_server.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                     "--storage", storage, "--region", str(TEST_REGION), "--log-level", "warning"],
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
                try:
                    third = f"http://127.0.0.1:{port}/fhir"
                    _wait_for(f"{third}/metadata", proc, log)
                    yield [first.base_url, second.base_url, third]
                finally:
                    proc.terminate()
                    proc.wait(timeout=10)


@pytest.fixture
def http(servers):
    with httpx.Client(base_url=servers[0], timeout=30, headers={"Accept": "application/fhir+json"}) as client:
        yield client


def race(base_urls: list[str], calls: list[tuple[str, dict]]) -> list[httpx.Response]:
    """POST each (path, body) from its own thread, all released together; call i goes to server i % 3."""
    clients = [httpx.Client(base_url=base_urls[i % len(base_urls)], timeout=60) for i in range(len(calls))]
    try:
        for client in clients:  # connections open before the start line
            assert client.get("/metadata").status_code == 200
        barrier = threading.Barrier(len(calls))

        def run(i: int) -> httpx.Response:
            path, body = calls[i]
            barrier.wait()
            return clients[i].post(path, json=body, headers={"Content-Type": "application/fhir+json"})

        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            return list(pool.map(run, range(len(calls))))
    finally:
        for client in clients:
            client.close()


def _tasks(http: httpx.Client, n: int) -> list[dict]:
    return [new_intake_task(http, SCENARIOS[i % 3], born=date(2008 + i, 1 + i, 10 + i)) for i in range(n)]


def _slot_ref(slot_id: str) -> dict:
    return {"valueReference": {"reference": f"Slot/{slot_id}"}}


@pytest.mark.parametrize("round_", range(2))
def test_ten_triage_calls_race_for_one_slot_and_exactly_one_wins(servers, http, round_):
    tasks = _tasks(http, N)
    slot_id = new_slot(http)
    params = triage_parameters("book-first-visit", slot=_slot_ref(slot_id))
    responses = race(servers, [(f"/Task/{t['id']}/$triage", params) for t in tasks])

    statuses = [r.status_code for r in responses]
    assert sorted(statuses) == [200] + [409] * (N - 1), [(r.status_code, r.text[:300]) for r in responses]
    for loser in (r for r in responses if r.status_code == 409):
        assert loser.json()["resourceType"] == "OperationOutcome"
    winner_index = statuses.index(200)
    winner = responses[winner_index].json()
    (appointment,) = [p["resource"] for p in winner["parameter"] if p["name"] == "created"]

    # exactly one Appointment references the Slot: the winner's
    booked = http.get("/Appointment", params={"slot": f"Slot/{slot_id}"}).json()
    assert [e["resource"]["id"] for e in booked.get("entry", [])] == [appointment["id"]]
    # the Slot's history has exactly one busy version, on top of the free one
    history = http.get(f"/Slot/{slot_id}/_history").json()
    assert history["total"] == 2
    assert [e["resource"]["status"] for e in history["entry"]] == ["busy", "free"]
    # the winner's Task is completed and points at the Appointment; the others are untouched
    for i, task in enumerate(tasks):
        stored = http.get(f"/Task/{task['id']}").json()
        if i == winner_index:
            assert (stored["status"], stored["meta"]["versionId"]) == ("completed", "2")
            created = [o["valueReference"]["reference"] for o in stored["output"] if "valueReference" in o]
            assert created == [f"Appointment/{appointment['id']}"]
        else:
            assert (stored["status"], stored["meta"]["versionId"]) == ("requested", "1")
            assert "output" not in stored


def test_ten_triage_calls_race_for_one_task_and_exactly_one_wins(servers, http):
    (task,) = _tasks(http, 1)
    outcomes = ["advice", "not-eligible", "acute-handover", "redirect-existing-contact"]
    calls = [(f"/Task/{task['id']}/$triage", triage_parameters(outcomes[i % 4])) for i in range(N)]
    handovers_before = http.get("/Task", params={"code": f"{CS}evi-task-type|acute-handover",
                                                 "patient": task["for"]["reference"], "_summary": "count"}).json()
    responses = race(servers, calls)

    statuses = [r.status_code for r in responses]
    assert sorted(statuses) == [200] + [409] * (N - 1), [(r.status_code, r.text[:300]) for r in responses]
    winning_outcome = outcomes[statuses.index(200) % 4]
    history = http.get(f"/Task/{task['id']}/_history").json()
    assert history["total"] == 2
    completed = history["entry"][0]["resource"]
    assert completed["status"] == "completed"
    assert [o["valueCoding"]["code"] for o in completed["output"] if "valueCoding" in o] == [winning_outcome]
    handovers = http.get("/Task", params={"code": f"{CS}evi-task-type|acute-handover",
                                          "patient": task["for"]["reference"], "_summary": "count"}).json()
    assert handovers["total"] - handovers_before["total"] == (1 if winning_outcome == "acute-handover" else 0)
