"""Years of a region's data: ingest, size on disk and the worklist queries at up to 1,000,000 resources.

A script, not a test: it prints numbers (issue 16; see benchmarks/README.md and docs/performance.md).

    .venv/bin/python benchmarks/scale.py                         # 1,000,000 resources (~25 min load)
    .venv/bin/python benchmarks/scale.py --size 100000           # a tenth of it
    .venv/bin/python benchmarks/scale.py --size 100000 --db /tmp/scale.db --keep
    .venv/bin/python benchmarks/scale.py --queries-only --db /tmp/scale.db   # query part on a loaded file

What it does
  1. Generates a deterministic EVI data set (--seed): per 1,000,000 resources 160,000
     Patients, 245,000 referrals (ServiceRequest), 245,000 intake Tasks, 140,000
     Appointments, 150,000 Slots and 60,000 EpisodeOfCare, plus the Organizations,
     HealthcareServices and Schedules they point at, over two years (2024-2025).
  2. Starts the real server (``evi-fhir serve``) on a new SQLite file, pinned to one core
     (--server-cpu), and loads the data over HTTP from this process, pinned to another
     (--client-cpu): transaction Bundles of --bundle entries (PUT with the data set's ids)
     over --connections keep-alive connections. Prints the ingest rate of every 100,000
     (of every tenth below 1,000,000).
  3. Bytes per resource: the file's size after the server stopped (checkpointed) / resources.
  4. Restarts the server on the file and times the query set (--reps each, one
     connection, sequential, after a warm-up): p50/p95/p99 ms and the matches.
  5. Creates (POST of a referral) and reads (GET by id) over --connections connections,
     each after a tenth as many untimed (the writer's page cache starts empty).
  The machine's load average is printed at the start and the end: other work on the
  machine shows in every figure.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlencode, urlsplit

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rest_core import free_port, luhn_digit, percentile, proc_cpu_seconds  # noqa: E402

FHIR_JSON = "application/fhir+json"
HEADERS = {"Accept": FHIR_JSON, "Content-Type": FHIR_JSON}
PNR = "http://electronichealth.se/identifier/personnummer"
HSA = "urn:oid:1.2.752.29.4.19"
SR_ID = "urn:oid:1.2.752.129.2.1.2.1"
SNOMED = "http://snomed.info/sct"
TASK_TYPE = "https://evi-fhir.org/fhir/CodeSystem/evi-task-type"
DATASET_VERSION = 1

#: per 1,000,000 resources
MIX = {"Patient": 160_000, "ServiceRequest": 245_000, "Task": 245_000, "Appointment": 140_000, "Slot": 150_000,
       "EpisodeOfCare": 60_000}
EVI_UNITS, PERFORMERS, REQUESTERS, SERVICES = 6, 12, 42, 24
FAMILY = ["Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson", "Persson", "Svensson",
          "Gustafsson", "Pettersson", "Jonsson", "Jansson", "Hansson", "Bengtsson", "Lindberg", "Lindqvist", "Berg",
          "Axelsson", "Hussein"]
GIVEN = ["Alva", "Elsa", "Maja", "Astrid", "Wilma", "Freja", "Ella", "Saga", "Noah", "William", "Hugo", "Liam", "Lucas",
         "Oscar", "Elias", "Adam", "Vincent", "Nils", "Ali", "Sara"]
SR_CODES = [("306206005", 0.35), ("183524004", 0.25), ("308470006", 0.15), ("306136006", 0.10), ("183561008", 0.08),
            ("183567007", 0.07)]
SR_STATUS = [("active", 0.50), ("completed", 0.42), ("draft", 0.03), ("revoked", 0.05)]
TASK_STATUS = [("completed", 0.755), ("requested", 0.10), ("in-progress", 0.095), ("cancelled", 0.05)]
PRIORITIES = [("routine", 0.7), ("urgent", 0.15), ("asap", 0.1), ("stat", 0.05)]
START = datetime(2024, 1, 1, tzinfo=timezone.utc)
DAYS = 731


def _pick(rng: random.Random, table) -> str:
    return rng.choices([t[0] for t in table], weights=[t[1] for t in table])[0]


def _instant(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Plan:
    size: int
    seed: int

    def count(self, resource_type: str) -> int:
        return max(1, MIX[resource_type] * self.size // 1_000_000)

    @property
    def total(self) -> int:
        return sum(self.count(t) for t in MIX) + EVI_UNITS + PERFORMERS + REQUESTERS + 2 * SERVICES

    def pnr(self, p: int) -> str:
        """A patient's personnummer: valid (the server checks the date and the Luhn digit on
        every write) and unique per index (birth day from ``p``, serial from ``p // 6500``)."""
        born = date(2008, 1, 1) + timedelta(days=(p * 7919) % 6500)
        serial = f"{born:%y%m%d}{p // 6500 % 1000:03d}"
        return f"{born:%Y%m%d}{p // 6500 % 1000:03d}{luhn_digit(serial)}"


def generate(plan: Plan) -> Iterator[dict]:
    """Every resource, in an order where what is referred to comes first; deterministic per (size, seed)."""
    rng = random.Random(plan.seed)
    for o in range(EVI_UNITS + PERFORMERS + REQUESTERS):
        yield {"resourceType": "Organization", "id": f"org-{o}", "active": True,
               "identifier": [{"system": HSA, "value": f"SE2321000016-{o:04d}"}], "name": f"Enhet {o}"}
    for h in range(SERVICES):
        yield {"resourceType": "HealthcareService", "id": f"hs-{h}", "active": True, "name": f"BUP mottagning {h}",
               "providedBy": {"reference": f"Organization/org-{EVI_UNITS + h % PERFORMERS}"}}
        yield {"resourceType": "Schedule", "id": f"sch-{h}", "active": True,
               "actor": [{"reference": f"HealthcareService/hs-{h}"}]}
    counts = {t: plan.count(t) for t in MIX}
    made = dict.fromkeys(MIX, 0)
    total = sum(counts.values())
    # interleaved over the two years: step k of ``total`` is at START + k/total of the span
    order = list(MIX)
    for k in range(total):
        # the type whose share is furthest behind goes next (a deterministic even mix)
        t = min(order, key=lambda x: (made[x] + 1) / counts[x] if made[x] < counts[x] else 2.0)
        n = made[t]
        made[t] += 1
        when = START + timedelta(seconds=int(k / total * DAYS * 86400) + rng.randrange(3600))
        patients = max(made["Patient"], 1)
        if t == "Patient":
            yield {"resourceType": "Patient", "id": f"pat-{n}", "identifier": [{"system": PNR, "value": plan.pnr(n)}],
                   "name": [{"family": rng.choice(FAMILY), "given": [rng.choice(GIVEN)]}],
                   "gender": rng.choice(("female", "male")),
                   "birthDate": (date(2008, 1, 1) + timedelta(days=(n * 7919) % 6500)).isoformat()}
        elif t == "ServiceRequest":
            yield {"resourceType": "ServiceRequest", "id": f"sr-{n}",
                   "identifier": [{"system": SR_ID, "value": f"remiss-{n}"}],
                   "status": _pick(rng, SR_STATUS), "intent": "order", "priority": _pick(rng, PRIORITIES),
                   "code": {"coding": [{"system": SNOMED, "code": _pick(rng, SR_CODES)}]},
                   "subject": {"reference": f"Patient/pat-{rng.randrange(patients)}"},
                   "requester": {"reference": f"Organization/org-{EVI_UNITS + PERFORMERS + rng.randrange(REQUESTERS)}"},
                   "performer": [{"reference": f"Organization/org-{EVI_UNITS + rng.randrange(PERFORMERS)}"}],
                   "authoredOn": _instant(when)}
        elif t == "Task":
            sr = min(n, max(made["ServiceRequest"] - 1, 0))
            yield {"resourceType": "Task", "id": f"task-{n}", "status": _pick(rng, TASK_STATUS), "intent": "order",
                   "code": {"coding": [{"system": TASK_TYPE, "code": "intake"}]},
                   "focus": {"reference": f"ServiceRequest/sr-{sr}"},
                   "for": {"reference": f"Patient/pat-{rng.randrange(patients)}"},
                   "owner": {"reference": f"Organization/org-{rng.randrange(EVI_UNITS)}"},
                   "authoredOn": _instant(when),
                   "restriction": {"period": {"end": (when + timedelta(days=3)).date().isoformat()}}}
        elif t == "Appointment":
            start = START + timedelta(minutes=30 * int((when - START).total_seconds() // 1800))
            yield {"resourceType": "Appointment", "id": f"appt-{n}", "status": "booked",
                   "start": _instant(start), "end": _instant(start + timedelta(minutes=45)),
                   "participant": [
                       {"actor": {"reference": f"Patient/pat-{rng.randrange(patients)}"}, "status": "accepted"},
                       {"actor": {"reference": f"HealthcareService/hs-{rng.randrange(SERVICES)}"}, "status": "accepted"},
                   ]}
        elif t == "Slot":
            start = START + timedelta(minutes=30 * int((when - START).total_seconds() // 1800))
            yield {"resourceType": "Slot", "id": f"slot-{n}", "schedule": {"reference": f"Schedule/sch-{rng.randrange(SERVICES)}"},
                   "status": rng.choice(("busy", "free")), "start": _instant(start),
                   "end": _instant(start + timedelta(minutes=45))}
        else:
            episode = {"resourceType": "EpisodeOfCare", "id": f"eoc-{n}", "status": "active",
                       "patient": {"reference": f"Patient/pat-{rng.randrange(patients)}"},
                       "managingOrganization": {"reference": f"Organization/org-{EVI_UNITS + rng.randrange(PERFORMERS)}"},
                       "period": {"start": _instant(when)}}
            if rng.random() < 0.6:
                episode["status"] = "finished"
                episode["period"]["end"] = _instant(when + timedelta(days=rng.randrange(10, 200)))
            yield episode


def bundles(plan: Plan, size: int) -> Iterator[bytes]:
    entries = []
    for resource in generate(plan):
        entries.append({"resource": resource, "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}})
        if len(entries) == size:
            yield orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries})
            entries = []
    if entries:
        yield orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries})


# --------------------------------------------------------------------------- server and client


class Client:
    def __init__(self, base: str, timeout: float = 120.0):
        parts = urlsplit(base)
        self.prefix = parts.path.rstrip("/")
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        if not (path == self.prefix or path.startswith((self.prefix + "/", self.prefix + "?"))):
            path = self.prefix + path
        self.conn.request(method, path, body=body, headers=HEADERS)
        r = self.conn.getresponse()
        return r.status, r.read()

    def close(self) -> None:
        self.conn.close()


class Server:
    def __init__(self, db: Path, cpu: int | None, log: Path, extra_env: dict | None = None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/fhir"
        cmd = [sys.executable, "-m", "fhir_server.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
               "--storage", f"sqlite:///{db}", "--no-access-log", "--log-level", "warning"]
        self.log = open(log, "ab")
        env = {**os.environ, **(extra_env or {})}
        preexec = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env, preexec_fn=preexec)
        started = time.monotonic()
        while time.monotonic() - started < 300:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited with {self.proc.returncode}: see {log}")
            try:
                c = Client(self.base, 5)
                if c.request("GET", "/metadata")[0] == 200:
                    c.close()
                    return
                c.close()
            except OSError:
                time.sleep(0.2)
        raise SystemExit("the server did not start")

    def cpu(self) -> float:
        return proc_cpu_seconds(self.proc.pid) or 0.0

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=600)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def parallel(base: str, connections: int, jobs: Iterator, work: Callable[[Client, object], int]) -> tuple[int, float]:
    """``work(client, job)`` over ``connections`` threads pulling from ``jobs``: (units done, seconds)."""
    lock = threading.Lock()
    done = [0]
    errors: list[BaseException] = []

    def run():
        client = Client(base)
        try:
            while True:
                with lock:
                    job = next(jobs, None)
                if job is None or errors:
                    return
                n = work(client, job)
                with lock:
                    done[0] += n
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=run) for _ in range(connections)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return done[0], time.perf_counter() - started


# --------------------------------------------------------------------------- phases


def load(server: Server, plan: Plan, args) -> list[tuple[int, float]]:
    """Ingest over HTTP; (resources, seconds) per step of 100,000 (a tenth of smaller sizes)."""
    step = 100_000 if plan.size >= 1_000_000 else max(plan.size // 10, 1)
    marks: list[tuple[int, float]] = []
    state = {"done": 0, "mark": 0, "t": time.perf_counter()}
    lock = threading.Lock()
    source = bundles(plan, args.bundle)

    def work(client: Client, body: bytes) -> int:
        status, data = client.request("POST", "", body)
        if status != 200:
            raise RuntimeError(f"transaction answered {status}: {data[:800]!r}")
        n = body.count(b'"request":')
        with lock:
            state["done"] += n
            while state["done"] >= state["mark"] + step:
                now = time.perf_counter()
                state["mark"] += step
                marks.append((state["mark"], now - state["t"]))
                print(f"  {state['mark']:>9,} resources: {step / (now - state['t']):7,.0f} /s", flush=True)
                state["t"] = now
        return n

    parallel(server.base, args.connections, source, work)
    return marks


@dataclass
class Query:
    name: str
    #: rng -> a request path (with query)
    make: Callable[[random.Random], str]
    #: p99 target, ms
    target: float = 50.0
    #: follow next links to this offset, timing the pages after it
    deep: int = 0


def queries(plan: Plan) -> list[Query]:
    patients = plan.count("Patient")
    # 10,000 at 1,000,000 resources; a sixth of the smallest status's referrals below that
    deep = min(10_000, plan.count("ServiceRequest") // 6)

    def q(path: str, **params) -> str:
        return path + "?" + urlencode(list(params.items()) if isinstance(params, dict) else params)

    def day(rng: random.Random) -> date:
        return date(2024, 1, 1) + timedelta(days=rng.randrange(DAYS - 8))

    def week(rng: random.Random) -> str:
        lo = day(rng)
        return "/ServiceRequest?" + urlencode([("authored", f"ge{lo}"), ("authored", f"lt{lo + timedelta(days=7)}")])

    return [
        Query("read by id", lambda r: f"/Patient/pat-{r.randrange(patients)}"),
        Query("identifier", lambda r: q("/Patient", identifier=f"{PNR}|{plan.pnr(r.randrange(patients))}")),
        Query("reference", lambda r: q("/ServiceRequest", subject=f"Patient/pat-{r.randrange(patients)}")),
        Query("chain", lambda r: q("/ServiceRequest", **{"subject.identifier": f"{PNR}|{plan.pnr(r.randrange(patients))}"})),
        Query("_revinclude", lambda r: q("/Patient", _id=f"pat-{r.randrange(patients)}", _revinclude="ServiceRequest:subject")),
        Query("intake worklist", lambda r: q("/Task", code=f"{TASK_TYPE}|intake", owner=f"Organization/org-{r.randrange(EVI_UNITS)}",
                                             status="requested", _sort="-authored-on")),
        Query("referrals newest first", lambda r: q("/ServiceRequest", _sort="-authored")),
        Query("… by performer", lambda r: q("/ServiceRequest", performer=f"Organization/org-{EVI_UNITS + r.randrange(PERFORMERS)}",
                                            _sort="-authored")),
        Query(f"next link past offset {deep:,}", lambda r: q("/ServiceRequest", status=r.choice(("active", "completed")),
                                                            _sort="-authored", _count="200"), deep=deep),
        Query("_summary=count by status", lambda r: r.choice([
            q("/Task", status=s, _summary="count") for s, _ in TASK_STATUS] + [
            q("/ServiceRequest", status=s, _summary="count") for s, _ in SR_STATUS if s != "draft"]), target=100.0),
        Query("_total=accurate by code", lambda r: q("/ServiceRequest", code=f"{SNOMED}|{r.choice(SR_CODES)[0]}",
                                                    _total="accurate"), target=100.0),
        Query("authored one week", week),
        Query("Appointment day", lambda r: q("/Appointment", date=day(r).isoformat())),
        Query("Appointment day of a service", lambda r: q("/Appointment", actor=f"HealthcareService/hs-{r.randrange(SERVICES)}",
                                                          date=day(r).isoformat())),
    ]


def _matches(body: bytes) -> tuple[int, str | None]:
    doc = orjson.loads(body)
    if doc.get("resourceType") != "Bundle":
        return 1, None
    nxt = next((link["url"] for link in doc.get("link", []) if link["relation"] == "next"), None)
    return doc.get("total", len(doc.get("entry", []))), nxt


def time_queries(server: Server, plan: Plan, args) -> list[dict]:
    client = Client(server.base)
    rng = random.Random(args.seed + 1)
    out = []
    for query in queries(plan):
        if args.only and not any(o in query.name for o in args.only):
            continue
        samples: list[float] = []
        matches: list[int] = []
        cpu0 = server.cpu()
        reps = max(args.reps // 10, 5) if query.deep else args.reps
        for rep in range(reps + args.warmup):
            path = query.make(rng)
            if query.deep:
                timed = _deep(client, path, query.deep, 5)
                if rep >= args.warmup:
                    samples.extend(timed)
                continue
            t0 = time.perf_counter()
            status, body = client.request("GET", path)
            elapsed = (time.perf_counter() - t0) * 1e3
            if status != 200:
                raise RuntimeError(f"{path}: {status} {body[:500]!r}")
            if rep >= args.warmup:
                samples.append(elapsed)
                matches.append(_matches(body)[0])
        cpu = (server.cpu() - cpu0) / max(len(samples), 1) * 1e3
        if not samples:
            print(f"  {query.name:32s} no samples")
            continue
        row = {"query": query.name, "n": len(samples), "p50": percentile(samples, 50), "p95": percentile(samples, 95),
               "p99": percentile(samples, 99), "target": query.target, "cpu_ms": cpu,
               "matches": (min(matches), max(matches)) if matches else None}
        out.append(row)
        flag = "ok" if row["p99"] <= query.target else "MISS"
        found = f"{row['matches'][0]:,}-{row['matches'][1]:,}" if row["matches"] else "(pages)"
        print(f"  {query.name:32s} p50 {row['p50']:7.1f}  p95 {row['p95']:7.1f}  p99 {row['p99']:7.1f} ms "
              f"(target {query.target:.0f}: {flag})  server CPU {cpu:6.2f} ms  matches {found}", flush=True)
    client.close()
    return out


def _deep(client: Client, path: str, offset: int, pages: int) -> list[float]:
    """Follow next links to ``offset``; the times of the ``pages`` pages after it."""
    status, body = client.request("GET", path)
    seen = 0
    timed: list[float] = []
    while True:
        doc = orjson.loads(body)
        seen += len(doc.get("entry", []))
        nxt = next((link["url"] for link in doc.get("link", []) if link["relation"] == "next"), None)
        if nxt is None or len(timed) >= pages:
            return timed
        target = urlsplit(nxt)
        t0 = time.perf_counter()
        status, body = client.request("GET", f"{target.path}?{target.query}")
        elapsed = (time.perf_counter() - t0) * 1e3
        if status != 200:
            raise RuntimeError(f"{nxt}: {status} {body[:300]!r}")
        if seen >= offset:
            timed.append(elapsed)


def creates_and_reads(server: Server, plan: Plan, args) -> dict:
    rng = random.Random(args.seed + 2)
    patients = plan.count("Patient")
    # a tenth more of each, untimed first (as the queries' warm-up): the writer connection
    # starts with an empty page cache, and its first creates read their index pages in
    warm_creates, warm_reads = args.creates // 10, args.reads // 10
    bodies = iter([orjson.dumps({
        "resourceType": "ServiceRequest", "status": "active", "intent": "order",
        "identifier": [{"system": SR_ID, "value": f"bench-{args.seed}-{i}-{time.time_ns()}"}],
        "code": {"coding": [{"system": SNOMED, "code": "306206005"}]},
        "subject": {"reference": f"Patient/pat-{rng.randrange(patients)}"},
        "performer": [{"reference": f"Organization/org-{EVI_UNITS + rng.randrange(PERFORMERS)}"}],
        # distinct instants, as real referrals have (one shared value made a tie group of
        # thousands that every later "newest first" query on a kept file had to read)
        "authoredOn": f"2026-01-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z"})
        for i in range(warm_creates + args.creates)])

    def create(client: Client, body: bytes) -> int:
        status, data = client.request("POST", "/ServiceRequest", body)
        if status != 201:
            raise RuntimeError(f"create answered {status}: {data[:300]!r}")
        return 1

    parallel(server.base, args.connections, itertools.islice(bodies, warm_creates), create)
    n, seconds = parallel(server.base, args.connections, bodies, create)
    creates = n / seconds
    paths = iter([f"/Patient/pat-{rng.randrange(patients)}" for _ in range(warm_reads + args.reads)])

    def read(client: Client, path: str) -> int:
        status, data = client.request("GET", path)
        if status != 200:
            raise RuntimeError(f"read answered {status}")
        return 1

    parallel(server.base, args.connections, itertools.islice(paths, warm_reads), read)
    n, seconds = parallel(server.base, args.connections, paths, read)
    return {"creates_per_s": creates, "reads_per_s": n / seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--db", type=Path, help="the database file (default: a new one in a temporary directory)")
    ap.add_argument("--keep", action="store_true", help="keep the database file")
    ap.add_argument("--queries-only", action="store_true", help="time the queries (and creates/reads) on --db as loaded")
    ap.add_argument("--bundle", type=int, default=200)
    ap.add_argument("--connections", type=int, default=2)
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--creates", type=int, default=5000)
    ap.add_argument("--reads", type=int, default=20000)
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--client-cpu", type=int, default=1)
    ap.add_argument("--no-pin", action="store_true")
    ap.add_argument("--only", nargs="*", help="time only the queries whose name contains one of these")
    ap.add_argument("--audit", choices=("on", "off"), default="on",
                    help="the server's PDL access log (EVI_AUDIT; default on, as the product ships; off measures the "
                         "store and API alone, as the issue's own figures were taken before the log existed)")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = ap.parse_args()

    server_cpu = None if args.no_pin else args.server_cpu
    if not args.no_pin:
        os.sched_setaffinity(0, {args.client_cpu})
    workdir = Path(tempfile.mkdtemp(prefix="evi-scale-"))
    db = args.db or workdir / "scale.db"
    meta_path = db.with_name(db.name + ".json")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}; "
          f"server on cpu {server_cpu}, client on cpu {None if args.no_pin else args.client_cpu}; "
          f"PDL access log {args.audit}")
    os.environ["EVI_AUDIT"] = args.audit  # the servers started below inherit it
    figures: dict = {"args": {k: str(v) for k, v in vars(args).items()}}
    if args.queries_only:
        info = json.loads(meta_path.read_text())
        plan = Plan(info["size"], info["seed"])
    else:
        plan = Plan(args.size, args.seed)
        for suffix in ("", "-wal", "-shm", "-pages"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        print(f"loading {plan.total:,} resources over HTTP: transaction Bundles of {args.bundle}, "
              f"{args.connections} connections ...", flush=True)
        server = Server(db, server_cpu, workdir / "server.log")
        cpu0, t0 = server.cpu(), time.perf_counter()
        try:
            marks = load(server, plan, args)
        finally:
            wall, cpu = time.perf_counter() - t0, server.cpu() - cpu0
            io = _io_note(server)
            server.stop()
        size = db.stat().st_size
        figures["ingest"] = {"resources": plan.total, "seconds": wall, "per_s": plan.total / wall,
                             "server_cpu_ms_per_resource": cpu / plan.total * 1e3, "steps": marks,
                             "last_step_per_s": (marks[-1][0] - marks[-2][0]) / marks[-1][1] if len(marks) > 1 else None,
                             "bytes": size, "bytes_per_resource": size / plan.total}
        meta_path.write_text(json.dumps({"size": plan.size, "seed": plan.seed, "version": DATASET_VERSION}))
        last = figures["ingest"]["last_step_per_s"]
        print(f"ingest: {plan.total:,} in {wall:,.0f} s = {plan.total / wall:,.0f} /s overall; "
              f"last step {last or 0:,.0f} /s; server CPU {cpu / plan.total * 1e3:.2f} ms per resource{io}")
        print(f"size: {size:,} bytes = {size / plan.total:,.0f} bytes per resource")
    print(f"queries ({args.reps} each after {args.warmup} warm-up, one connection):", flush=True)
    server = Server(db, server_cpu, workdir / "server.log")
    try:
        figures["queries"] = time_queries(server, plan, args)
        if args.creates or args.reads:
            figures["writes"] = creates_and_reads(server, plan, args)
            print(f"creates {figures['writes']['creates_per_s']:,.0f} /s, reads {figures['writes']['reads_per_s']:,.0f} /s "
                  f"({args.connections} connections)")
    finally:
        server.stop()
    print(f"load average at the end {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    if not args.keep and not args.db:
        shutil.rmtree(workdir, ignore_errors=True)


def _io_note(server: Server) -> str:
    """Bytes the server moved through read/write system calls (Linux /proc)."""
    try:
        fields = dict(line.split(": ") for line in Path(f"/proc/{server.proc.pid}/io").read_text().splitlines())
    except (OSError, ValueError):
        return ""
    return f"; read {int(fields['rchar']) / 1e9:.1f} GB, wrote {int(fields['wchar']) / 1e9:.1f} GB through system calls"


if __name__ == "__main__":
    main()
