"""Bulk Data ``$export`` of a whole store: resources per second and the server's peak memory.

A script, not a test: it prints numbers (issue 15; see benchmarks/README.md and docs/export.md).

    .venv/bin/python benchmarks/export.py                   # 1,000,000 resources (built once, cached)
    .venv/bin/python benchmarks/export.py --size 20000      # smaller, for development
    .venv/bin/python benchmarks/export.py --size 20000 --pseudonymize
    .venv/bin/python benchmarks/export.py --size 20000 --patients   # Patient/$export
    .venv/bin/python benchmarks/export.py --store /tmp/scale1m.db   # a file of benchmarks/scale.py --keep

What it does
  1. Builds (or reuses) the SQLite dataset of benchmarks/search.py (same generator, same
     cache under $TMPDIR/evi-bench-search/, keyed by size, seed and schema): ~25% each of
     Patients, ServiceRequests, Tasks and Appointments, plus Organizations and services.
  2. Starts the real server (``evi-fhir serve``) on it, export files in a temporary
     directory, and kicks off ``GET [base]/$export`` (auth off: the server's own rights,
     everything), polling the status URL every --poll s until the manifest comes.
  3. Prints resources/s from kick-off to manifest (the target: >= 5,000/s), then
     downloads every file (streamed, counted line by line) and prints that rate.
  4. The server's peak resident memory (VmHWM of /proc/{pid}/status, the whole process
     from its start) against the target (< 300 MB), and the memory it had just before
     the kick-off: what the export added.
  The job is deleted at the end (its files with it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rest_core import Server, StdlibClient  # noqa: E402
from search import open_dataset  # noqa: E402

RATE_TARGET = 5000.0
MEMORY_TARGET_MB = 300.0
KEY = "benchmark-pseudonym-key-" + "b" * 32


def memory_mb(pid: int, field: str) -> float:
    """``VmHWM`` (peak) or ``VmRSS`` (now) of a process, in MB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for process {pid}")


def run_export(server: Server, path: str, params: str, poll: float) -> tuple[dict, float, str, float]:
    """Kick off, poll until done: (manifest, seconds, status URL path, highest RSS seen)."""
    client = StdlibClient(server.base, 600.0)
    try:
        started = time.perf_counter()
        status, headers, body = client.request("GET", f"{path}{params}", None,
                                               {"Prefer": "respond-async", "Accept": "application/fhir+json"})
        if status != 202:
            raise RuntimeError(f"kick-off answered {status}: {body[:300]!r}")
        status_path = headers["content-location"].removeprefix(server.base)
        rss, last = 0.0, ""
        while True:
            status, headers, body = client.request("GET", status_path)
            rss = max(rss, memory_mb(server.proc.pid, "VmRSS"))
            if status != 202:
                break
            if headers.get("x-progress") != last:
                last = headers.get("x-progress", "")
                sys.stderr.write(f"\r  {last:<90}")
                sys.stderr.flush()
            time.sleep(poll)
        seconds = time.perf_counter() - started
        sys.stderr.write("\n")
        if status != 200:
            raise RuntimeError(f"status answered {status}: {body[:300]!r}")
        return json.loads(body), seconds, status_path, rss
    finally:
        client.close()


def download(server: Server, manifest: dict) -> tuple[int, int, float]:
    """Every file of the manifest, read in chunks: (lines, bytes, seconds)."""
    import http.client
    from urllib.parse import urlsplit

    lines = size = 0
    started = time.perf_counter()
    for item in manifest["output"]:
        url = urlsplit(item["url"])
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=600)
        conn.request("GET", url.path)
        answer = conn.getresponse()
        if answer.status != 200:
            raise RuntimeError(f"{item['url']} answered {answer.status}")
        while chunk := answer.read(1 << 20):
            lines += chunk.count(b"\n")
            size += len(chunk)
        conn.close()
    return lines, size, time.perf_counter() - started


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", "--n", dest="n", type=int, default=1_000_000, help="resources in the store")
    ap.add_argument("--seed", type=int, default=42, help="dataset seed (default 42, as benchmarks/search.py)")
    ap.add_argument("--db", type=Path, help="the database file (default: the cached dataset of benchmarks/search.py)")
    ap.add_argument("--rebuild", action="store_true", help="build the dataset again")
    ap.add_argument("--store", type=Path, help="any evi-fhir SQLite file, used as it is (e.g. the 1,000,000 of "
                                                "benchmarks/scale.py --keep); the size is what the export counts")
    ap.add_argument("--pseudonymize", action="store_true", help="export with _pseudonymize=true")
    ap.add_argument("--type", help="_type for the kick-off (default: every type)")
    ap.add_argument("--patients", action="store_true", help="Patient/$export (the patients' data) instead of $export")
    ap.add_argument("--batch", type=int, help="EVI_EXPORT_BATCH_SIZE for the server (default: the server's)")
    ap.add_argument("--poll", type=float, default=0.5, help="seconds between status polls")
    args = ap.parse_args()

    if args.store:
        path, held = args.store, None
    else:
        path, ds, built = open_dataset(args)
        held = ds.n
        if built:
            print(f"built in {built['seconds']:.0f} s ({built['per_s']:,.0f} resources/s)")
    workdir = Path(tempfile.mkdtemp(prefix="evi-bench-export-"))
    os.environ["EVI_EXPORT_DIR"] = str(workdir / "exports")
    os.environ["EVI_PSEUDONYM_KEY"] = KEY
    if args.batch:
        os.environ["EVI_EXPORT_BATCH_SIZE"] = str(args.batch)
    params = "&".join(p for p in (f"_type={args.type}" if args.type else "",
                                  "_pseudonymize=true" if args.pseudonymize else "") if p)
    server = Server(workdir / "server", None, db=path)
    try:
        server.wait_ready(120)
        before = memory_mb(server.proc.pid, "VmRSS")
        endpoint = "/Patient/$export" if args.patients else "/$export"
        manifest, seconds, status_path, rss = run_export(server, endpoint, f"?{params}" if params else "", args.poll)
        exported = sum(item["count"] for item in manifest["output"])
        lines, size, fetch = download(server, manifest)
        peak = memory_mb(server.proc.pid, "VmHWM")
        client = StdlibClient(server.base, 60.0)
        client.request("DELETE", status_path)
        client.close()
    finally:
        server.stop()
    rate = exported / seconds
    print(f"store: {held if held is not None else exported:,} resources ({path})")
    print(f"export: {exported:,} resources in {seconds:.1f} s = {rate:,.0f} resources/s "
          f"(target >= {RATE_TARGET:,.0f}: {'ok' if rate >= RATE_TARGET else 'MISSED'})")
    print(f"files: {len(manifest['output'])}, {lines:,} lines, {size / 1e6:,.1f} MB downloaded in {fetch:.1f} s "
          f"({lines / max(fetch, 1e-9):,.0f} lines/s)")
    print(f"server memory: {before:.0f} MB before the kick-off, {rss:.0f} MB highest seen while it ran, "
          f"peak {peak:.0f} MB (target < {MEMORY_TARGET_MB:.0f}: {'ok' if peak < MEMORY_TARGET_MB else 'MISSED'})")
    if lines != exported:
        print(f"MISMATCH: the manifest counts {exported} resources, the files hold {lines} lines")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
