"""The long fuzz run (issue 11): N hypothesis cases against a fresh server.

    .venv/bin/python benchmarks/fuzz.py                 # 20,000 cases (~10 min on 2 cores)
    .venv/bin/python benchmarks/fuzz.py --n 2000 --seed 7 --show 20

Starts ``evi-fhir serve`` as a subprocess (SQLite in a temporary folder, the test
region), loads the valid examples and scenario Bundles, then sends N cases from
tests/fuzz/cases.py (mutated examples as create/update/patch/conditional create/
$validate, transaction and batch Bundles, hostile URLs) and checks each answer
with tests/fuzz/oracle.py. Prints counts by status class and by interaction,
"invalid stored: K", the first distinct problems and the server's tracebacks.
Exits 1 on any 5xx, any answer that broke the oracle or any invalid stored
resource. Not a test: the CI run is tests/fuzz/test_fuzz.py (1,050 cases).
"""

from __future__ import annotations

import argparse
import collections
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402

from tests.fuzz.cases import FHIR_JSON, cases  # noqa: E402
from tests.fuzz.oracle import Verdict, check  # noqa: E402
from tests.fuzz.seeds import REGION, load_seeds  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, workdir: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/fhir"
        self.log_path = workdir / "server.log"
        self.log = self.log_path.open("wb")
        cmd = [sys.executable, "-m", "fhir_server.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
               "--storage", f"sqlite:///{workdir / 'fuzz.db'}", "--region", str(REGION),
               "--no-access-log", "--log-level", "warning"]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/metadata", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"the server did not start:\n{self.output()[-3000:]}")

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_bytes().decode(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(2)  # SIGINT: uvicorn shuts down gracefully
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def run(client: httpx.Client, n: int, rng_seed: int) -> list[Verdict]:
    verdicts: list[Verdict] = []

    @seed(rng_seed)
    @settings(max_examples=n, phases=[Phase.generate], database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(case=cases())
    def fuzz(case):
        verdicts.append(check(client, case))
        if len(verdicts) % 1000 == 0:
            print(f"  {len(verdicts)} cases", file=sys.stderr, flush=True)

    fuzz()
    return verdicts


def tracebacks(log: str) -> collections.Counter:
    """The last line of each traceback in the server's log, counted."""
    found = collections.Counter()
    for block in log.split("Traceback (most recent call last):")[1:]:
        frames = [line for line in block.splitlines()[1:] if line.startswith("  File ")]
        ends = [line for line in block.splitlines()[1:] if line and not line.startswith(" ")]
        if ends:
            where = frames[-1].strip() if frames else ""
            found[f"{ends[0][:160]}  [{where[:160]}]"] += 1
    return found


def report(verdicts: list[Verdict], elapsed: float, log: str, show: int) -> int:
    by_class = collections.Counter(v.status_class for v in verdicts)
    by_interaction: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for v in verdicts:
        by_interaction[v.case.interaction][v.status_class] += 1
    invalid = sum(v.invalid_stored for v in verdicts)
    bad = [v for v in verdicts if v.problems]
    print(f"cases: {len(verdicts)} in {elapsed:.0f} s ({len(verdicts) / elapsed:.0f}/s)")
    print("by status class: " + ", ".join(f"{k} {by_class[k]}" for k in sorted(by_class)))
    print("by interaction:")
    for name in sorted(by_interaction):
        counts = by_interaction[name]
        print(f"  {name:12} " + ", ".join(f"{k} {counts[k]}" for k in sorted(counts)))
    print(f"invalid stored: {invalid}")
    print(f"cases that broke the oracle: {len(bad)}")
    distinct: dict[str, Verdict] = {}
    for v in bad:
        problem = re.sub(r"[0-9a-f-]{36}|\d+", "#", v.problems[0])[:200]
        distinct.setdefault(f"{v.case.interaction} {problem}", v)
    for key, v in list(distinct.items())[:show]:
        print(f"  - {v.problems[0][:300]}\n    {v.case.describe()[:400]}")
    errors = tracebacks(log)
    if errors:
        print("server tracebacks:")
        for line, count in errors.most_common(show):
            print(f"  {count:5}  {line}")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="cases (default 20,000)")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed (default 0)")
    parser.add_argument("--show", type=int, default=15, help="distinct problems to print")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="evi-fuzz-") as tmp:
        server = Server(Path(tmp))
        try:
            server.wait_ready()
            with httpx.Client(base_url=server.base, timeout=60, headers={"Accept": FHIR_JSON}) as client:
                client.headers["Content-Type"] = FHIR_JSON
                seeds = load_seeds(client)
                del client.headers["Content-Type"]
                print(f"seeded {len(seeds)} examples; {args.n} cases, seed {args.seed}", flush=True)
                started = time.monotonic()
                verdicts = run(client, args.n, args.seed)
                elapsed = time.monotonic() - started
        finally:
            server.stop()
        return report(verdicts, elapsed, server.output(), args.show)


if __name__ == "__main__":
    sys.exit(main())
