"""Durable before the answer (domain.md §6): a real ``evi-fhir serve`` killed with
SIGKILL right after answering loses none of the answered requests' AuditEvents, and the
chain of what survived verifies after the restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid

import httpx

from fhir_server.cli import main
from tests.support.live_server import free_port

REQUEST_ID = "XrequestId"


def _serve(port: int, storage: str) -> subprocess.Popen:
    env = {**os.environ, "EVI_STORAGE": storage, "EVI_AUDIT": "on"}
    return subprocess.Popen([sys.executable, "-m", "fhir_server.cli", "serve", "--port", str(port), "--log-level",
                             "warning", "--no-access-log"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def _wait(base: str, proc: subprocess.Popen) -> None:
    import time

    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, proc.stderr.read().decode()
        try:
            httpx.get(f"{base}/metadata", timeout=2)
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.1)


def _logged_request_ids(base: str) -> set[str]:
    found, url = set(), f"{base}/AuditEvent?_count=1000"
    while url:
        body = httpx.get(url, timeout=30).json()
        for entry in body.get("entry", []):
            for entity in entry["resource"]["entity"]:
                if entity.get("type", {}).get("code") == REQUEST_ID:
                    found.add(entity["what"]["identifier"]["value"])
        url = next((link["url"] for link in body["link"] if link["relation"] == "next"), None)
    return found


def test_kill_9_right_after_the_answers_loses_no_audit_event(tmp_path):
    storage = f"sqlite://{tmp_path / 'evi.db'}"
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    proc = _serve(port, storage)
    answered: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    try:
        _wait(base, proc)
        pid = httpx.post(f"{base}/Patient", json={"resourceType": "Patient"}).json()["id"]

        def client(k: int) -> None:
            with httpx.Client(base_url=base, timeout=10) as http:
                i = 0
                while not stop.is_set():
                    rid = uuid.uuid4().hex
                    try:
                        if i % 2:
                            r = http.get(f"/Patient/{pid}", headers={"X-Request-Id": rid})
                        else:
                            r = http.post("/Observation", headers={"X-Request-Id": rid}, json={
                                "resourceType": "Observation", "status": "final", "code": {"text": f"{k}-{i}"},
                                "subject": {"reference": f"Patient/{pid}"}})
                    except httpx.TransportError:
                        return  # killed under it: never answered
                    assert r.status_code < 300, r.text
                    with lock:
                        answered.append(rid)
                        if len(answered) >= 150:
                            stop.set()
                            os.kill(proc.pid, signal.SIGKILL)  # the moment an answer is in
                    i += 1

        threads = [threading.Thread(target=client, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert len(answered) >= 150

    again = _serve(port, storage)
    try:
        _wait(base, again)
        logged = _logged_request_ids(base)
    finally:
        again.terminate()
        again.wait(timeout=30)
    missing = [rid for rid in answered if rid not in logged]
    assert not missing, f"{len(missing)} of {len(answered)} answered requests have no AuditEvent"
    assert main(["audit", "verify", "--storage", storage]) == 0
