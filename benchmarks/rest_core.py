"""REST-core throughput: HTTP against the real server vs. the in-process floor.

A script, not a test: it prints numbers.  See benchmarks/README.md.

    .venv/bin/python benchmarks/rest_core.py                 # n=3000, 10 transactions
    .venv/bin/python benchmarks/rest_core.py --quick         # small sizes, ~5 s (smoke test)
    .venv/bin/python benchmarks/rest_core.py --profile /tmp/prof --phases create

What it measures
  create  POST /fhir/ServiceRequest over exactly 2 keep-alive connections (2 threads,
          each with its own connection; stdlib http.client by default, --client httpx
          for httpx.Client) against the real server started as a subprocess, vs. the
          same creates in-process: parse_json + engine.create inside
          runtime.work(write=True), on a Runtime built exactly as create_app builds it.
  read    GET /fhir/ServiceRequest/{id} over 2 connections vs. engine.read inside
          runtime.work(write=False).
  tx      a transaction Bundle of 50 Patients + 50 ServiceRequests that refer to them
          by urn:uuid: POST /fhir, median and p95 over --runs, and the same through
          engine.process_bundle in-process.

Besides wall-clock rates it reads the CPU time of the server process, of this (client)
process and of the whole machine (Linux /proc) for each phase: "server CPU ms/req" and
the CPU-per-op ratio stay meaningful when the wall-clock numbers are disturbed, and a
phase during which other processes used the machine is flagged NOISY.
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import json
import os
import platform
import pstats
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import orjson

FHIR_JSON = "application/fhir+json"
ACCEPT = {"Accept": FHIR_JSON}
PNR_SYSTEM = "http://electronichealth.se/identifier/personnummer"
SR_ID_SYSTEM = "urn:oid:1.2.752.129.2.1.2.1"  # any system: the value is what is unique
CONNECTIONS = 2
#: other processes using more than this share of a core during a phase make it "noisy"
NOISE_LIMIT = 0.25


# --------------------------------------------------------------------------- payloads


def service_request(i: int, tag: str) -> dict:
    return {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "identifier": [{"system": SR_ID_SYSTEM, "value": f"{tag}-sr-{i}"}],
        "code": {
            "coding": [{"system": "http://snomed.info/sct", "code": "306206005", "display": "Referral to service"}]
        },
        "subject": {"reference": "Patient/x"},
        "requester": {"reference": "Organization/y"},
    }


def create_bodies(n: int, tag: str) -> list[bytes]:
    """Pre-encoded bodies: the client does no JSON work while the clock runs."""
    return [orjson.dumps(service_request(i, tag)) for i in range(n)]


def luhn_digit(nine: str) -> int:
    """The check digit of a personnummer's nine digits YYMMDDNNN (the server checks it on
    every write): the benchmarks' one copy."""
    total = 0
    for i, ch in enumerate(nine):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return (10 - total % 10) % 10


def personnummer(i: int) -> str:
    """A valid personnummer for a child born 2012-03-04, serial from ``i``."""
    nine = f"120304{i % 1000:03d}"
    return f"20{nine}{luhn_digit(nine)}"


def transaction_bundle(patients: int, tag: str) -> dict:
    entries = []
    for i in range(patients):
        p_url = f"urn:uuid:{uuid.uuid4()}"
        entries.append(
            {
                "fullUrl": p_url,
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": PNR_SYSTEM, "value": personnummer(i)}],
                    "name": [{"family": "Bench", "given": [f"P{i}"]}],
                    "gender": "female",
                    "birthDate": "2012-03-04",
                },
                "request": {"method": "POST", "url": "Patient"},
            }
        )
        sr = service_request(i, tag)
        sr["subject"] = {"reference": p_url}
        entries.append(
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": sr,
                "request": {"method": "POST", "url": "ServiceRequest"},
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu_seconds(pid: int) -> float | None:
    """utime+stime of a process (Linux /proc); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def machine_busy_seconds() -> float | None:
    """CPU seconds all cores spent busy since boot (Linux /proc/stat); None elsewhere."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal ...: busy = all but idle and iowait
        return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))
    return ordered[k]


@dataclass
class Phase:
    """One timed phase with the CPU each side spent on it (and what everything else took)."""

    count: int
    wall: float
    server_cpu: float | None
    client_cpu: float
    #: CPU seconds used by other processes on the machine meanwhile (noise)
    other_cpu: float | None = None

    @property
    def rate(self) -> float:
        return self.count / self.wall

    def cpu_note(self) -> str:
        parts = []
        if self.server_cpu is not None:
            parts.append(
                f"server CPU {self.server_cpu / self.count * 1e3:.3f} ms/req, {self.server_cpu / self.wall:4.0%} of a core"
            )
        parts.append(f"client CPU {self.client_cpu / self.count * 1e3:.3f} ms/req")
        return "; ".join(parts)

    def noisy(self) -> bool:
        if self.other_cpu is None:
            return False
        # /proc/stat counts in clock ticks per CPU: allow that much slack on short phases
        slack = 2 * (os.cpu_count() or 1) / os.sysconf("SC_CLK_TCK")
        return self.other_cpu - slack > NOISE_LIMIT * self.wall


class Meter:
    """Wall clock plus CPU of the server, of this process and of the whole machine."""

    def __init__(self, server_pid: int | None = None):
        self.pid = server_pid

    def __enter__(self) -> "Meter":
        self.s0 = proc_cpu_seconds(self.pid) if self.pid else None
        self.m0 = machine_busy_seconds()
        self.c0, self.t0 = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.t0
        self.client = time.process_time() - self.c0
        s1 = proc_cpu_seconds(self.pid) if self.pid else None
        m1 = machine_busy_seconds()
        self.server = s1 - self.s0 if s1 is not None and self.s0 is not None else None
        self.other = None
        if m1 is not None and self.m0 is not None:
            self.other = max(0.0, (m1 - self.m0) - self.client - (self.server or 0.0))

    def phase(self, count: int) -> Phase:
        return Phase(count, self.wall, self.server, self.client, self.other)


# --------------------------------------------------------------------------- the server

_PROFILED_SERVER = """
import cProfile, signal, sys
from pathlib import Path
from fhir_server.cli import main
out = Path(sys.argv[1])
state = {}
def start(*_):
    state["p"] = cProfile.Profile()
    state["p"].enable()
def stop(*_):
    p = state.pop("p")
    p.disable()
    name = (out / "next-name").read_text()
    p.dump_stats(str(out / (name + ".tmp")))
    (out / (name + ".tmp")).rename(out / (name + ".prof"))
signal.signal(signal.SIGUSR1, start)
signal.signal(signal.SIGUSR2, stop)
sys.exit(main(sys.argv[2:]))
"""


class Server:
    """The real server as a subprocess on a SQLite file (``db``, default a fresh one in ``workdir``)."""

    def __init__(self, workdir: Path, profile_dir: Path | None, db: Path | None = None, checkout: Path | None = None):
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.db = db or workdir / "http.db"
        self.base = f"http://127.0.0.1:{self.port}/fhir"
        self.log_path = workdir / "server.log"
        self.log = open(self.log_path, "w+b")
        self.profile_dir = profile_dir
        serve = [
            "serve",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--storage", f"sqlite:///{self.db}",
            "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        if profile_dir is None:
            cmd = [sys.executable, "-m", "fhir_server.cli", *serve]
        else:
            # the same CLI, with a cProfile switched on and off by SIGUSR1/SIGUSR2, so
            # each phase gets its own profile without startup and warm-up in it
            cmd = [sys.executable, "-c", _PROFILED_SERVER, str(profile_dir), *serve]
        env = None
        if checkout is not None:  # another checkout's code (e.g. main before a change), same client
            env = {**os.environ, "PYTHONPATH": str(checkout), "EVI_PROFILES_DIR": str(checkout / "profiles")}
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, cwd=workdir, env=env)

    def profile_start(self) -> None:
        if self.profile_dir is not None:
            self.proc.send_signal(signal.SIGUSR1)
            time.sleep(0.3)  # let the event loop run the handler before the clock starts

    def profile_stop(self, name: str) -> Path | None:
        if self.profile_dir is None:
            return None
        target = self.profile_dir / f"{name}.prof"
        target.unlink(missing_ok=True)
        (self.profile_dir / "next-name").write_text(name)
        self.proc.send_signal(signal.SIGUSR2)
        for _ in range(400):
            if target.exists():
                (self.profile_dir / "next-name").unlink()
                return target
            time.sleep(0.05)
        raise RuntimeError(f"the server wrote no profile {target}")

    def wait_ready(self, timeout: float = 60.0) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                client = StdlibClient(self.base, 5.0)
                try:
                    if client.request("GET", "/metadata", None, ACCEPT)[0] == 200:
                        return time.monotonic() - started
                finally:
                    client.close()
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not ready after {timeout} s:\n{self.output()}")

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_bytes().decode(errors="replace")[-4000:]

    def stop(self) -> None:
        # SIGINT is what uvicorn shuts down gracefully on (the store is closed in the lifespan)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# --------------------------------------------------------------------------- HTTP client side


class StdlibClient:
    """One persistent HTTP/1.1 connection with http.client: about 0.07 ms of client CPU
    per request, against 0.3-0.4 ms for httpx.Client; hence the default."""

    def __init__(self, base: str, timeout: float):
        parts = urlsplit(base)
        self.prefix = parts.path.rstrip("/")
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        self.conn.request(method, self.prefix + path, body=body, headers=headers or {})
        r = self.conn.getresponse()
        data = r.read()
        return r.status, r.headers, data

    def close(self) -> None:
        self.conn.close()


class HttpxClient:
    """httpx.Client (what the tests use): convenient, but its client-side cost is large."""

    def __init__(self, base: str, timeout: float):
        import httpx  # a test extra: only needed for --client httpx

        self.client = httpx.Client(base_url=base, timeout=timeout)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        r = self.client.request(method, path, content=body, headers=headers)
        return r.status_code, r.headers, r.content

    def close(self) -> None:
        self.client.close()


CLIENTS = {"stdlib": StdlibClient, "httpx": HttpxClient}
CLIENT_NOTES = {
    "stdlib": "threads, each with its own persistent http.client.HTTPConnection (HTTP/1.1 keep-alive)",
    "httpx": "threads, each with its own persistent httpx.Client (HTTP/1.1 keep-alive)",
}


def run_parallel(server: Server, client_kind: str, jobs: list, work) -> Phase:
    """Run ``work(client, job)`` for each job, one thread + one client (one connection) per job.

    Each client opens its connection before the clock starts (a GET of a missing
    resource), then all threads start together.
    """
    barrier = threading.Barrier(len(jobs) + 1)
    errors: list[BaseException] = []

    def thread_main(job):
        client = CLIENTS[client_kind](server.base, 60.0)
        try:
            client.request("GET", "/ServiceRequest/warm-the-connection", headers=ACCEPT)
            barrier.wait()
            work(client, job)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            barrier.abort()
        finally:
            client.close()

    threads = [threading.Thread(target=thread_main, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        pass
    with Meter(server.proc.pid) as meter:
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
    return meter.phase(sum(len(job) for job in jobs))


def split(items: list, parts: int) -> list[list]:
    return [items[i::parts] for i in range(parts)]


def http_creates(server: Server, client_kind: str, bodies: list[bytes]) -> tuple[Phase, list[str]]:
    ids: list[str] = []
    lock = threading.Lock()
    headers = {"Content-Type": FHIR_JSON, **ACCEPT}

    def work(client, job: list[bytes]):
        mine = []
        for body in job:
            status, hdrs, data = client.request("POST", "/ServiceRequest", body, headers)
            if status != 201:
                raise RuntimeError(f"create answered {status}: {data[:500]!r}")
            # Location: {base}/ServiceRequest/{id}/_history/1
            mine.append(hdrs["location"].rsplit("/", 3)[-3])
        with lock:
            ids.extend(mine)

    return run_parallel(server, client_kind, split(bodies, CONNECTIONS), work), ids


def http_reads(server: Server, client_kind: str, ids: list[str], n: int) -> Phase:
    paths = [f"/ServiceRequest/{ids[i % len(ids)]}" for i in range(n)]

    def work(client, job: list[str]):
        for path in job:
            status, _, data = client.request("GET", path, None, ACCEPT)
            if status != 200:
                raise RuntimeError(f"read {path} answered {status}: {data[:500]!r}")

    return run_parallel(server, client_kind, split(paths, CONNECTIONS), work)


def http_transactions(server: Server, client_kind: str, bundles: list[bytes]) -> tuple[list[float], Phase]:
    times = []
    client = CLIENTS[client_kind](server.base, 120.0)
    try:
        with Meter(server.proc.pid) as meter:
            for body in bundles:
                t0 = time.perf_counter()
                status, _, data = client.request("POST", "", body, {"Content-Type": FHIR_JSON, **ACCEPT})
                times.append(time.perf_counter() - t0)
                if status != 200:
                    raise RuntimeError(f"transaction answered {status}: {data[:500]!r}")
    finally:
        client.close()
    return times, meter.phase(len(bundles))


# --------------------------------------------------------------------------- in-process


class InProcess:
    """A Runtime built exactly as create_app builds it, without the HTTP layer."""

    def __init__(self, workdir: Path):
        from fhir_server.app import build_runtime
        from fhir_server.engine import RequestContext
        from fhir_server.settings import Settings

        settings = Settings(storage=f"sqlite://{workdir / 'inprocess.db'}")
        self.runtime = build_runtime(settings)
        self.ctx = RequestContext(base_url=settings.public_base)

    def creates(self, bodies: list[bytes], profiler: cProfile.Profile | None = None) -> tuple[Phase, list[str]]:
        from fhir_server import engine
        from fhir_server.model import parse_json

        runtime, ctx, ids = self.runtime, self.ctx, []
        if profiler is not None:
            profiler.enable()
        with Meter() as meter:
            for body in bodies:
                resource = parse_json(body)
                with runtime.work(ctx, write=True) as work:
                    outcome = engine.create(work, "ServiceRequest", resource)
                ids.append(outcome.version.id)
        if profiler is not None:
            profiler.disable()
        return meter.phase(len(bodies)), ids

    def reads(self, ids: list[str], n: int) -> Phase:
        from fhir_server import engine

        runtime, ctx = self.runtime, self.ctx
        wanted = [ids[i % len(ids)] for i in range(n)]
        with Meter() as meter:
            for rid in wanted:
                with runtime.work(ctx, write=False) as work:
                    engine.read(work, "ServiceRequest", rid)
        return meter.phase(n)

    def transactions(self, bundles: list[bytes]) -> tuple[list[float], Phase]:
        from fhir_server import engine
        from fhir_server.model import parse_json

        times = []
        with Meter() as meter:
            for body in bundles:
                t0 = time.perf_counter()
                result = engine.process_bundle(self.runtime, self.ctx, parse_json(body))
                times.append(time.perf_counter() - t0)
                if result["type"] != "transaction-response":
                    raise RuntimeError(f"unexpected transaction result {result['type']}")
        return times, meter.phase(len(bundles))

    def close(self) -> None:
        self.runtime.store.close()


# --------------------------------------------------------------------------- main


def print_profile(path: Path, title: str, limit: int) -> None:
    print(f"\n--- {title}: top {limit} by own time ({path}) ---")
    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime").print_stats(limit)
    print(f"--- {title}: top {limit} by cumulative time ---")
    stats.sort_stats("cumulative").print_stats(limit)


def compare(args) -> int:
    """Create and read rates over HTTP: ``--compare`` checkout vs. this one, interleaved so
    that the machine's noise falls on both alike; medians of the rounds and their ratio."""
    current = Path(__file__).resolve().parents[1]
    rates: dict[str, dict[str, list[float]]] = {n: {"create": [], "read": [], "create_cpu": [], "read_cpu": []}
                                                for n in ("before", "now")}
    print(f"compare: before = {args.compare}, now = {current}; n={args.n}, {args.rounds} rounds, machine load "
          f"{os.getloadavg()[0]:.2f}")
    for round_no in range(args.rounds):
        for name, checkout in (("before", args.compare.resolve()), ("now", current)):
            with tempfile.TemporaryDirectory(prefix="evi-compare-") as tmp:
                server = Server(Path(tmp), None, checkout=checkout)
                try:
                    server.wait_ready()
                    tag = uuid.uuid4().hex[:8]
                    http_creates(server, args.client, create_bodies(args.warmup, f"{tag}-w"))
                    created, ids = http_creates(server, args.client, create_bodies(args.n, tag))
                    http_reads(server, args.client, ids, args.warmup)
                    read = http_reads(server, args.client, ids, args.n)
                finally:
                    server.stop()
            for phase, measured in (("create", created), ("read", read)):
                rates[name][phase].append(measured.rate)
                rates[name][phase + "_cpu"].append(measured.server_cpu / measured.count * 1e3)
            print(f"  round {round_no + 1} {name:<6} create {created.rate:7.0f}/s ({created.server_cpu / created.count * 1e3:.3f} "
                  f"ms CPU)  read {read.rate:7.0f}/s ({read.server_cpu / read.count * 1e3:.3f} ms CPU)"
                  f"{'  NOISY' if created.noisy() or read.noisy() else ''}")
    for phase in ("create", "read"):
        before, now = statistics.median(rates["before"][phase]), statistics.median(rates["now"][phase])
        cpu_before, cpu_now = (statistics.median(rates[n][phase + "_cpu"]) for n in ("before", "now"))
        print(f"{phase:<7} before {before:7.0f}/s  now {now:7.0f}/s  now/before {now / before:.2f}   "
              f"server CPU ms/req before {cpu_before:.3f} now {cpu_now:.3f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=3000, help="creates and reads per mode (default 3000)")
    parser.add_argument("--runs", type=int, default=10, help="transaction Bundles per mode (default 10)")
    parser.add_argument("--bundle-patients", type=int, default=50, help="Patients per Bundle, each with a ServiceRequest (default 50: 100 entries)")
    parser.add_argument("--warmup", type=int, default=100, help="untimed creates/reads first, per mode (default 100)")
    parser.add_argument("--quick", action="store_true", help="small sizes (n=500, runs=3, warmup=30) for a smoke test")
    parser.add_argument("--client", choices=sorted(CLIENTS), default="stdlib", help="HTTP client: stdlib http.client (default, cheapest) or httpx")
    parser.add_argument("--phases", default="create,read,tx", help="comma-separated subset of create,read,tx (default all)")
    parser.add_argument("--profile", metavar="DIR", type=Path, help="cProfile each server phase (after warm-up) and the in-process creates into DIR/*.prof and print the top rows (slows everything: the numbers are then not benchmarks)")
    parser.add_argument("--profile-lines", type=int, default=25, help="rows per profile table (default 25)")
    parser.add_argument("--json", action="store_true", help="also print the results as one JSON line at the end")
    parser.add_argument("--compare", metavar="CHECKOUT", type=Path,
                        help="instead: HTTP create and read rates of this checkout's server and of the current "
                             "code, alternating --rounds times on fresh databases, with their ratio")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of --compare (default 3)")
    args = parser.parse_args(argv)
    if args.compare:
        if args.quick:
            args.n, args.warmup = min(args.n, 500), min(args.warmup, 30)
        return compare(args)
    if args.quick:
        args.n, args.runs, args.warmup = min(args.n, 500), min(args.runs, 3), min(args.warmup, 30)
    phases = set(args.phases.split(","))
    if not phases <= {"create", "read", "tx"}:
        parser.error(f"--phases: unknown {sorted(phases - {'create', 'read', 'tx'})}")
    if args.n < CONNECTIONS or args.runs < 1 or args.warmup < 1:
        parser.error("--n must be >= 2, --runs and --warmup >= 1")
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    want_create, want_read, want_tx = "create" in phases or "read" in phases, "read" in phases, "tx" in phases

    machine = {
        "nproc": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "loadavg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    out: dict = {"machine": machine, "n": args.n, "runs": args.runs, "client": f"{args.client}: {CONNECTIONS} {CLIENT_NOTES[args.client]}"}
    print(f"machine: nproc={machine['nproc']} (affinity {machine['affinity']}) {machine['implementation']} {machine['python']} "
          f"{machine['platform']}; load average {machine['loadavg_1min']}")
    print(f"client:  {out['client']}")
    print(f"sizes:   n={args.n} creates and reads per mode, {args.runs} transactions of {2 * args.bundle_patients} entries, warm-up {args.warmup}")
    started = time.monotonic()
    tag = uuid.uuid4().hex[:8]
    res: dict[str, object] = {}

    with tempfile.TemporaryDirectory(prefix="evi-bench-") as tmp:
        workdir = Path(tmp)
        server = Server(workdir, args.profile)
        try:
            ready = server.wait_ready()
            print(f"server:  {server.base} ready in {ready:.1f} s (storage {server.db})")
            if want_create:
                http_creates(server, args.client, create_bodies(args.warmup, f"{tag}-hw"))
                server.profile_start()
                res["create_http"], ids = http_creates(server, args.client, create_bodies(args.n, f"{tag}-h"))
                server.profile_stop("server-create")
            if want_read:
                http_reads(server, args.client, ids, args.warmup)
                server.profile_start()
                res["read_http"] = http_reads(server, args.client, ids, args.n)
                server.profile_stop("server-read")
            if want_tx:
                bundles = [orjson.dumps(transaction_bundle(args.bundle_patients, f"{tag}-ht{r}")) for r in range(args.runs + 1)]
                http_transactions(server, args.client, bundles[:1])  # warm-up
                server.profile_start()
                res["tx_http"] = http_transactions(server, args.client, bundles[1:])
                server.profile_stop("server-tx")
        except BaseException:
            server.stop()
            print(f"--- server output ---\n{server.output()}", file=sys.stderr)
            raise
        finally:
            server.stop()
            server.log.close()

        # in-process, after the server has gone, so both modes get the same machine
        inproc = InProcess(workdir)
        try:
            if want_create:
                inproc.creates(create_bodies(args.warmup, f"{tag}-iw"))
                res["create_in"], in_ids = inproc.creates(create_bodies(args.n, f"{tag}-i"))
                if args.profile:
                    profiler = cProfile.Profile()
                    inproc.creates(create_bodies(args.n, f"{tag}-ip"), profiler)
                    profiler.dump_stats(str(args.profile / "inprocess-create.prof"))
            if want_read:
                inproc.reads(in_ids, args.warmup)
                res["read_in"] = inproc.reads(in_ids, args.n)
            if want_tx:
                bundles = [orjson.dumps(transaction_bundle(args.bundle_patients, f"{tag}-it{r}")) for r in range(args.runs + 1)]
                inproc.transactions(bundles[:1])
                res["tx_in"] = inproc.transactions(bundles[1:])
        finally:
            inproc.close()

    print()
    summary, noisy = [], []
    for kind, what in (("create", "parse + validate + store"), ("read", "engine.read")):
        if f"{kind}_http" not in res:
            continue
        h: Phase = res[f"{kind}_http"]
        i: Phase = res[f"{kind}_in"]
        wall_ratio = h.rate / i.rate
        # CPU ratio: in-process CPU per op / server CPU per op, robust to other load on the machine
        cpu_ratio = (i.client_cpu / i.count) / (h.server_cpu / h.count) if h.server_cpu else None
        print(f"{kind:<7} HTTP        {h.rate:8.0f} /s   ({h.cpu_note()})")
        print(f"{kind:<7} in-process  {i.rate:8.0f} /s   ({i.client_cpu / i.count * 1e3:.3f} ms CPU per {kind}: {what})")
        cpu_txt = f", by CPU per {kind} {cpu_ratio:.2f}" if cpu_ratio else ""
        target = "   (target >= 0.50)" if kind == "create" else ""
        print(f"{kind:<7} HTTP / in-process = {wall_ratio:.2f}{cpu_txt}{target}")
        summary.append(f"{kind} {h.rate:.0f}/s HTTP vs {i.rate:.0f}/s in-process ({wall_ratio:.2f}x)")
        out[kind] = {
            "http_per_s": h.rate, "inprocess_per_s": i.rate, "ratio": wall_ratio, "cpu_ratio": cpu_ratio,
            "http_server_cpu_ms_per_op": h.server_cpu / h.count * 1e3 if h.server_cpu is not None else None,
            "http_client_cpu_ms_per_op": h.client_cpu / h.count * 1e3,
            "inprocess_cpu_ms_per_op": i.client_cpu / i.count * 1e3,
        }  # fmt: skip
        noisy += [f"{kind} {mode}" for mode, p in (("HTTP", h), ("in-process", i)) if p.noisy()]
    if "tx_http" in res:
        entries = 2 * args.bundle_patients
        (tx_h, ph), (tx_i, pi) = res["tx_http"], res["tx_in"]
        for label, times in (("HTTP", tx_h), ("in-process", tx_i)):
            med, p95 = statistics.median(times) * 1e3, percentile(times, 95) * 1e3
            print(f"tx{entries:<5d} {label:<11} median {med:7.1f} ms  p95 {p95:7.1f} ms  ({entries / med * 1e3:.0f} entries/s)")
        th_med, th_p95 = statistics.median(tx_h) * 1e3, percentile(tx_h, 95) * 1e3
        ti_med, ti_p95 = statistics.median(tx_i) * 1e3, percentile(tx_i, 95) * 1e3
        summary.append(f"tx{entries} median {th_med:.0f} ms, p95 {th_p95:.0f} ms HTTP ({ti_med:.0f} ms in-process)")
        out["transaction"] = {
            "entries": entries, "runs": args.runs, "http_median_ms": th_med, "http_p95_ms": th_p95,
            "inprocess_median_ms": ti_med, "inprocess_p95_ms": ti_p95,
        }  # fmt: skip
        noisy += [f"tx {mode}" for mode, p in (("HTTP", ph), ("in-process", pi)) if p.noisy()]
    out["profiled"] = bool(args.profile)
    out["noisy_phases"] = noisy
    if noisy:
        print(f"\nWARNING: other processes used more than {NOISE_LIMIT:.0%} of a core during: {', '.join(noisy)}. "
              "Those numbers are unreliable; the CPU-per-op figures are less affected.")
    print(
        "\nsummary: " + "; ".join(summary)
        + f"; client {args.client}; nproc={machine['nproc']} python={machine['python']}; {time.monotonic() - started:.1f} s"
        + ("  [PROFILED: not a benchmark]" if args.profile else "")
        + ("  [NOISY]" if noisy else "")
    )

    if args.profile:
        for name, title in (
            ("inprocess-create", "in-process create"),
            ("server-create", "server, HTTP create phase"),
            ("server-read", "server, HTTP read phase"),
            ("server-tx", "server, HTTP transaction phase"),
        ):
            path = args.profile / f"{name}.prof"
            if path.exists():
                print_profile(path, title, args.profile_lines)
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
