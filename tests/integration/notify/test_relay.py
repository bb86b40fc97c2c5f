"""Relays (domain.md §7) with a second evi-fhir as the upstream FHIR server: the triaged
referral's Task, the referral and the Patient appear there; a repeated delivery changes
nothing; ``evi-fhir relay status`` reports what went."""

from __future__ import annotations

import time
from datetime import date

import httpx
import orjson
import pytest

from fhir_server.cli import main
from fhir_server.notify.relay import RelayWriter
from tests.support.evi import CS, FHIR_JSON, TEST_REGION, load_examples, new_intake_task, triage_parameters
from tests.support.live_server import LiveServer

ADVICE = f"Task?triage-outcome={CS}evi-triage-outcome|advice"


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """The upstream (a plain evi-fhir) and the region's server relaying ``triage-completed``
    with outcome ``advice`` to it."""
    folder = tmp_path_factory.mktemp("relay")
    with LiveServer(storage=f"sqlite://{folder / 'upstream.db'}") as upstream:
        region = folder / "region.toml"
        region.write_text(TEST_REGION.read_text() + f'\n[[relay]]\ntopic = "triage-completed"\n'
                          f'filter = "{ADVICE}"\nurl = "{upstream.base_url}"\n'
                          'headers = { "X-Relay" = "evi-test" }\n')
        db = folder / "evi.db"
        with LiveServer(storage=f"sqlite://{db}", region_file=str(region), notify_retry_first_seconds=0.2,
                        notify_retry_max_seconds=1.0) as evi:
            with httpx.Client(base_url=evi.base_url, timeout=30) as client:
                load_examples(client)
            yield evi, upstream, region, db


def _wait_upstream(upstream: httpx.Client, path: str, check, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        r = upstream.get(path)
        if r.status_code == 200 and check(r.json()):
            return r.json()
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not arrive upstream: {r.status_code} {r.text[:300]}")
        time.sleep(0.1)


def _triage(evi: httpx.Client, outcome: str) -> dict:
    task = new_intake_task(evi, "self-referral-guardian", born=date(2012, 5, 6))
    r = evi.post(f"/Task/{task['id']}/$triage", json=triage_parameters(outcome, note={"valueString": "klart"}),
                 headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    return evi.get(f"/Task/{task['id']}").json()


def _history_total(upstream: httpx.Client, ref: str) -> int:
    return len(upstream.get(f"/{ref}/_history").json().get("entry", []))


def test_the_triaged_referral_and_its_patient_appear_upstream_once(servers, capsys):
    live, up, region, db = servers
    with httpx.Client(base_url=live.base_url, timeout=30) as evi, httpx.Client(base_url=up.base_url,
                                                                             timeout=30) as upstream:
        skipped = _triage(evi, "not-eligible")  # outside the relay's filter
        task = _triage(evi, "advice")
        relayed = _wait_upstream(upstream, f"/Task/{task['id']}", lambda t: t["status"] == "completed")
        referral, patient = task["focus"]["reference"], task["for"]["reference"]
        for ref in (referral, patient):
            here, there = evi.get(f"/{ref}").json(), upstream.get(f"/{ref}").json()
            assert {k: v for k, v in there.items() if k != "meta"} == {k: v for k, v in here.items() if k != "meta"}
        assert relayed["output"] == task["output"]
        assert upstream.get(f"/Task/{skipped['id']}").status_code == 404
        written = [f"Task/{task['id']}", referral, patient]
        before = {ref: (upstream.get(f"/{ref}").json()["meta"]["versionId"], _history_total(upstream, ref))
                  for ref in written}

        # the same event delivered again (as after a crash between the PUTs and the outbox's
        # record of them): the upstream keeps what it has, not even a new version
        runtime = live.app.state.runtime
        relay = runtime.services["notify"].relays[0]
        with runtime.store.unit_of_work(write=False) as uow:
            version = uow.current("Task", task["id"])
            refs = RelayWriter.referenced(orjson.loads(version.body), live.base_url)
            referenced = uow.load_refs([r for r in refs if r != ("Task", task["id"])])
        assert set(RelayWriter(relay).write(version, referenced)) >= {("Task", task["id"]), tuple(patient.split("/"))}
        after = {ref: (upstream.get(f"/{ref}").json()["meta"]["versionId"], _history_total(upstream, ref))
                 for ref in written}
        assert after == before
        # deleted upstream meanwhile (read answers 410): the next delivery writes it again
        assert upstream.delete(f"/{patient}").status_code in (200, 204)
        assert upstream.get(f"/{patient}").status_code == 410
        RelayWriter(relay).write(version, referenced)
        assert upstream.get(f"/{patient}").status_code == 200

    capsys.readouterr()
    assert main(["relay", "status", "--storage", f"sqlite://{db}", "--region", str(region)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    assert "topic=triage-completed" in lines[0] and f"url={up.base_url}" in lines[0]
    assert "delivered=1 " in lines[0] and "backlog=0 " in lines[0] and "last_error=-" in lines[0]


def test_relay_status_without_relays_says_so(tmp_path, capsys):
    assert main(["relay", "status", "--storage", f"sqlite://{tmp_path / 'x.db'}", "--region", str(TEST_REGION)]) == 0
    assert "no [[relay]] tables" in capsys.readouterr().out
