"""The dashboard's page load times on a store of --size resources (issue 18: under 1 s
on 100,000). A script, not a test: it prints numbers.

    .venv/bin/python benchmarks/ui.py --size 100000                  # loads, then times
    .venv/bin/python benchmarks/ui.py --size 100000 --db /tmp/ui.db --keep
    .venv/bin/python benchmarks/ui.py --pages-only --db /tmp/ui.db   # time pages on a loaded file

The data set is benchmarks/scale.py's (same generator and seed: Patients, referrals,
intake Tasks of six EVI units of which ~20 % open, Appointments, Slots, EpisodeOfCare
over two years), loaded over HTTP into the real server (``evi-fhir serve``, auth off on
loopback). For each page it prints

- server time: the whole HTML answer over one keep-alive connection (request sent to
  last byte read): the first request's (cold: the measures page evaluates five measures
  for twelve periods, then keeps the reports five minutes), then p50 and max of --reps
  after --warmup;
- browser time: a headless Chromium (Debian's ``chromium`` + ``chromium-driver``, via
  Selenium) opening the page, from navigation start to the ``load`` event
  (Navigation Timing), p50 and max of --browser-reps; skipped without Chromium.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import Plan, Server, load  # noqa: E402

BUDGET_MS = 1000.0


def pages(plan: Plan) -> list[tuple[str, str]]:
    last_referral = plan.count("ServiceRequest") - 1
    return [
        ("queue, first page", "/ui/"),
        ("queue, page 40", "/ui/?sida=40"),
        ("queue, one unit", "/ui/?enhet=org-1"),
        ("referral", f"/ui/remiss/sr-{last_referral // 2}"),
        ("referral, newest", f"/ui/remiss/sr-{last_referral}"),
        ("measures, per week", "/ui/matt?per=vecka&till=2025-12-31"),
        ("measures, per month", "/ui/matt?per=manad&till=2025-12-31"),
        ("SKR month", "/ui/skr?manad=2025-11"),
    ]


def server_times(port: int, path: str, reps: int, warmup: int) -> tuple[int, float, list[float]]:
    """(status, the first request's ms, the ms of the ``reps`` after the warm-up)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    times, status, first = [], 0, 0.0
    try:
        for n in range(warmup + reps):
            started = time.perf_counter()
            conn.request("GET", path, headers={"Accept": "text/html"})
            answer = answer_body = conn.getresponse()
            answer_body.read()
            status = answer.status
            if n == 0:
                first = (time.perf_counter() - started) * 1e3
            if n >= warmup:
                times.append((time.perf_counter() - started) * 1e3)
    finally:
        conn.close()
    return status, first, times


def browser_times(driver, url: str, reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        driver.get(url)
        out.append(driver.execute_script(
            "const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd - n.startTime;"))
    return out


def new_browser():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        return None
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--db", type=Path)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--pages-only", action="store_true", help="time the pages of --db as loaded")
    ap.add_argument("--bundle", type=int, default=200)
    ap.add_argument("--connections", type=int, default=2)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--browser-reps", type=int, default=5)
    ap.add_argument("--only", nargs="*", help="time only the pages whose name contains one of these")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="evi-ui-"))
    db = args.db or workdir / "ui.db"
    meta = db.with_name(db.name + ".json")
    if args.pages_only:
        info = json.loads(meta.read_text())
        plan = Plan(info["size"], info["seed"])
    else:
        plan = Plan(args.size, args.seed)
        for suffix in ("", "-wal", "-shm", "-pages"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        print(f"loading {plan.total:,} resources (benchmarks/scale.py's data set) ...", flush=True)
        server = Server(db, None, workdir / "server.log")
        try:
            load(server, plan, args)
        finally:
            server.stop()
        meta.write_text(json.dumps({"size": plan.size, "seed": plan.seed}))
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; store: {plan.total:,} resources")
    # the measures refuse to run without the region's pseudonym key (domain.md §8)
    server = Server(db, None, workdir / "server.log", {"EVI_PSEUDONYM_KEY": "benchmark-only-" + "k" * 32})
    driver = new_browser()
    figures = []
    try:
        print(f"{'page':<22} {'status':>6} {'first':>8} {'server p50':>11} {'max':>8} {'browser p50':>12} {'max':>8}")
        for name, path in pages(plan):
            if args.only and not any(word in name for word in args.only):
                continue
            status, first, times = server_times(server.port, path, args.reps, args.warmup)
            loads = browser_times(driver, f"http://127.0.0.1:{server.port}{path}", args.browser_reps) if driver else []
            row = {"page": name, "path": path, "status": status, "first_ms": first,
                   "server_p50_ms": statistics.median(times),
                   "server_max_ms": max(times), "browser_p50_ms": statistics.median(loads) if loads else None,
                   "browser_max_ms": max(loads) if loads else None}
            figures.append(row)
            browser = f"{row['browser_p50_ms']:>10.0f}ms {row['browser_max_ms']:>6.0f}ms" if loads else f"{'–':>12} {'–':>8}"
            late = " OVER 1 s" if max([first, *times, *loads]) > BUDGET_MS else ""
            print(f"{name:<22} {status:>6} {first:>6.0f}ms {row['server_p50_ms']:>9.0f}ms {row['server_max_ms']:>6.0f}ms {browser}{late}",
                  flush=True)
    finally:
        if driver:
            driver.quit()
        server.stop()
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    if not args.keep and not args.db:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
