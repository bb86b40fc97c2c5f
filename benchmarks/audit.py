"""What the PDL access log costs: read and create throughput with the log on vs off.

A script, not a test: it prints numbers. See benchmarks/README.md.

    .venv/bin/python benchmarks/audit.py            # 4 rounds, n=3000 per phase (~1.5 min)
    .venv/bin/python benchmarks/audit.py --quick    # 1 round, n=400: smoke test

What it does
  Rounds alternate a server with the log off (EVI_AUDIT=off) and one with it on (the
  default), each the real server as a subprocess on a fresh SQLite file, over 2
  keep-alive connections (benchmarks/rest_core.py's client and meters):
  create  POST /fhir/ServiceRequest (subject Patient/x: patient data, so each create
          writes an AuditEvent, PatientCreate) --n times;
  read    GET /fhir/ServiceRequest/{id} of what was created, --n times (each read one
          AuditEvent, PatientRead: its patient taken from the body).
  With the log on every answer waits until its AuditEvent's record is durable in the
  server's pending file (one write()); batches of them are sealed and committed to the
  audit file (evi.db-audit) by the request that fills a batch (docs/audit.md). Prints each round, the medians, the
  on/off ratios (targets: read >= 0.7, create >= 0.85), server CPU per request, and
  how many AuditEvents the "on" servers stored (checked against the requests made).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rest_core import (  # noqa: E402  (the REST benchmark's server, client and meters)
    CONNECTIONS,
    create_bodies,
    http_creates,
    http_reads,
    Server,
)

TARGETS = {"read": 0.70, "create": 0.85}


def one_round(work: Path, mode: str, n: int, warmup: int, tag: str) -> dict:
    os.environ["EVI_AUDIT"] = mode
    server = Server(work / f"{tag}-{mode}", None)
    try:
        server.wait_ready()
        _, warm_ids = http_creates(server, "stdlib", create_bodies(warmup, f"{tag}-{mode}-warm"))
        http_reads(server, "stdlib", warm_ids, warmup)
        created, ids = http_creates(server, "stdlib", create_bodies(n, f"{tag}-{mode}"))
        read = http_reads(server, "stdlib", ids, n)
    finally:
        server.stop()
    stored = None
    audit_file = Path(f"{server.db}-audit")
    if mode == "on" and audit_file.exists():
        with sqlite3.connect(audit_file) as conn:
            stored = conn.execute("SELECT COUNT(*) FROM audit_event").fetchone()[0]
        # every answer is logged: the creates and reads, and each connection's first request
        # of each of the 4 phases (a read of a ServiceRequest that does not exist: a 404)
        expected = 2 * (warmup + n) + 4 * CONNECTIONS
        if stored != expected:
            raise RuntimeError(f"the log holds {stored} AuditEvents; {expected} requests were answered")
    return {"create": created, "read": read, "stored": stored}


def _line(kind: str, mode: str, phase) -> str:
    cpu = f"{phase.server_cpu / phase.count * 1e3:.3f} ms CPU/req" if phase.server_cpu is not None else ""
    noisy = "  NOISY" if phase.noisy() else ""
    return f"  {kind:<7} log {mode:<3} {phase.rate:8.0f}/s   {cpu}{noisy}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=3000, help="creates and reads per phase")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.n, args.rounds, args.warmup = 400, 1, 50
    work = Path(tempfile.mkdtemp(prefix="evi-audit-bench-"))
    print(f"# machine: {os.cpu_count()} cores, load {os.getloadavg()}; n={args.n}, rounds={args.rounds}, "
          f"2 connections; {work}", flush=True)
    results: dict[tuple[str, str], list] = {}
    stored = 0
    for r in range(args.rounds):
        print(f"round {r + 1}", flush=True)
        for mode in ("off", "on"):
            found = one_round(work, mode, args.n, args.warmup, f"r{r}")
            stored += found["stored"] or 0
            for kind in ("create", "read"):
                results.setdefault((kind, mode), []).append(found[kind])
                print(_line(kind, mode, found[kind]), flush=True)
    print()
    noisy = False
    for kind in ("read", "create"):
        off = statistics.median(p.rate for p in results[(kind, "off")])
        on = statistics.median(p.rate for p in results[(kind, "on")])
        cpu_off = statistics.median(p.server_cpu / p.count * 1e3 for p in results[(kind, "off")] if p.server_cpu)
        cpu_on = statistics.median(p.server_cpu / p.count * 1e3 for p in results[(kind, "on")] if p.server_cpu)
        noisy = noisy or any(p.noisy() for p in results[(kind, "off")] + results[(kind, "on")])
        verdict = "ok" if on / off >= TARGETS[kind] else "MISS"
        print(f"{kind:<7} log off {off:7.0f}/s   log on {on:7.0f}/s   on/off {on / off:.2f}   "
              f"(target >= {TARGETS[kind]:.2f}: {verdict});  server CPU {cpu_off:.3f} -> {cpu_on:.3f} ms/req")
    print(f"AuditEvents stored by the 'on' servers: {stored} (one per answered request){'  [NOISY]' if noisy else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
