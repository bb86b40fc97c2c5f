"""Two transfers racing for a mobile team's last free place, through two server instances
sharing one SQLite file: exactly one is accepted, the other refused for capacity."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import httpx
import pytest

from tests.support.evi import FHIR_JSON, TEST_REGION, landed_of, load_examples, mobile_team, post_transaction, sis_transfer
from tests.support.live_server import LiveServer

ROUNDS = 5


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory):
    db = tmp_path_factory.mktemp("race") / "evi.db"
    with LiveServer(storage=f"sqlite://{db}", region_file=str(TEST_REGION)) as one:
        with httpx.Client(base_url=one.base_url, timeout=60) as client:
            load_examples(client)
        with LiveServer(storage=f"sqlite://{db}", region_file=str(TEST_REGION)) as two:
            yield one, two


def _born() -> date:
    return date.today() - timedelta(days=random.randint(12 * 366 + 2, 17 * 365 + 360))


def _requested_transfer(client: httpx.Client, team: str) -> dict:
    task_ref = landed_of(post_transaction(client, sis_transfer(born=_born(), team=team)), "Task")
    task = client.get(f"/{task_ref}").json()
    assert task["status"] == "requested"
    return task


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_two_transfers_race_for_the_last_place(two_servers, round_):
    one, two = two_servers
    clients = [httpx.Client(base_url=s.base_url, timeout=60, headers={"Accept": "application/fhir+json"})
               for s in (one, two)]
    try:
        r = clients[0].post("/Organization", json=mobile_team(2), headers=FHIR_JSON)
        assert r.status_code == 201, r.text
        team = f"Organization/{r.json()['id']}"
        # one place taken by an accepted transfer, one left
        holder = _requested_transfer(clients[0], team)
        assert clients[0].put(f"/Task/{holder['id']}", json={**holder, "status": "accepted"},
                              headers=FHIR_JSON).status_code == 200
        racers = [_requested_transfer(clients[i], team) for i in range(2)]
        for c in clients:  # warm connections before the start line
            assert c.get("/metadata").status_code == 200
        barrier = threading.Barrier(2)

        def accept(i: int) -> httpx.Response:
            barrier.wait()
            task = {**racers[i], "status": "accepted"}
            return clients[i].put(f"/Task/{task['id']}", json=task, headers=FHIR_JSON)

        with ThreadPoolExecutor(max_workers=2) as pool:
            responses = list(pool.map(accept, range(2)))
        assert sorted(r.status_code for r in responses) == [200, 422], [r.text for r in responses]
        loser = next(r for r in responses if r.status_code == 422)
        assert [i["diagnostics"].split(":")[0] for i in loser.json()["issue"]] == ["capacity"]
        statuses = sorted(clients[0].get(f"/Task/{t['id']}").json()["status"] for t in racers)
        assert statuses == ["accepted", "requested"]
        accepted = clients[1].get("/Task", params={
            "owner": team, "status": "accepted",
            "code": "https://evi-fhir.org/fhir/CodeSystem/evi-task-type|transfer-care-responsibility"}).json()
        assert len(accepted.get("entry", [])) == 2  # the holder and the winner
    finally:
        for c in clients:
            c.close()
