"""What notifications cost and how fast they arrive (issue 14): create throughput with 10
active subscriptions matching every create vs none, delivery latency from commit to the
receiver, and notifications per second sustained to one endpoint.

A script, not a test: it prints numbers. See benchmarks/README.md.

    .venv/bin/python benchmarks/notify.py            # the figures of the README
    .venv/bin/python benchmarks/notify.py --quick    # a smoke run (seconds)

What it does
  1. Starts a webhook receiver on loopback (a ThreadingHTTPServer answering 200 at once,
     noting the arrival time and the event numbers and focus of each notification).
  2. Create throughput, --rounds times, alternating two `evi-fhir serve` processes on their
     own SQLite files: one without Subscriptions and one with 10 active ones
     (`task-assigned`, `Task?owner=Organization/bench`, id-only) that every created Task
     matches; POST /Task over --connections keep-alive connections for --seconds each.
     Reported: the median rates and their ratio (target >= 0.8). The delivery worker runs
     in the measured server process: what it costs to send 10 notifications per create is
     part of the figure.
  3. Latency: one subscription (id-only, max count 1), --latency-count creates one after
     another at --latency-rate per second; per event, the receiver's arrival time minus
     the Task's meta.lastUpdated (stamped in the writing unit of work, just before its
     commit): p50 / p99.
  4. Sustained rate: one subscription (id-only, max count 1, so one event per
     notification) while --burst Tasks are created in transactions of 100 as fast as the
     server takes them; notifications/s from the first arrival to the last, and the same
     with the default max count (20 events per notification at most) as events/s.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rest_core import StdlibClient, free_port, percentile  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
TOPIC = "https://evi-fhir.org/fhir/SubscriptionTopic/task-assigned"


class Receiver:
    """Notes (arrival time, event numbers, focus ids) of every event-notification."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, list[int], list[str], str]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                now = time.time()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                bundle = json.loads(body)
                params = bundle["entry"][0]["resource"]["parameter"]
                kind = next(p["valueCode"] for p in params if p["name"] == "type")
                if kind != "event-notification":
                    return
                sub = next(p["valueReference"]["reference"] for p in params if p["name"] == "subscription")
                numbers, focus = [], []
                for p in params:
                    if p["name"] == "notification-event":
                        parts = {q["name"]: q for q in p["part"]}
                        numbers.append(int(parts["event-number"]["valueString"]))
                        focus.append(parts["focus"]["valueReference"]["reference"].rsplit("/", 1)[1])
                with receiver.lock:
                    receiver.arrivals.append((now, numbers, focus, sub))

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def take(self) -> list[tuple[float, list[int], list[str], str]]:
        with self.lock:
            got, self.arrivals = self.arrivals, []
        return got

    def events(self) -> int:
        with self.lock:
            return sum(len(a[1]) for a in self.arrivals)

    def close(self) -> None:
        self.server.shutdown()


class Server:
    def __init__(self, db: Path, log: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/fhir"
        cmd = [sys.executable, "-m", "fhir_server.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
               "--storage", f"sqlite:///{db}", "--no-access-log", "--log-level", "warning"]
        self.log = open(log, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT,
                                     env={**os.environ, "EVI_NOTIFY_RETRY_FIRST_SECONDS": "1"})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited ({log})")
            try:
                client = StdlibClient(self.base, 5.0)
                if client.request("GET", "/metadata")[0] == 200:
                    client.close()
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server not ready")

    def client(self) -> StdlibClient:
        return StdlibClient(self.base, 60.0)

    def stop(self) -> None:
        self.proc.send_signal(2)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def task(owner: str = "Organization/bench") -> bytes:
    return json.dumps({"resourceType": "Task", "status": "requested", "intent": "order",
                       "identifier": [{"system": "urn:bench", "value": uuid.uuid4().hex}],
                       "owner": {"reference": owner}}).encode()


def subscribe(server: Server, endpoint: str, max_count: int | None = None) -> str:
    extensions = [{"url": BACKPORT + "backport-max-count", "valuePositiveInt": max_count}] if max_count else []
    body = {"resourceType": "Subscription", "status": "requested", "reason": "benchmark", "criteria": TOPIC,
            "meta": {"profile": [BACKPORT + "backport-subscription"]},
            "_criteria": {"extension": [{"url": BACKPORT + "backport-filter-criteria",
                                         "valueString": "Task?owner=Organization/bench"}]},
            "channel": {"type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json",
                        "_payload": {"extension": [{"url": BACKPORT + "backport-payload-content",
                                                    "valueCode": "id-only"}]},
                        **({"extension": extensions} if extensions else {})}}
    c = server.client()
    status, _, data = c.request("POST", "/Subscription", json.dumps(body).encode(), JSON)
    assert status == 201, data[:300]
    sid = json.loads(data)["id"]
    deadline = time.monotonic() + 30
    while json.loads(c.request("GET", f"/Subscription/{sid}", None, JSON)[2])["status"] != "active":
        if time.monotonic() > deadline:
            raise RuntimeError("the subscription did not turn active")
        time.sleep(0.05)
    c.close()
    return sid


def set_off(server: Server, sid: str) -> None:
    c = server.client()
    current = json.loads(c.request("GET", f"/Subscription/{sid}", None, JSON)[2])
    current["status"] = "off"
    status, _, data = c.request("PUT", f"/Subscription/{sid}", json.dumps(current).encode(), JSON)
    assert status == 200, data[:300]
    c.close()


def create_rate(server: Server, seconds: float, connections: int) -> float:
    counts = [0] * connections
    stop = time.monotonic() + seconds

    def worker(k: int) -> None:
        c = server.client()
        c.request("GET", "/metadata")  # the connection is open before the clock matters
        while time.monotonic() < stop:
            status, _, data = c.request("POST", "/Task", task(), JSON)
            assert status == 201, data[:300]
            counts[k] += 1
        c.close()

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - started)


def _instant(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def latency(server: Server, hook: Receiver, count: int, rate: float) -> tuple[float, float]:
    sid = subscribe(server, hook.url, max_count=1)
    hook.take()
    c = server.client()
    written: dict[str, float] = {}
    for _ in range(count):
        status, _, data = c.request("POST", "/Task", task(), JSON)
        assert status == 201, data[:300]
        created = json.loads(data)
        written[created["id"]] = _instant(created["meta"]["lastUpdated"])
        time.sleep(1 / rate)
    c.close()
    deadline = time.monotonic() + 60
    while hook.events() < count and time.monotonic() < deadline:
        time.sleep(0.05)
    waits = [(at - written[f]) * 1000 for at, _, focus, _ in hook.take() for f in focus if f in written]
    set_off(server, sid)
    if len(waits) < count:
        raise RuntimeError(f"only {len(waits)} of {count} events arrived")
    return percentile(waits, 50), percentile(waits, 99)


def sustained(server: Server, hook: Receiver, burst: int, max_count: int | None) -> tuple[float, float, bool]:
    """(notifications/s, events/s, in order) from the first arrival to the last."""
    sid = subscribe(server, hook.url, max_count=max_count)
    hook.take()
    c = server.client()
    for start in range(0, burst, 100):
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": json.loads(task()), "request": {"method": "POST", "url": "Task"}}
            for _ in range(min(100, burst - start))]}
        status, _, data = c.request("POST", "", json.dumps(bundle).encode(), JSON)
        assert status == 200, data[:300]
    c.close()
    deadline = time.monotonic() + 600
    while hook.events() < burst and time.monotonic() < deadline:
        time.sleep(0.05)
    got = [a for a in hook.take() if a[3].endswith(f"/Subscription/{sid}")]
    set_off(server, sid)
    numbers = [n for a in got for n in a[1]]
    span = max(got[-1][0] - got[0][0], 1e-9)
    return (len(got) - 1) / span, (len(numbers) - len(got[0][1])) / span, numbers == list(range(1, burst + 1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--latency-count", type=int, default=300)
    parser.add_argument("--latency-rate", type=float, default=20.0)
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s, 50 latency events, a burst of 300")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.seconds, args.latency_count, args.burst = 1, 2.0, 50, 300
    hook = Receiver()
    with tempfile.TemporaryDirectory(prefix="evi-notify-bench-") as tmp:
        work = Path(tmp)
        plain, subscribed = Server(work / "plain.db", work / "plain.log"), Server(work / "subs.db", work / "subs.log")
        try:
            for _ in range(10):
                subscribe(subscribed, hook.url)
            rates: dict[str, list[float]] = {"none": [], "ten": []}
            for n in range(args.rounds):
                rates["none"].append(create_rate(plain, args.seconds, args.connections))
                rates["ten"].append(create_rate(subscribed, args.seconds, args.connections))
                print(f"round {n + 1}: creates/s without subscriptions {rates['none'][-1]:.0f}, "
                      f"with 10 matching {rates['ten'][-1]:.0f} (ratio {rates['ten'][-1] / rates['none'][-1]:.2f})",
                      flush=True)
            # let the backlog of the throughput phase drain, then stop those ten
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                before = hook.events()
                time.sleep(1.0)
                if hook.events() == before:
                    break
            hook.take()
            plain.stop()
            subscribed.stop()
            none, ten = statistics.median(rates["none"]), statistics.median(rates["ten"])
            print(f"create throughput: none {none:.0f}/s, 10 matching subscriptions {ten:.0f}/s, "
                  f"ratio {ten / none:.2f} (target >= 0.8)")
            fresh = Server(work / "latency.db", work / "latency.log")
            try:
                p50, p99 = latency(fresh, hook, args.latency_count, args.latency_rate)
                print(f"delivery latency, commit -> receiver ({args.latency_count} events at "
                      f"{args.latency_rate:.0f}/s): p50 {p50:.1f} ms, p99 {p99:.1f} ms")
                for max_count, label in ((1, "max count 1"), (None, "default max count 20")):
                    per_s, events_s, ordered = sustained(fresh, hook, args.burst, max_count)
                    print(f"sustained to one endpoint ({args.burst} events, {label}): {per_s:.0f} notifications/s, "
                          f"{events_s:.0f} events/s, in order: {ordered}")
            finally:
                fresh.stop()
        finally:
            for s in (plain, subscribed):
                if s.proc.poll() is None:
                    s.stop()
            hook.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
