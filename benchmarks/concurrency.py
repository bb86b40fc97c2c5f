"""No request stalls another: read latency while heavy work runs, and read throughput
with several server processes on one SQLite file.

A script, not a test: it prints numbers. See benchmarks/README.md.

    .venv/bin/python benchmarks/concurrency.py                     # this checkout
    .venv/bin/python benchmarks/concurrency.py --checkout /tmp/old # another checkout's code, same data
    .venv/bin/python benchmarks/concurrency.py --quick             # small sizes (smoke test)

What it measures (each phase on the same seeded database, server started as
``python -m fhir_server.cli serve`` with ``PYTHONPATH`` and ``EVI_PROFILES_DIR`` set
to the checkout under test):

  latency  one client reads ``GET /Patient/{id}`` in a loop on its own keep-alive
           connection while, in parallel, (a) a transaction of --tx-entries entries,
           (b) heavy searches (``_has`` + ``_revinclude`` + ``_include:iterate``, on 2
           connections), (c) ``$reindex`` of the seeded types run; p50 / p99 / max of
           the reads, and how long the heavy work took. A baseline without background
           work comes first.
  scale    ``GET /Patient/{id}`` over --connections keep-alive connections for
           --seconds, against 1 server process and then against 2 processes on the
           same file (connections split between them): reads/s and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rest_core import ACCEPT, FHIR_JSON, StdlibClient, free_port, percentile  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SYS = "urn:evi:bench:concurrency"
JSON_HEADERS = {"Content-Type": FHIR_JSON, **ACCEPT}


class Server:
    """A server subprocess running the code of ``checkout`` on the SQLite file ``db``."""

    def __init__(self, checkout: Path, db: Path, log: Path, workers: int = 1, port: int | None = None):
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}/fhir"
        env = {**os.environ, "PYTHONPATH": str(checkout), "EVI_PROFILES_DIR": str(checkout / "profiles")}
        cmd = [sys.executable, "-m", "fhir_server.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
               "--storage", f"sqlite:///{db}", "--no-access-log", "--log-level", "warning"]
        if workers > 1:
            cmd += ["--workers", str(workers)]
        self.log = open(log, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=checkout)

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            try:
                client = StdlibClient(self.base, 5.0)
                try:
                    if client.request("GET", "/metadata", None, ACCEPT)[0] == 200:
                        return
                finally:
                    client.close()
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server not ready")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(2)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# --------------------------------------------------------------------------- data


def transaction(entries: list[dict]) -> bytes:
    return orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries})


def seed_entries(n: int, tag: str) -> list[dict]:
    """n Patients, each with an Organization-requested ServiceRequest about them."""
    out = [{"fullUrl": "urn:uuid:org", "resource": {"resourceType": "Organization", "name": f"Bench {tag}"},
            "request": {"method": "POST", "url": "Organization"}}]
    for i in range(n):
        pid = f"urn:uuid:{uuid.uuid4()}"
        out.append({"fullUrl": pid, "resource": {
            "resourceType": "Patient", "identifier": [{"system": SYS, "value": f"{tag}-{i}"}],
            "name": [{"family": f"Bench{i % 97}", "given": [f"G{i}"]}], "birthDate": "2012-03-04"},
            "request": {"method": "POST", "url": "Patient"}})
        out.append({"resource": {
            "resourceType": "ServiceRequest", "status": "active", "intent": "order",
            "identifier": [{"system": SYS, "value": f"{tag}-sr-{i}"}],
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "306206005"}]},
            "subject": {"reference": pid}, "requester": {"reference": "urn:uuid:org"}},
            "request": {"method": "POST", "url": "ServiceRequest"}})
    return out


def seed(base: str, patients: int) -> list[str]:
    client = StdlibClient(base, 600.0)
    try:
        ids: list[str] = []
        tag = uuid.uuid4().hex[:8]
        for start in range(0, patients, 500):
            entries = seed_entries(min(500, patients - start), f"{tag}-{start}")
            status, _, data = client.request("POST", "", transaction(entries), JSON_HEADERS)
            if status != 200:
                raise RuntimeError(f"seeding answered {status}: {data[:300]!r}")
            for e in orjson.loads(data)["entry"]:
                location = e["response"].get("location", "")
                if location.startswith("Patient/"):
                    ids.append(location.split("/")[1])
        return ids
    finally:
        client.close()


# --------------------------------------------------------------------------- phases


def read_loop(base: str, ids: list[str], stop: threading.Event, latencies: list[float]) -> None:
    client = StdlibClient(base, 120.0)
    try:
        client.request("GET", f"/Patient/{ids[0]}", None, ACCEPT)
        i = 0
        while not stop.is_set():
            started = time.perf_counter()
            status, _, _ = client.request("GET", f"/Patient/{ids[i % len(ids)]}", None, ACCEPT)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                raise RuntimeError(f"read answered {status}")
            i += 1
            time.sleep(0.002)  # a steady trickle of reads, not a flood
    finally:
        client.close()


def background(base: str, kind: str, args) -> tuple[str, float]:
    """Run one kind of heavy work to completion; (what it answered, seconds)."""
    started = time.perf_counter()
    if kind == "transaction":
        client = StdlibClient(base, 600.0)
        try:
            status, _, _ = client.request("POST", "", transaction(seed_entries(args.tx_entries // 2, "tx")), JSON_HEADERS)
        finally:
            client.close()
        answered = str(status)
    elif kind == "search":
        statuses: list[int] = []
        query = ("/Patient?_has:ServiceRequest:subject:status=active&_revinclude=ServiceRequest:subject"
                 "&_include:iterate=ServiceRequest:requester&_count=1000&_total=accurate")

        def searcher():
            client = StdlibClient(base, 600.0)
            try:
                for _ in range(args.searches):
                    statuses.append(client.request("GET", query, None, ACCEPT)[0])
            finally:
                client.close()

        threads = [threading.Thread(target=searcher) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        answered = ",".join(f"{s}x{statuses.count(s)}" for s in sorted(set(statuses)))
    else:  # $reindex of the seeded types
        client = StdlibClient(base, 600.0)
        try:
            answers = [client.request("POST", f"/{t}/$reindex", b"", ACCEPT)[0] for t in ("Patient", "ServiceRequest")]
        finally:
            client.close()
        answered = ",".join(map(str, answers))
    return answered, time.perf_counter() - started


def latency_phase(base: str, ids: list[str], kind: str | None, args) -> dict:
    stop, latencies = threading.Event(), []
    reader = threading.Thread(target=read_loop, args=(base, ids, stop, latencies))
    reader.start()
    time.sleep(0.3)
    del latencies[:]  # the reader's warm-up is not the phase
    if kind is None:
        time.sleep(args.baseline_seconds)
        answered, took = "-", args.baseline_seconds
    else:
        answered, took = background(base, kind, args)
    stop.set()
    reader.join()
    ms = [x * 1000 for x in latencies]
    return {"phase": kind or "baseline", "reads": len(ms), "p50": statistics.median(ms), "p99": percentile(ms, 99),
            "max": max(ms), "work_s": took, "work_answered": answered}


def wrk_throughput(base: str, ids: list[str], args) -> float:
    """Reads/s measured by wrk (a C load generator: the client costs the machine little,
    so the servers' share of its 2 cores decides), over --connections connections."""
    import re
    import shutil

    if not shutil.which("wrk"):
        raise RuntimeError("--client wrk needs wrk (Debian: apt-get install wrk)")
    script = Path(tempfile.mkdtemp()) / "reads.lua"
    paths = ", ".join(f'"/fhir/Patient/{i}"' for i in ids[:2000])
    script.write_text(f"local paths = {{{paths}}}\nlocal n = 0\n"
                      "request = function()\n  n = n + 1\n"
                      "  return wrk.format('GET', paths[(n % #paths) + 1], {['Accept'] = 'application/fhir+json'})\nend\n")
    out = subprocess.run(["wrk", "-t2", f"-c{args.connections}", f"-d{int(args.seconds)}s", "-s", str(script),
                          base.removesuffix("/fhir")], capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"wrk: {errors.group(1)} failed reads")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def throughput(bases: list[str], ids: list[str], args) -> float:
    stop, counts, errors = threading.Event(), [], []

    def worker(base: str):
        client = StdlibClient(base, 60.0)
        n = 0
        try:
            client.request("GET", f"/Patient/{ids[0]}", None, ACCEPT)
            barrier.wait()
            i = hash(base) % len(ids)
            while not stop.is_set():
                if client.request("GET", f"/Patient/{ids[i % len(ids)]}", None, ACCEPT)[0] != 200:
                    errors.append("non-200")
                n += 1
                i += 7
        finally:
            counts.append(n)
            client.close()

    barrier = threading.Barrier(args.connections + 1)
    threads = [threading.Thread(target=worker, args=(bases[i % len(bases)],)) for i in range(args.connections)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    time.sleep(args.seconds)
    stop.set()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} reads failed")
    return sum(counts) / (time.perf_counter() - started)


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkout", type=Path, default=ROOT, help="the evi-fhir checkout whose server runs")
    parser.add_argument("--patients", type=int, default=5000, help="seeded Patients (each with a ServiceRequest)")
    parser.add_argument("--tx-entries", type=int, default=5000, help="entries of the background transaction")
    parser.add_argument("--searches", type=int, default=3, help="heavy searches per connection (2 connections)")
    parser.add_argument("--baseline-seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=4, help="read connections for the throughput phase")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each throughput phase")
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--client", choices=("python", "wrk"), default="python",
                        help="load generator of the throughput phase: python threads, or wrk against "
                             "`serve --workers N` (one port)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    args = parser.parse_args()
    if args.quick:
        args.patients, args.tx_entries, args.searches, args.baseline_seconds, args.seconds = 500, 500, 1, 1.0, 2.0
    checkout = args.checkout.resolve()
    work = Path(tempfile.mkdtemp(prefix="evi-concurrency-"))
    db, log = work / "bench.db", work / "server.log"
    print(f"# checkout {checkout} ({_commit(checkout)}); data in {work}")
    print(f"# machine: {os.cpu_count()} cores, Python {platform.python_version()}, load {os.getloadavg()}")

    server = Server(checkout, db, log)
    results: dict = {"checkout": str(checkout), "commit": _commit(checkout)}
    try:
        server.wait_ready()
        started = time.perf_counter()
        ids = seed(server.base, args.patients)
        print(f"seeded {len(ids)} Patients + {len(ids)} ServiceRequests in {time.perf_counter() - started:.1f} s")
        rows = [latency_phase(server.base, ids, kind, args) for kind in (None, "transaction", "search", "reindex")]
    finally:
        server.stop()
    print(f"\n{'read latency while':<22}{'reads':>7}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'work s':>9}  answered")
    for r in rows:
        print(f"{r['phase']:<22}{r['reads']:>7}{r['p50']:>9.1f}{r['p99']:>9.1f}{r['max']:>9.1f}"
              f"{r['work_s']:>9.2f}  {r['work_answered']}")
    results["latency"] = rows

    if not args.skip_scale:
        rates = {}
        for processes in (1, 2):
            if args.client == "wrk":
                servers = [Server(checkout, db, log, workers=processes)]
            else:
                servers = [Server(checkout, db, log) for _ in range(processes)]
            try:
                for s in servers:
                    s.wait_ready()
                if args.client == "wrk":
                    rates[processes] = wrk_throughput(servers[0].base, ids, args)
                else:
                    rates[processes] = throughput([s.base for s in servers], ids, args)
            finally:
                for s in servers:
                    s.stop()
        print(f"\nreads/s over {args.connections} connections ({args.client}): 1 process {rates[1]:.0f}, "
              f"2 processes on one file {rates[2]:.0f}, ratio {rates[2] / rates[1]:.2f}")
        results["throughput"] = {"one": rates[1], "two": rates[2], "ratio": rates[2] / rates[1]}
    if args.json:
        print(json.dumps(results))
    return 0


def _commit(checkout: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


if __name__ == "__main__":
    sys.exit(main())
