"""Search latency over HTTP on a 100,000-resource EVI dataset, and why slow searches are slow.

A script, not a test: it prints numbers.  See benchmarks/README.md.

    .venv/bin/python benchmarks/search.py                    # n=100,000 (built once, then cached)
    .venv/bin/python benchmarks/search.py --quick            # n=5,000, 40 reps: smoke test
    .venv/bin/python benchmarks/search.py --kinds sort-first,chain --explain all
    .venv/bin/python benchmarks/search.py --profile /tmp/prof --kinds sort-first
    .venv/bin/python benchmarks/search.py --analyze          # with sqlite_stat1 (ANALYZE on a copy)
    .venv/bin/python benchmarks/search.py --prepare-sql "CREATE INDEX ..."   # try an index on a copy

What it does
  1. Builds (or reuses) a SQLite database of --n mixed EVI resources: ~25% each of
     Patients, ServiceRequests, Tasks and Appointments, plus 50 Organizations and 10
     HealthcareServices they point at. It writes through the in-process engine
     (engine.create with assigned ids, 500 creates per unit of work: validation,
     indexing and storage exactly as the server does them) and prints the load rate.
     The file is cached under $TMPDIR/evi-bench-search/, keyed by n, seed, a dataset
     version and a hash of the SQLite schema; --db PATH names the file instead.
  2. Starts the real server on that file (python -m fhir_server.cli serve ...) and, over
     ONE keep-alive http.client connection, sends each kind of search --reps times
     (after a warm-up) with varying parameter values: p50/p95/p99 ms, the server's CPU
     per request, matches and bytes per response, checked against the targets.
  3. In-process breakdown (after the server has stopped): the same searches through
     plan_search / engine.search / searchset_bundle on a Runtime whose SQLite
     connection is wrapped to time every statement: where the time goes (SQL for the
     match list, COUNT, loading bodies, includes; Python; bundle building), and what
     is left for HTTP. With --explain it prints EXPLAIN QUERY PLAN of the SQL the store
     actually ran (by default for the kinds that miss a target).
  A search unanswered after --timeout s is a TIMEOUT (the server is restarted); a kind
  stops after --budget s of timed requests. --analyze / --prepare-sql serve a copy of
  the database with statistics / extra SQL (e.g. a candidate index) applied.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rest_core import (  # noqa: E402  (the sibling benchmark: same server/client helpers)
    Server,
    StdlibClient,
    machine_busy_seconds,
    percentile,
    print_profile,
    proc_cpu_seconds,
)

FHIR_JSON = "application/fhir+json"
ACCEPT = {"Accept": FHIR_JSON}
PNR = "http://electronichealth.se/identifier/personnummer"
HSA = "urn:oid:1.2.752.29.4.19"
SR_ID = "urn:oid:1.2.752.129.2.1.2.1"
SNOMED = "http://snomed.info/sct"
TASK_CODES = "http://electronichealth.se/CodeSystem/task-code"
#: bump when the generated data changes: it is part of the cache key
DATASET_VERSION = 1
#: targets (ms)
SIMPLE_P50, SIMPLE_P99, ANY_P99 = 15.0, 60.0, 250.0
BATCH = 500
NOISE_LIMIT = 0.25

MUNICIPALITIES = ["Stockholm", "Göteborg", "Malmö", "Uppsala", "Linköping", "Örebro", "Västerås", "Umeå", "Lund", "Kiruna"]
FAMILY = ["Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson", "Persson", "Svensson", "Gustafsson",
          "Pettersson", "Jonsson", "Jansson", "Hansson", "Bengtsson", "Lindberg", "Lindqvist", "Berg", "Axelsson", "Hussein"]
GIVEN = ["Alva", "Elsa", "Maja", "Astrid", "Wilma", "Freja", "Ella", "Saga", "Noah", "William", "Hugo", "Liam", "Lucas",
         "Oscar", "Elias", "Adam", "Vincent", "Nils", "Ali", "Sara"]
#: (code, display, weight): a few referral-ish SNOMED codes, skewed like real traffic
SR_CODES = [
    ("306206005", "Referral to service", 0.35),
    ("183524004", "Referral to psychiatry service", 0.25),
    ("308470006", "Referral to child and adolescent psychiatrist", 0.15),
    ("306136006", "Referral to liaison service", 0.10),
    ("183561008", "Referral to speech therapist", 0.08),
    ("183567007", "Referral to psychologist", 0.07),
]
SR_STATUS = [("active", 0.50), ("completed", 0.42), ("draft", 0.04), ("revoked", 0.04)]
PRIORITIES = [("routine", 0.7), ("urgent", 0.15), ("asap", 0.1), ("stat", 0.05)]
EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)
SPAN_DAYS = 730  # authoredOn / appointment starts spread over two years
N_ORGS, N_SERVICES = 50, 10


# --------------------------------------------------------------------------- the dataset


@dataclass
class Dataset:
    """What was generated: enough to pick query values that match something."""

    n: int
    seed: int
    patients: int
    service_requests: int
    tasks: int
    appointments: int
    #: personnummer per patient index
    pnr: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "Patient": self.patients, "ServiceRequest": self.service_requests, "Task": self.tasks,
            "Appointment": self.appointments, "Organization": N_ORGS, "HealthcareService": N_SERVICES,
        }  # fmt: skip


def plan_dataset(n: int, seed: int) -> Dataset:
    rest = max(n - N_ORGS - N_SERVICES, 4)
    quarter = rest // 4
    return Dataset(n, seed, rest - 3 * quarter, quarter, quarter, quarter)


def _weighted(rng: random.Random, table):
    return rng.choices([t[:-1] if len(t) > 2 else t[0] for t in table], weights=[t[-1] for t in table])[0]


def _instant(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def generate(ds: Dataset) -> Iterator[tuple[str, str, dict]]:
    """(type, id, resource) in dependency order; deterministic for (n, seed)."""
    rng = random.Random(ds.seed)
    for o in range(N_ORGS):
        yield "Organization", f"org-{o}", {
            "resourceType": "Organization",
            "identifier": [{"system": HSA, "value": f"SE2321000016-{o:04d}"}],
            "active": True,
            "name": f"{MUNICIPALITIES[o % len(MUNICIPALITIES)]} vårdenhet {o}",
        }
    for h in range(N_SERVICES):
        yield "HealthcareService", f"hs-{h}", {
            "resourceType": "HealthcareService",
            "active": True,
            "providedBy": {"reference": f"Organization/org-{h}"},
            "name": f"BUP mottagning {h}",
        }
    seen: set[str] = set()
    first_birth, birth_days = date(2008, 1, 1), (date(2025, 12, 31) - date(2008, 1, 1)).days
    for p in range(ds.patients):
        born = first_birth + timedelta(days=rng.randrange(birth_days + 1))
        while True:
            pnr = f"{born:%Y%m%d}{rng.randrange(10000):04d}"
            if pnr not in seen:
                seen.add(pnr)
                break
        ds.pnr.append(pnr)
        yield "Patient", f"pat-{p}", {
            "resourceType": "Patient",
            "identifier": [{"system": PNR, "value": pnr}],
            "name": [{"family": rng.choice(FAMILY), "given": [rng.choice(GIVEN)]}],
            "gender": rng.choice(("female", "male")),
            "birthDate": born.isoformat(),
            "address": [{"city": rng.choice(MUNICIPALITIES), "country": "SE"}],
        }
    sr_subject = []
    for s in range(ds.service_requests):
        pat = rng.randrange(ds.patients)
        sr_subject.append(pat)
        code, display = _weighted(rng, SR_CODES)
        authored = EPOCH + timedelta(seconds=rng.randrange(SPAN_DAYS * 86400))
        yield "ServiceRequest", f"sr-{s}", {
            "resourceType": "ServiceRequest",
            "identifier": [{"system": SR_ID, "value": f"remiss-{s}"}],
            "status": _weighted(rng, SR_STATUS),
            "intent": "order" if rng.random() < 0.8 else "proposal",
            "priority": _weighted(rng, PRIORITIES),
            "code": {"coding": [{"system": SNOMED, "code": code, "display": display}]},
            "subject": {"reference": f"Patient/pat-{pat}"},
            "requester": {"reference": f"Organization/org-{rng.randrange(N_ORGS)}"},
            "authoredOn": _instant(authored),
        }
    for t in range(ds.tasks):
        s = rng.randrange(ds.service_requests)
        authored = EPOCH + timedelta(seconds=rng.randrange(SPAN_DAYS * 86400))
        yield "Task", f"task-{t}", {
            "resourceType": "Task",
            "status": "requested" if rng.random() < 0.6 else "completed",
            "intent": "order",
            "code": {"coding": [{"system": TASK_CODES, "code": "intake"}]},
            "focus": {"reference": f"ServiceRequest/sr-{s}"},
            "for": {"reference": f"Patient/pat-{sr_subject[s]}"},
            "owner": {"reference": f"Organization/org-{rng.randrange(N_ORGS)}"},
            "authoredOn": _instant(authored),
            "restriction": {"period": {"end": (authored + timedelta(days=30)).date().isoformat()}},
        }
    for a in range(ds.appointments):
        start = EPOCH + timedelta(minutes=30 * rng.randrange(SPAN_DAYS * 48))
        yield "Appointment", f"appt-{a}", {
            "resourceType": "Appointment",
            "status": "booked",
            "start": _instant(start),
            "end": _instant(start + timedelta(minutes=45)),
            "participant": [
                {"actor": {"reference": f"Patient/pat-{rng.randrange(ds.patients)}"}, "status": "accepted"},
                {"actor": {"reference": f"HealthcareService/hs-{rng.randrange(N_SERVICES)}"}, "status": "accepted"},
            ],
        }


def schema_key() -> str:
    from fhir_server.storage.sqlite.schema import SCHEMA

    return hashlib.sha1(f"{DATASET_VERSION}\n{SCHEMA}".encode()).hexdigest()[:10]


def default_db_path(n: int, seed: int) -> Path:
    return Path(tempfile.gettempdir()) / "evi-bench-search" / f"search-n{n}-seed{seed}-{schema_key()}.db"


def build_database(path: Path, ds: Dataset) -> dict:
    """Write the dataset through the in-process engine into ``path`` (via a temp name)."""
    from fhir_server import engine
    from fhir_server.app import build_runtime
    from fhir_server.engine import RequestContext
    from fhir_server.settings import Settings

    path.parent.mkdir(parents=True, exist_ok=True)
    building = path.with_name(path.name + ".building")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{building}{suffix}").unlink(missing_ok=True)
    runtime = build_runtime(Settings(storage=f"sqlite:///{building}"))
    ctx = RequestContext(base_url="http://127.0.0.1/fhir")
    done, started, cpu0 = 0, time.perf_counter(), time.process_time()
    by_type: dict[str, float] = {}
    batch: list[tuple[str, str, dict]] = []

    def flush() -> None:
        t0 = time.perf_counter()
        with runtime.work(ctx, write=True) as work:
            for rtype, rid, resource in batch:
                engine.create(work, rtype, resource, assigned_id=rid)
        by_type[batch[0][0]] = by_type.get(batch[0][0], 0.0) + time.perf_counter() - t0
        batch.clear()

    try:
        for item in generate(ds):
            if batch and batch[0][0] != item[0]:
                flush()
            batch.append(item)
            done += 1
            if len(batch) >= BATCH:
                flush()
                if done % 10_000 < BATCH:
                    rate = done / (time.perf_counter() - started)
                    sys.stderr.write(f"\r  loading {done}/{ds.n} ({rate:,.0f} resources/s)   ")
                    sys.stderr.flush()
        if batch:
            flush()
    finally:
        sys.stderr.write("\n")
        runtime.store.close()  # TRUNCATE checkpoint: the file is complete on its own
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu0
    for suffix in ("-wal", "-shm"):
        Path(f"{building}{suffix}").unlink(missing_ok=True)
    (path.with_name(path.name + ".json")).write_text(json.dumps({"n": ds.n, "seed": ds.seed, "pnr": ds.pnr}))
    os.replace(building, path)  # last: a file at ``path`` is always complete
    return {"resources": done, "seconds": wall, "per_s": done / wall, "cpu_ms_per_resource": cpu / done * 1e3,
            "per_type_s": by_type}  # fmt: skip


def open_dataset(args) -> tuple[Path, Dataset, dict | None]:
    ds = plan_dataset(args.n, args.seed)
    path = args.db or default_db_path(args.n, args.seed)
    meta = path.with_name(path.name + ".json")
    if path.exists() and meta.exists() and not args.rebuild:
        info = json.loads(meta.read_text())
        if info.get("n") != args.n or info.get("seed") != args.seed:
            raise SystemExit(f"{path} holds n={info.get('n')} seed={info.get('seed')}, not n={args.n} seed={args.seed}")
        ds.pnr = info["pnr"]
        return path, ds, None
    if path.exists() and not meta.exists() and not args.rebuild:
        raise SystemExit(f"{path} exists but was not built by this script (no {meta.name}); --rebuild replaces it")
    print(f"building {path} ({args.n} resources: {ds.counts()}) ...")
    return path, ds, build_database(path, ds)


# --------------------------------------------------------------------------- the searches


@dataclass(frozen=True)
class Kind:
    name: str
    description: str
    #: "simple" searches have the tighter target
    simple: bool
    #: rng -> (resource type or None, query params)
    make: Callable[[random.Random], tuple[str, list[tuple[str, str]]]]
    #: follow the first page's next link to this offset and time only that page
    getpages_offset: int | None = None


def _week(rng: random.Random) -> tuple[str, str]:
    start = date(2024, 1, 1) + timedelta(days=rng.randrange(SPAN_DAYS - 7))
    return start.isoformat(), (start + timedelta(days=7)).isoformat()


def make_kinds(ds: Dataset) -> list[Kind]:
    def pat(rng):
        return rng.randrange(ds.patients)

    def code_status(rng):
        code = rng.choice(SR_CODES)[0]
        return "ServiceRequest", [("code", f"{SNOMED}|{code}"), ("status", rng.choice(("active", "completed")))]

    def authored(rng):
        lo, hi = _week(rng)
        return "ServiceRequest", [("authored", f"ge{lo}"), ("authored", f"lt{hi}")]

    def appt_day(rng):
        day = date(2024, 1, 1) + timedelta(days=rng.randrange(SPAN_DAYS))
        return "Appointment", [
            ("actor", f"HealthcareService/hs-{rng.randrange(N_SERVICES)}"),
            ("date", f"ge{day.isoformat()}"), ("date", f"lt{(day + timedelta(days=1)).isoformat()}"),
        ]  # fmt: skip

    sort = [("_sort", "-authored"), ("_count", "20")]
    return [
        Kind("token-identifier", "ServiceRequest?identifier=sys|remiss-N", True,
             lambda rng: ("ServiceRequest", [("identifier", f"{SR_ID}|remiss-{rng.randrange(ds.service_requests)}")])),
        Kind("token-code-status", "ServiceRequest?code=sct|C&status=S (6 codes x active/completed)", True, code_status),
        Kind("reference", "ServiceRequest?subject=Patient/P", True,
             lambda rng: ("ServiceRequest", [("subject", f"Patient/pat-{pat(rng)}")])),
        Kind("date-week", "ServiceRequest?authored=geD&authored=ltD+7", True, authored),
        Kind("chain", "ServiceRequest?subject.identifier=pnr|X", False,
             lambda rng: ("ServiceRequest", [("subject.identifier", f"{PNR}|{ds.pnr[pat(rng)]}")])),
        Kind("revinclude", "Patient?_id=P&_revinclude=ServiceRequest:subject", False,
             lambda rng: ("Patient", [("_id", f"pat-{pat(rng)}"), ("_revinclude", "ServiceRequest:subject")])),
        Kind("sort-first", "ServiceRequest?_sort=-authored&_count=20 (same query every time)", False,
             lambda rng: ("ServiceRequest", list(sort))),
        Kind("sort-getpages-1000", "its next link at _getpagesoffset=1000 (only that page timed)", False,
             lambda rng: ("ServiceRequest", list(sort)), getpages_offset=1000),
        Kind("sort-offset-1000", "ServiceRequest?_sort=-authored&_count=20&_offset=1000", False,
             lambda rng: ("ServiceRequest", [*sort, ("_offset", "1000")])),
        Kind("task-worklist", "Task?code=intake&status=requested&owner=Organization/O&_sort=-authored-on", False,
             lambda rng: ("Task", [("code", "intake"), ("status", "requested"),
                                   ("owner", f"Organization/org-{rng.randrange(N_ORGS)}"), ("_sort", "-authored-on")])),
        Kind("appointment-day", "Appointment?actor=HealthcareService/H&date=geD&date=ltD+1", False, appt_day),
    ]  # fmt: skip


def query_path(rtype: str, params: list[tuple[str, str]]) -> str:
    return f"/{rtype}?{urlencode(params)}"


# --------------------------------------------------------------------------- the server


@dataclass
class Result:
    kind: Kind
    times_ms: list[float]
    server_cpu_ms: float | None
    #: CPU seconds other processes used per second of the timed loop (noise)
    other_cpu_share: float | None
    matches: list[int]
    totals: list[int | None]
    sizes: list[int]
    capped: bool
    #: the server refused or failed the search (no timings then)
    error: str | None = None

    def p(self, q: float) -> float:
        return percentile(self.times_ms, q) if self.times_ms else float("nan")

    def verdict(self) -> tuple[bool, str]:
        if self.error is not None:
            return False, "ERROR " + self.error.split(":", 1)[0]
        p50, p99 = self.p(50), self.p(99)
        misses = []
        if self.kind.simple:
            if p50 >= SIMPLE_P50:
                misses.append(f"p50>={SIMPLE_P50:g}")
            if p99 >= SIMPLE_P99:
                misses.append(f"p99>={SIMPLE_P99:g}")
        if p99 >= ANY_P99:
            misses.append(f"p99>={ANY_P99:g}")
        return (not misses), ("ok" if not misses else "MISS " + ",".join(misses))


class RequestFailed(RuntimeError):
    pass


def _get(client: StdlibClient, path: str) -> tuple[float, bytes]:
    t0 = time.perf_counter()
    status, _, data = client.request("GET", path, None, ACCEPT)
    elapsed = time.perf_counter() - t0
    if status != 200:
        raise RequestFailed(f"HTTP {status}: GET {path}: {data[:400].decode(errors='replace')}")
    return elapsed, data


def _deep_path(client: StdlibClient, prefix: str, path: str, offset: int) -> str:
    """The first page's next link, moved to ``offset`` (a _getpages snapshot link)."""
    _, data = _get(client, path)
    links = {link["relation"]: link["url"] for link in orjson.loads(data).get("link", [])}
    if "next" not in links:
        raise RequestFailed(f"no next link: {path} has no next page to follow")
    parts = urlsplit(links["next"])
    params = [(k, str(offset) if k in ("_getpagesoffset", "_offset") else v) for k, v in parse_qsl(parts.query)]
    return f"{parts.path.removeprefix(prefix)}?{urlencode(params)}"


def run_kind(server: Server, client: StdlibClient, kind: Kind, reps: int, warmup: int, seed: int, budget: float) -> Result:
    rng = random.Random(f"{seed}-{kind.name}")
    prefix = urlsplit(server.base).path.rstrip("/")
    times, matches, totals, sizes = [], [], [], []
    cpu, other, capped, spent, profiling, first_pages_cpu = 0.0, 0.0, False, 0.0, False, 0.0
    try:
        warm_until = time.perf_counter() + budget / 4
        for _ in range(warmup):
            path = query_path(*kind.make(rng))
            if kind.getpages_offset is not None:
                path = _deep_path(client, prefix, path, kind.getpages_offset)
            _get(client, path)
            if time.perf_counter() > warm_until:
                break
        server.profile_start()
        profiling = True
        s0, m0, c0, w0 = proc_cpu_seconds(server.proc.pid), machine_busy_seconds(), time.process_time(), time.perf_counter()
        for i in range(reps):
            path = query_path(*kind.make(rng))
            if kind.getpages_offset is not None:
                f0 = proc_cpu_seconds(server.proc.pid)
                path = _deep_path(client, prefix, path, kind.getpages_offset)  # untimed
                f1 = proc_cpu_seconds(server.proc.pid)
                if f0 is not None and f1 is not None:
                    first_pages_cpu += f1 - f0  # not this kind's cost
            elapsed, data = _get(client, path)
            times.append(elapsed * 1e3)
            spent += elapsed
            bundle = orjson.loads(data)
            matches.append(sum(1 for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == "match"))
            totals.append(bundle.get("total"))
            sizes.append(len(data))
            if spent > budget and i + 1 < reps:
                capped = True
                break
        # CPU over the whole loop (per-request /proc reads would be all clock-tick noise)
        s1, m1, c1, w1 = proc_cpu_seconds(server.proc.pid), machine_busy_seconds(), time.process_time(), time.perf_counter()
        if s0 is not None and s1 is not None:
            if m0 is not None and m1 is not None:
                slack = 2 * (os.cpu_count() or 1) / os.sysconf("SC_CLK_TCK")
                other = max(0.0, (m1 - m0) - (s1 - s0) - (c1 - c0) - slack) / (w1 - w0)
            cpu = max(0.0, s1 - s0 - first_pages_cpu)
    except RequestFailed as exc:
        if profiling:
            server.profile_stop(f"server-{kind.name}")
        return Result(kind, [], None, None, [], [], [], False, error=str(exc))
    except TimeoutError:
        # the server is stuck in this search (it runs in the event loop): the caller restarts it
        return Result(kind, [], None, None, [], [], [], False, error=f"TIMEOUT: no answer within {client.conn.timeout:g} s")
    server.profile_stop(f"server-{kind.name}")
    count = len(times)
    has_proc = proc_cpu_seconds(server.proc.pid) is not None
    return Result(kind, times, cpu / count * 1e3 if has_proc else None, other if has_proc else None,
                  matches, totals, sizes, capped)  # fmt: skip


# --------------------------------------------------------------------------- in-process breakdown


def classify(sql: str) -> str:
    s = " ".join(sql.split())
    head = s[:12].upper()
    if head.startswith(("BEGIN", "COMMIT", "ROLLBACK")):
        return "tx"
    if s.startswith("SELECT COUNT(*)"):
        return "count"
    if "JOIN history" in s:
        return "load"
    if "FROM idx_reference WHERE" in s and s.startswith("SELECT DISTINCT"):
        return "include"
    if s.startswith("SELECT r.type, r.id FROM resource r"):
        return "match"
    return "other"


class _TimedCursor:
    def __init__(self, cursor, entry: list):
        self._c, self._entry = cursor, entry

    def _timed(self, fn, *a):
        t0 = time.perf_counter()
        try:
            return fn(*a)
        finally:
            self._entry[2] += time.perf_counter() - t0

    def fetchall(self):
        return self._timed(self._c.fetchall)

    def fetchone(self):
        return self._timed(self._c.fetchone)

    def fetchmany(self, *a):
        return self._timed(self._c.fetchmany, *a)

    def __iter__(self):
        return iter(self.fetchall())

    def __getattr__(self, name):
        return getattr(self._c, name)


class TimedConnection:
    """Wraps the store's sqlite3.Connection: every statement's time (execute + fetch),
    and a deadline after which SQLite interrupts the running statement."""

    def __init__(self, conn: sqlite3.Connection):
        self._conn = conn
        self.log: list[list] = []  # [sql, args, seconds], in execution order
        self.deadline: float | None = None
        conn.set_progress_handler(self._progress, 20_000)

    def _progress(self) -> int:
        return 1 if self.deadline is not None and time.perf_counter() > self.deadline else 0

    def execute(self, sql, args=()):
        entry = [sql, list(args), 0.0]
        self.log.append(entry)  # logged first: an interrupted statement can still be EXPLAINed
        t0 = time.perf_counter()
        try:
            cursor = self._conn.execute(sql, args)
        finally:
            entry[2] += time.perf_counter() - t0
        return _TimedCursor(cursor, entry)

    def executemany(self, sql, rows):
        return self._conn.executemany(sql, rows)

    def detach(self) -> sqlite3.Connection:
        self._conn.set_progress_handler(None, 0)
        return self._conn

    def __getattr__(self, name):
        return getattr(self._conn, name)


@dataclass
class Breakdown:
    kind: str
    reps: int
    #: ms per search, by part (medians); empty when interrupted
    parts: dict[str, float]
    statements: list[tuple[str, list, float]]
    refs_materialized: float
    #: the search ran past the deadline and SQLite interrupted it
    interrupted: bool = False


def in_process_breakdown(db: Path, kinds: list[Kind], reps: int, seed: int, deadlines: dict[str, float]) -> tuple[list[Breakdown], object]:
    from fhir_server import engine
    from fhir_server.app import build_runtime
    from fhir_server.engine import RequestContext
    from fhir_server.settings import Settings

    runtime = build_runtime(Settings(storage=f"sqlite:///{db}"))
    store = runtime.store
    if not isinstance(getattr(store, "_conn", None), sqlite3.Connection):
        runtime.store.close()
        raise RuntimeError("the store has no sqlite3 connection at ._conn: cannot time its SQL")
    timed = TimedConnection(store._conn)
    store._conn = timed
    ctx = RequestContext(base_url="http://127.0.0.1/fhir")
    out = []
    try:
        for kind in kinds:
            rng = random.Random(f"{seed}-{kind.name}-inproc")
            rows: list[dict[str, float]] = []
            refs_seen: list[int] = []
            example: list = []
            interrupted = False
            for i in range(reps + 3):  # 3 warm-up
                rtype, params = kind.make(rng)
                token = None
                timed.log.clear()
                timed.deadline = time.perf_counter() + deadlines.get(kind.name, 60.0)
                try:
                    if kind.getpages_offset is not None:
                        with runtime.work(ctx, write=False) as work:
                            first = engine.search(work, engine.plan_search(work, rtype, params), params)
                        token = first.snapshot.token
                        timed.log.clear()
                    t0 = time.perf_counter()
                    with runtime.work(ctx, write=False) as work:
                        if token is not None:
                            t1 = time.perf_counter()
                            found = engine.page(work, token, kind.getpages_offset, None)
                        else:
                            plan = engine.plan_search(work, rtype, params)
                            t1 = time.perf_counter()
                            found = engine.search(work, plan, params)
                    t3 = time.perf_counter()
                except sqlite3.OperationalError as exc:
                    if "interrupted" not in str(exc):
                        raise
                    interrupted = True
                    example = [(s, a, secs) for s, a, secs in timed.log]
                    break
                finally:
                    timed.deadline = None
                bundle = engine.searchset_bundle(ctx.base_url, f"{ctx.base_url}/{rtype}", found)
                body = orjson.dumps(bundle)
                t4 = time.perf_counter()
                example = [(s, a, secs) for s, a, secs in timed.log]  # the last search's statements
                if i < 3:
                    continue
                sql = {"match": 0.0, "count": 0.0, "load": 0.0, "include": 0.0, "other": 0.0, "tx": 0.0}
                for s, _, secs in timed.log:
                    sql[classify(s)] += secs
                plan_s = (t1 - t0) if token is None else 0.0
                rows.append({
                    "total": (t4 - t0) * 1e3,
                    "plan": plan_s * 1e3,
                    **{f"sql_{k}": v * 1e3 for k, v in sql.items()},
                    "engine_python": ((t3 - t0) - sum(sql.values()) - plan_s) * 1e3,
                    "bundle_json": (t4 - t3) * 1e3,
                    "bytes": len(body),
                })  # fmt: skip
                snap = found.snapshot
                refs_seen.append(len(snap.refs) if snap is not None else len(found.matches))
            parts = {k: statistics.median(r[k] for r in rows) for k in rows[0]} if rows else {}
            out.append(Breakdown(kind.name, len(rows), parts, example,
                                 statistics.median(refs_seen) if refs_seen else float("nan"), interrupted))  # fmt: skip
    finally:
        store._conn = timed.detach()
    return out, runtime


def explain(conn: sqlite3.Connection, sql: str, args: list) -> list[str]:
    rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}", args).fetchall()
    depth: dict[int, int] = {0: 0}
    lines = []
    for node, parent, _, detail in rows:
        depth[node] = depth.get(parent, 0) + 1
        lines.append("  " * depth[node] + detail)
    return lines


def print_explain(runtime, b: Breakdown) -> None:
    conn = runtime.store._conn
    print(f"\n--- {b.kind}: the SQL of one search and its query plan ---")
    last = max((i for i, st in enumerate(b.statements) if classify(st[0]) != "tx"), default=-1)
    for i, (sql, args, secs) in enumerate(b.statements):
        category = classify(sql)
        if category == "tx":
            continue
        flat = " ".join(sql.split())
        shown_args = args if len(args) <= 12 else [*args[:12], f"... {len(args) - 12} more"]
        note = " (INTERRUPTED)" if b.interrupted and i == last else ""
        print(f"[{category}] {secs * 1e3:.2f} ms{note}  {flat[:1500]}{' ...' if len(flat) > 1500 else ''}")
        print(f"    args {shown_args}")
        for line in explain(conn, sql, args):
            print(f"    {line}")


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="resources in the dataset (default 100,000)")
    parser.add_argument("--seed", type=int, default=42, help="dataset and query seed (default 42)")
    parser.add_argument("--reps", type=int, default=200, help="timed requests per kind (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests per kind first (default 20)")
    parser.add_argument("--budget", type=float, default=30.0, help="stop a kind after this many seconds of timed requests (default 30)")
    parser.add_argument("--timeout", type=float, default=20.0, help="a search not answered in this many seconds is a TIMEOUT; the server is then restarted (default 20)")
    parser.add_argument("--quick", action="store_true", help="n=5000, reps=40, warmup=5, breakdown-reps=5: smoke test")
    parser.add_argument("--db", type=Path, help="the database file to use (built there if missing); default a cache file under $TMPDIR/evi-bench-search/")
    parser.add_argument("--rebuild", action="store_true", help="build the database even if it is cached")
    parser.add_argument("--analyze", action="store_true", help="serve a copy of the database on which ANALYZE has run (sqlite_stat1), to see what statistics change")
    parser.add_argument("--prepare-sql", action="append", default=[], metavar="SQL", help="run this SQL (e.g. a CREATE INDEX to try) on a copy of the database before serving it; repeatable; before --analyze")
    parser.add_argument("--kinds", help="comma-separated subset of the query kinds (default all)")
    parser.add_argument("--breakdown-reps", type=int, default=20, help="in-process searches per kind for the time breakdown (0: skip; default 20)")
    parser.add_argument("--explain", choices=("misses", "all", "none"), default="misses", help="print EXPLAIN QUERY PLAN for the kinds that miss a target (default), all, or none")
    parser.add_argument("--profile", metavar="DIR", type=Path, help="cProfile the server per kind into DIR/server-<kind>.prof and print the top rows (profiled numbers are not benchmarks)")
    parser.add_argument("--profile-lines", type=int, default=25)
    parser.add_argument("--json", action="store_true", help="also print the results as one JSON line")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.reps, args.warmup = min(args.n, 5000), min(args.reps, 40), min(args.warmup, 5)
        args.breakdown_reps = min(args.breakdown_reps, 5)
    if args.n < 200 or args.reps < 1:
        parser.error("--n must be >= 200 and --reps >= 1")
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    machine = {
        "nproc": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version, "loadavg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }  # fmt: skip
    print(f"machine: nproc={machine['nproc']} CPython {machine['python']} SQLite {machine['sqlite']} "
          f"{machine['platform']}; load average {machine['loadavg_1min']}")
    db, ds, load = open_dataset(args)
    if load:
        print(f"loaded {load['resources']} resources in {load['seconds']:.1f} s: {load['per_s']:,.0f} resources/s "
              f"({load['cpu_ms_per_resource']:.3f} ms CPU each; engine.create x{BATCH} per unit of work)")
        print("  seconds per type: " + ", ".join(f"{t} {s:.1f}" for t, s in load["per_type_s"].items()))
    else:
        print(f"dataset: cached {db} (--rebuild to build it again)")
    print(f"dataset: {ds.counts()}; {db.stat().st_size / 2**20:.0f} MiB")

    kinds = make_kinds(ds)
    if args.kinds:
        wanted = args.kinds.split(",")
        unknown = set(wanted) - {k.name for k in kinds}
        if unknown:
            parser.error(f"--kinds: unknown {sorted(unknown)}; known: {', '.join(k.name for k in kinds)}")
        kinds = [k for k in kinds if k.name in wanted]

    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="evi-bench-search-") as tmp:
        workdir = Path(tmp)
        served = db
        if args.analyze or args.prepare_sql:
            served = workdir / "prepared.db"
            shutil.copyfile(db, served)
            conn = sqlite3.connect(served, isolation_level=None)
            for statement in args.prepare_sql:
                t0 = time.perf_counter()
                conn.execute(statement)
                print(f"on a copy: {statement}  ({time.perf_counter() - t0:.1f} s)")
            if args.analyze:
                t0 = time.perf_counter()
                conn.execute("ANALYZE")
                print(f"on a copy: ANALYZE  ({time.perf_counter() - t0:.1f} s)")
            conn.close()
        starts = 0

        def start_server() -> Server:
            nonlocal starts
            starts += 1
            fresh = Server(workdir / f"server-{starts}", args.profile, db=served)
            print(f"server:  ready in {fresh.wait_ready(timeout=300.0):.1f} s; one keep-alive http.client connection, sequential requests")
            return fresh

        server = start_server()
        client = StdlibClient(server.base, args.timeout)
        try:
            for kind in kinds:
                res = run_kind(server, client, kind, args.reps, args.warmup, args.seed, args.budget)
                results.append(res)
                if res.error:
                    print(f"  {kind.name:<20} {res.error[:300]}")
                else:
                    print(f"  {kind.name:<20} p50 {res.p(50):8.1f} ms  p99 {res.p(99):8.1f} ms  ({len(res.times_ms)} reps)")
                if res.error and res.error.startswith("TIMEOUT"):
                    client.close()
                    server.kill()  # busy in SQLite inside its event loop: it cannot stop politely
                    server = start_server()
                    client = StdlibClient(server.base, args.timeout)
        except BaseException:
            output = server.output()
            server.stop()
            print(f"--- server output ---\n{output}", file=sys.stderr)
            raise
        finally:
            client.close()
        server.stop()

        breakdowns: list[Breakdown] = []
        runtime = None
        if args.breakdown_reps > 0:
            try:
                # kinds that timed out over HTTP run once, interrupted after 1 s, for their SQL
                todo = [r.kind for r in results if r.error is None or r.error.startswith("TIMEOUT")]
                deadlines = {r.kind.name: 1.0 if r.error else args.timeout for r in results}
                breakdowns, runtime = in_process_breakdown(served, todo, args.breakdown_reps, args.seed, deadlines)
            except RuntimeError as exc:
                print(f"no in-process breakdown: {exc}")

        # ------------------------------------------------------------------ report
        print(f"\nHTTP latency, n={args.n}, {args.reps} reps per kind (warm-up {args.warmup}), _count=20; "
              f"targets: simple (*) p50 < {SIMPLE_P50:g} ms and p99 < {SIMPLE_P99:g} ms; every search p99 < {ANY_P99:g} ms")
        header = (f"{'kind':<21} {'reps':>5} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8} {'srv CPU':>8} "
                  f"{'match':>5} {'total':>7} {'KiB':>6}  verdict")
        print(header)
        print("-" * len(header))
        noisy = []
        for r in results:
            ok, verdict = r.verdict()
            star = "*" if r.kind.simple else " "
            if r.error is not None:
                print(f"{star}{r.kind.name:<20} {verdict}: {r.error.split(':', 1)[-1].strip()[:200]}")
                continue
            totals = [t for t in r.totals if t is not None]
            total = f"{statistics.median(totals):.0f}" if totals else "-"
            cpu = f"{r.server_cpu_ms:.1f}" if r.server_cpu_ms is not None else "-"
            cap = "~" if r.capped else " "
            print(f"{star}{r.kind.name:<20} {len(r.times_ms):>4}{cap} {r.p(50):8.1f} {r.p(95):8.1f} {r.p(99):8.1f} "
                  f"{max(r.times_ms):8.1f} {cpu:>8} {statistics.median(r.matches):5.0f} {total:>7} "
                  f"{statistics.median(r.sizes) / 1024:6.1f}  {verdict}")
            if r.other_cpu_share is not None and r.other_cpu_share > NOISE_LIMIT:
                noisy.append(r.kind.name)
        print("(ms; srv CPU = server process CPU ms per request; match = entries per page, total = Bundle.total "
              "(median); ~ = stopped early by --budget)")
        for r in results:
            print(f"  {r.kind.name:<20} {r.kind.description}")
        if noisy:
            print(f"WARNING: other processes used more than {NOISE_LIMIT:.0%} of a core during: {', '.join(noisy)} [NOISY]")

        by_name = {r.kind.name: r for r in results}
        if breakdowns:
            print(f"\nin-process breakdown (median ms per search over {args.breakdown_reps}; same kinds of values): "
                  "SQL by statement, Python in the engine, bundle + orjson.dumps; HTTP = HTTP p50 - in-process total")
            cols = ["total", "plan", "sql_match", "sql_count", "sql_load", "sql_include", "sql_other", "engine_python", "bundle_json"]
            head = f"{'kind':<20} " + " ".join(f"{c.replace('sql_', 'sql:'):>10}" for c in cols) + f" {'HTTP':>7} {'snap':>5}"
            print(head)
            print("-" * len(head))
            for b in breakdowns:
                if b.interrupted or not b.parts:
                    print(f"{b.kind:<20} interrupted after {deadlines[b.kind]:g} s in SQL (see its query plan below)")
                    continue
                http = by_name[b.kind].p(50) - b.parts["total"] if b.kind in by_name else float("nan")
                print(f"{b.kind:<20} " + " ".join(f"{b.parts[c]:10.2f}" for c in cols) + f" {http:7.2f} {b.refs_materialized:5.0f}")
            print("(snap = ids materialized by the search: the first page of every search keeps up to 2000 in a snapshot)")

            misses = {r.kind.name for r in results if not r.verdict()[0]}
            show = {b.kind for b in breakdowns} if args.explain == "all" else misses if args.explain == "misses" else set()
            for b in breakdowns:
                if b.kind in show:
                    print_explain(runtime, b)
        if runtime is not None:
            runtime.store.close()

    met = [r.kind.name for r in results if r.verdict()[0]]
    missed = [f"{r.kind.name} ({r.verdict()[1]})" for r in results if not r.verdict()[0]]
    print(f"\nsummary: n={args.n}; targets met by {len(met)}/{len(results)}"
          + (f"; missed: {'; '.join(missed)}" if missed else "")
          + f"; {time.monotonic() - started:.0f} s" + ("  [PROFILED: not a benchmark]" if args.profile else "")
          + ("  [NOISY]" if noisy else "") + ("  [ANALYZE]" if args.analyze else "")
          + ("  [PREPARED: --prepare-sql]" if args.prepare_sql else ""))

    if args.profile:
        for r in results:
            path = args.profile / f"server-{r.kind.name}.prof"
            if path.exists() and (not r.verdict()[0] or args.explain == "all"):
                print_profile(path, f"server, {r.kind.name}", args.profile_lines)
    if args.json:
        print(json.dumps({
            "machine": machine, "n": args.n, "seed": args.seed, "reps": args.reps, "load": load, "analyze": args.analyze, "prepare_sql": args.prepare_sql,
            "results": {r.kind.name: {
                "p50_ms": r.p(50), "p95_ms": r.p(95), "p99_ms": r.p(99), "max_ms": max(r.times_ms, default=None),
                "error": r.error,
                "reps": len(r.times_ms), "server_cpu_ms": r.server_cpu_ms, "simple": r.kind.simple,
                "ok": r.verdict()[0], "verdict": r.verdict()[1],
            } for r in results},
            "breakdown": {b.kind: b.parts or "interrupted" for b in breakdowns},
        }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
