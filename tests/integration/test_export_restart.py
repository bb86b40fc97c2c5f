"""An export job outlives its process: a real ``evi-fhir serve`` is killed (SIGKILL) while
it writes a job, another is started on the same database, takes the job over once the
dead one's lease has run out, and finishes it: every resource exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import orjson
import pytest

from tests.support.live_server import free_port

N = 300
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def _serve(folder, port: int, log) -> subprocess.Popen:
    env = {**os.environ, "EVI_EXPORT_DIR": str(folder / "exports"), "EVI_EXPORT_BATCH_SIZE": "20",
           "EVI_EXPORT_RATE": "150", "EVI_EXPORT_LEASE_SECONDS": "2"}
    return subprocess.Popen(
        [sys.executable, "-m", "fhir_server.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--storage", f"sqlite://{folder / 'evi.db'}", "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=log, env=env,
    )


def _wait_up(base: str, proc: subprocess.Popen, log) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise AssertionError(f"evi-fhir serve exited: {log.read().decode()}")
        try:
            if httpx.get(f"{base}/metadata", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError("evi-fhir serve did not come up")


def _percent(progress: str) -> int:
    return int(progress.split("%")[0]) if "%" in progress else 0


def test_a_job_completes_after_kill_9_and_a_restart(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    with open(tmp_path / "serve.log", "w+b") as log:
        first = _serve(tmp_path, port, log)
        try:
            _wait_up(base, first, log)
            entries = [{"resource": {"resourceType": "Patient", "gender": "female", "birthDate": "2012-01-01"},
                        "request": {"method": "POST", "url": "Patient"}} for _ in range(N)]
            r = httpx.post(base, json={"resourceType": "Bundle", "type": "transaction", "entry": entries},
                           headers=FHIR_JSON, timeout=120)
            assert r.status_code == 200, r.text[:300]
            created = {e["response"]["location"].split("/")[1] for e in r.json()["entry"]}
            kick = httpx.get(f"{base}/Patient/$export", headers={**FHIR_JSON, "Prefer": "respond-async"}, timeout=30)
            assert kick.status_code == 202, kick.text
            status_url = kick.headers["content-location"]
            deadline = time.monotonic() + 60
            while True:  # kill it in the middle of the job
                poll = httpx.get(status_url, timeout=30)
                assert poll.status_code == 202, "the job ended before it could be killed"
                if _percent(poll.headers["x-progress"]) >= 20:
                    break
                assert time.monotonic() < deadline
                time.sleep(0.05)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        second = _serve(tmp_path, port, log)  # the same address: the status URL stays valid
        try:
            _wait_up(base, second, log)
            deadline = time.monotonic() + 90
            while (poll := httpx.get(status_url, timeout=30)).status_code == 202:
                assert time.monotonic() < deadline, poll.headers.get("x-progress")
                time.sleep(0.2)
            assert poll.status_code == 200, poll.text
            (patients,) = [item for item in poll.json()["output"] if item["type"] == "Patient"]
            body = httpx.get(patients["url"], timeout=30).content
            lines = [orjson.loads(line)["id"] for line in body.splitlines()]
            assert len(lines) == patients["count"] == len(set(lines))
            assert set(lines) == created
        finally:
            second.terminate()
            second.wait(timeout=10)
