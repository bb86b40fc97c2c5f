"""Durable delivery (domain.md §7): events recorded while the receiver is down survive the
server being killed with SIGKILL, and arrive in order once both are back; several server
processes on one database never send one event twice at the same time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import httpx

from tests.support.live_server import LiveServer, free_port
from tests.support.notify import FHIR_JSON, create_subscription, subscription, task, wait_status
from tests.support.webhook import Receiver, event_numbers


def _serve(db, port: int) -> subprocess.Popen:
    env = {**os.environ, "EVI_NOTIFY_RETRY_FIRST_SECONDS": "0.2", "EVI_NOTIFY_RETRY_MAX_SECONDS": "0.5"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fhir_server.cli", "serve", "--log-level", "warning", "--no-access-log",
         "--port", str(port), "--storage", f"sqlite://{db}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
    )
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"evi-fhir serve exited: {proc.stderr.read().decode()}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/fhir/metadata", timeout=2)
            return proc
        except httpx.TransportError:
            if time.monotonic() > deadline:
                proc.kill()
                raise AssertionError("evi-fhir serve did not come up")
            time.sleep(0.1)


def test_events_survive_a_dead_receiver_and_kill_9_and_arrive_in_order(tmp_path):
    db, port = tmp_path / "evi.db", free_port()
    owner = f"Organization/o-{uuid.uuid4().hex[:8]}"
    hook = Receiver().start()
    server = _serve(db, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/fhir", timeout=30) as client:
            sub = create_subscription(client, subscription("task-assigned", hook.url, filters=(f"Task?owner={owner}",)))
            wait_status(client, sub["id"], "active")
            hook.stop()  # the receiver goes down
            written = []
            for _ in range(3):
                r = client.post("/Task", json=task(owner), headers=FHIR_JSON)
                assert r.status_code == 201
                written.append(r.json()["id"])
            time.sleep(1.0)  # attempts fail against the closed port meanwhile
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
        hook.start()  # the receiver is back, on the same port
        server = _serve(db, port)
        hook.wait_for(lambda: hook.events() == [1, 2, 3], timeout=30)
    finally:
        server.kill()
        server.wait(timeout=10)
        hook.stop()
    focus = [e["fullUrl"].rsplit("/", 1)[1] for b in hook.bundles("event-notification") for e in b["entry"][1:]]
    assert focus == written


def test_two_processes_on_one_database_never_send_an_event_twice_at_once(tmp_path):
    """Both servers' workers serve the same outbox: every event goes out exactly once while
    the receiver answers (a lease per subscriber), whichever process recorded it."""
    db = tmp_path / "shared.db"
    owner = f"Organization/o-{uuid.uuid4().hex[:8]}"
    with Receiver() as hook, LiveServer(storage=f"sqlite://{db}") as a, LiveServer(storage=f"sqlite://{db}") as b:
        with httpx.Client(base_url=a.base_url, timeout=30) as ca, httpx.Client(base_url=b.base_url, timeout=30) as cb:
            sub = create_subscription(ca, subscription("task-assigned", hook.url, filters=(f"Task?owner={owner}",),
                                                       max_count=1))
            wait_status(ca, sub["id"], "active")
            for i in range(20):
                client = ca if i % 2 else cb
                assert client.post("/Task", json=task(owner), headers=FHIR_JSON).status_code == 201
            hook.wait_for(lambda: len(hook.events()) >= 20, timeout=30)
            time.sleep(0.5)  # anything sent twice would arrive by now
    numbers = [n for b in hook.bundles("event-notification") for n in event_numbers(b)]
    assert numbers == list(range(1, 21))
