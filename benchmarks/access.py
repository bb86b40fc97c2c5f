"""What authentication and the access policy cost: read and search throughput with auth
on vs off, and the latency of policy-restricted searches on the 100,000-resource dataset.

A script, not a test: it prints numbers. See benchmarks/README.md.

    .venv/bin/python benchmarks/access.py            # n=100,000 (the search benchmark's cached dataset)
    .venv/bin/python benchmarks/access.py --quick    # n=5,000: smoke test

What it does
  1. Builds or reuses the dataset of benchmarks/search.py (Patients, ServiceRequests,
     Tasks, Appointments referring to 50 Organizations and 10 HealthcareServices).
  2. Registers clients (role evi; a care unit, org-3; a municipality, org-7) with fresh
     ES384 keys, and gets access tokens through the real token endpoint.
  3. Throughput, --rounds times, alternating a server with auth off and one with
     `--auth smart` on the same file: `GET /Patient/{id}` and `GET /ServiceRequest?subject=…`
     over 2 keep-alive connections for --seconds each; the median rates and on/off ratios
     (target >= 0.8). With auth on the requests carry the evi role's token (the policy lets
     evi see everything but AuditEvent: the cost measured is the token and the checks).
  4. Latency of searches the policy restricts (auth on), one connection, --reps each:
     the care unit's and the municipality's Patient list, Task worklist and referrals;
     p50 / p99 (target p99 <= 60 ms).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import search as dataset  # noqa: E402  (the search benchmark's dataset)
from rest_core import ACCEPT, StdlibClient, free_port, percentile  # noqa: E402

from fhir_server.security.backend_client import generate_key, request_token  # noqa: E402
from fhir_server.security.clients import client_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = {
    "evi": ("evi", "Organization/org-0"),
    "care-unit": ("care-unit", "Organization/org-3"),
    "municipality": ("municipality", "Organization/org-7"),
}


class Server:
    def __init__(self, db: Path, log: Path, auth: dict | None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/fhir"
        env = {**os.environ, **(auth or {})}
        cmd = [sys.executable, "-m", "fhir_server.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
               "--storage", f"sqlite:///{db}", "--no-access-log", "--log-level", "warning"]
        self.log = open(log, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited ({log})")
            try:
                client = StdlibClient(self.base, 5.0)
                if client.request("GET", "/metadata", None, ACCEPT)[0] == 200:
                    client.close()
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server not ready")

    def stop(self) -> None:
        self.proc.send_signal(2)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def register(work: Path) -> tuple[dict, dict[str, Path]]:
    """A clients file with one client per role, each with a new key; the auth settings."""
    tables, keys = [], {}
    for name, (role, org) in CLIENTS.items():
        pem, jwk = generate_key("ES384")
        keys[name] = work / f"{name}.pem"
        keys[name].write_bytes(pem)
        tables.append(client_table({"id": f"bench-{name}", "name": f"Bench {name}", "role": role,
                                    "organization": org, "scopes": ["system/*.rs"], "jwks": {"keys": [jwk]}}))
    (work / "clients.toml").write_text("\n".join(tables))
    auth = {"EVI_AUTH": "smart", "EVI_CLIENTS_FILE": str(work / "clients.toml"),
            "EVI_TOKEN_SECRET": uuid.uuid4().hex + uuid.uuid4().hex, "EVI_TOKEN_LIFETIME": "300"}
    return auth, keys


def rate(base: str, paths: list[str], headers: dict, seconds: float, connections: int = 2) -> float:
    stop, counts, errors = threading.Event(), [], []
    barrier = threading.Barrier(connections + 1)

    def worker(k: int):
        client, n = StdlibClient(base, 60.0), 0
        try:
            client.request("GET", paths[0], None, headers)
            barrier.wait()
            i = k
            while not stop.is_set():
                status = client.request("GET", paths[i % len(paths)], None, headers)[0]
                if status != 200:
                    errors.append(status)
                n, i = n + 1, i + connections
        finally:
            counts.append(n)
            client.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(connections)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed: {sorted(set(errors))}")
    return sum(counts) / (time.perf_counter() - started)


def latency(base: str, path: str, headers: dict, reps: int) -> tuple[float, float, int]:
    client = StdlibClient(base, 60.0)
    try:
        for _ in range(3):
            status, _, body = client.request("GET", path, None, headers)
        if status != 200:
            raise RuntimeError(f"{path}: {status} {body[:200]!r}")
        ms = []
        for _ in range(reps):
            t = time.perf_counter()
            client.request("GET", path, None, headers)
            ms.append((time.perf_counter() - t) * 1000)
        return statistics.median(ms), percentile(ms, 99), len(body)
    finally:
        client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--reps", type=int, default=100)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.n, args.rounds, args.seconds, args.reps = 5000, 1, 2.0, 20
    ds = dataset.plan_dataset(args.n, args.seed)
    db = dataset.default_db_path(args.n, args.seed)
    if not db.exists():
        db.parent.mkdir(parents=True, exist_ok=True)
        print(f"building the dataset ({args.n} resources) at {db} ...", flush=True)
        dataset.build_database(db, ds)
    else:
        list(dataset.generate(ds))  # the dataset's facts (counts, personnummer) without writing
    work = Path(tempfile.mkdtemp(prefix="evi-access-"))
    auth, keys = register(work)
    rng = random.Random(args.seed)
    reads = [f"/Patient/pat-{rng.randrange(ds.patients)}" for _ in range(500)]
    searches = [f"/ServiceRequest?subject=Patient/pat-{rng.randrange(ds.patients)}" for _ in range(500)]
    print(f"# machine: {os.cpu_count()} cores, load {os.getloadavg()}; dataset {db} ({args.n} resources)")

    rates: dict[str, list[float]] = {k: [] for k in ("read-off", "read-on", "search-off", "search-on")}
    for _ in range(args.rounds):
        for mode in ("off", "on"):
            server = Server(db, work / f"server-{mode}.log", auth if mode == "on" else None)
            try:
                headers = dict(ACCEPT)
                if mode == "on":
                    token = request_token(server.base, "bench-evi", keys["evi"], "system/*.rs")["access_token"]
                    headers["Authorization"] = f"Bearer {token}"
                rates[f"read-{mode}"].append(rate(server.base, reads, headers, args.seconds))
                rates[f"search-{mode}"].append(rate(server.base, searches, headers, args.seconds))
            finally:
                server.stop()
    for kind in ("read", "search"):
        off, on = statistics.median(rates[f"{kind}-off"]), statistics.median(rates[f"{kind}-on"])
        print(f"{kind:<7} auth off {off:7.0f}/s   auth on {on:7.0f}/s   on/off {on / off:.2f}   (target >= 0.80)")

    server = Server(db, work / "server-latency.log", auth)
    try:
        print(f"\n{'policy-restricted search (auth on)':<78}{'p50 ms':>8}{'p99 ms':>8}")
        for name in ("care-unit", "municipality"):
            org = CLIENTS[name][1]
            token = request_token(server.base, f"bench-{name}", keys[name], "system/*.rs")["access_token"]
            headers = {**ACCEPT, "Authorization": f"Bearer {token}"}
            for path in ("/Patient?_count=20", f"/Task?code=intake&status=requested&_sort=-authored-on&_count=20",
                         "/ServiceRequest?_sort=-authored&_count=20", "/Patient?name=Andersson&_count=20"):
                p50, p99, _ = latency(server.base, path, headers, args.reps)
                print(f"{name + ' (' + org + ') ' + path:<78}{p50:8.1f}{p99:8.1f}"
                      f"{'' if p99 <= 60 else '  > 60'}")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
