"""EVI workflow throughput over HTTP: intake transactions/s and $triage calls/s.

A script, not a test: it prints numbers.  See benchmarks/README.md.

    .venv/bin/python benchmarks/workflow.py              # n=1000 intakes, 600 triage calls
    .venv/bin/python benchmarks/workflow.py --quick      # n=150: smoke test

What it measures (the real server as a subprocess on a fresh SQLite file, the test
region's configuration, examples/valid loaded; 2 keep-alive connections):
  intake    a transaction of Patient (evi-patient) + ServiceRequest (evi-referral) +
            QuestionnaireResponse, each creating its intake Task (rules 1–2: profile
            validation of four resources, eligibility lookups, the Task) — and the
            same transaction with a ServiceRequest that claims no profile (no intake)
            as the baseline, to show what the workflow costs.
  triage    POST Task/{id}/$triage on the Tasks the intake phase made, in thirds:
            advice, refer-primary-care (creates a ServiceRequest) and book-first-visit
            (books a fresh free Slot: Appointment created, Slot busy).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import random
import sys
import tempfile
import threading
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rest_core import ACCEPT, CONNECTIONS, FHIR_JSON, Phase, Server, luhn_digit, percentile, run_parallel, split  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SD = "https://evi-fhir.org/fhir/StructureDefinition/"
CS = "https://evi-fhir.org/fhir/CodeSystem/"
PNR = "http://electronichealth.se/identifier/personnummer"
HEADERS = {"Content-Type": FHIR_JSON, **ACCEPT}
REGION = 'name = "benchmark"\nevi_unit = "Organization/evi-vgr"\nbup_acute_unit = "Organization/bup-akut-vgr"\n'


def pnr(rng: random.Random) -> tuple[str, str]:
    born = date(2009, 1, 1) + timedelta(days=rng.randrange(16 * 365))
    nine = f"{born:%y%m%d}{rng.randrange(980, 1000):03d}"
    return born.isoformat(), f"{born:%Y}{nine[2:]}{luhn_digit(nine)}"[:12]


def intake_bundle(rng: random.Random, questionnaire_response: dict, *, profiled: bool) -> bytes:
    born, number = pnr(rng)
    p, s, q = (f"urn:uuid:{uuid.uuid4()}" for _ in range(3))
    qr = copy.deepcopy(questionnaire_response)
    qr.pop("id", None)
    qr["subject"] = {"reference": p}
    sr = {
        "resourceType": "ServiceRequest",
        "extension": [{"url": SD + "evi-contact-channel",
                       "valueCoding": {"system": CS + "evi-contact-channel", "code": "referral-electronic"}}],
        "status": "active", "intent": "order", "priority": rng.choice(["routine", "routine", "urgent", "asap"]),
        "subject": {"reference": p}, "requester": {"reference": "Organization/elevhalsan-uddevalla"},
        "performer": [{"reference": "Organization/bup-uddevalla"}],
        "reasonCode": [{"coding": [{"system": CS + "evi-clinical-question", "code": "anxiety"}]}],
        "supportingInfo": [{"reference": q}],
    }
    if profiled:
        sr["meta"] = {"profile": [SD + "evi-referral"]}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": p, "request": {"method": "POST", "url": "Patient"}, "resource": {
            "resourceType": "Patient", "meta": {"profile": [SD + "evi-patient"]},
            "identifier": [{"system": PNR, "value": number}], "name": [{"family": "Bench", "given": ["Mark"]}],
            "birthDate": born}},
        {"fullUrl": q, "request": {"method": "POST", "url": "QuestionnaireResponse"}, "resource": qr},
        {"fullUrl": s, "request": {"method": "POST", "url": "ServiceRequest"}, "resource": sr},
    ]}
    return orjson.dumps(bundle)


def load_examples(client) -> None:
    resources = [json.loads(p.read_text()) for p in sorted((ROOT / "examples" / "valid").glob("*.json"))]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in resources]}
    status, _, data = client.request("POST", "", orjson.dumps(bundle), HEADERS)
    if status != 200:
        raise RuntimeError(f"loading the examples answered {status}: {data[:500]!r}")


def timed_posts(server: Server, bodies: list[tuple[str, bytes]], expect: int) -> tuple[Phase, list[float], list[bytes]]:
    latencies: list[float] = []
    answers: list[bytes] = []
    lock = threading.Lock()

    def work(client, job):
        mine, got = [], []
        for path, body in job:
            t0 = time.perf_counter()
            status, _, data = client.request("POST", path, body, HEADERS)
            mine.append(time.perf_counter() - t0)
            if status != expect:
                raise RuntimeError(f"POST {path} answered {status}: {data[:600]!r}")
            got.append(data)
        with lock:
            latencies.extend(mine)
            answers.extend(got)

    if not bodies:
        raise RuntimeError("nothing to post")
    phase = run_parallel(server, "stdlib", split(bodies, CONNECTIONS), work)
    return phase, latencies, answers


def report(name: str, phase: Phase, latencies: list[float], unit: str) -> dict:
    noisy = " NOISY" if phase.noisy() else ""
    print(f"{name:<28} {phase.rate:8.1f} {unit}/s   p50 {percentile(latencies, 50) * 1e3:6.1f} ms"
          f"   p95 {percentile(latencies, 95) * 1e3:6.1f} ms   ({phase.cpu_note()}){noisy}")
    return {"rate": round(phase.rate, 1), "p50_ms": round(percentile(latencies, 50) * 1e3, 2),
            "p95_ms": round(percentile(latencies, 95) * 1e3, 2), "noisy": phase.noisy()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="intake transactions per variant")
    parser.add_argument("--quick", action="store_true", help="n=150")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    args = parser.parse_args(argv)
    n = 150 if args.quick else args.n
    rng = random.Random(args.seed)
    qr = json.loads((ROOT / "examples/valid/QuestionnaireResponse-referral-general-ella.json").read_text())

    work = Path(tempfile.mkdtemp(prefix="evi-bench-workflow-"))
    (work / "region.toml").write_text(REGION)
    os.environ["EVI_REGION_FILE"] = str(work / "region.toml")
    server = Server(work, None)
    results: dict = {"n": n}
    try:
        server.wait_ready()
        from rest_core import StdlibClient

        client = StdlibClient(server.base, 120)
        load_examples(client)
        client.close()

        plain = [("", intake_bundle(rng, qr, profiled=False)) for _ in range(n)]
        intake = [("", intake_bundle(rng, qr, profiled=True)) for _ in range(n)]
        timed_posts(server, plain[: max(10, n // 10)], 200)  # warm-up (caches, validators)
        plain = plain[max(10, n // 10):]
        phase, lat, _ = timed_posts(server, plain, 200)
        results["baseline"] = report("transaction, no intake", phase, lat, "tx")
        phase, lat, answers = timed_posts(server, intake, 200)
        results["intake"] = report("intake transaction", phase, lat, "tx")
        print(f"{'':<28} ratio intake / baseline {results['intake']['rate'] / results['baseline']['rate']:.2f}")

        # the intake Tasks, and a fresh free Slot for each booking (a new connection:
        # the server closes idle keep-alive connections after 5 s)
        client = StdlibClient(server.base, 120)
        sr_ids = []
        for data in answers:
            for entry in orjson.loads(data)["entry"]:
                parts = entry["response"]["location"].split("/")
                if "ServiceRequest" in parts:
                    sr_ids.append(parts[parts.index("ServiceRequest") + 1])
        task_ids = []
        for sr_id in sr_ids:
            status, _, data = client.request(
                "GET", f"/Task?focus=ServiceRequest/{sr_id}&_elements=id", None, ACCEPT)
            task_ids.append(orjson.loads(data)["entry"][0]["resource"]["id"])
        calls = []
        start = date(2027, 1, 4)
        for i, task_id in enumerate(task_ids):
            kind = i % 3
            if kind == 0:
                params = [{"name": "outcome", "valueCoding": {"system": CS + "evi-triage-outcome", "code": "advice"}},
                          {"name": "note", "valueString": "Råd om sömn och skärmtid."}]
            elif kind == 1:
                params = [{"name": "outcome", "valueCoding": {"system": CS + "evi-triage-outcome",
                                                              "code": "refer-primary-care"}},
                          {"name": "recipient", "valueReference": {"reference": "Organization/vardcentral-uddevalla"}}]
            else:
                day = start + timedelta(days=i // 16)
                slot = {"resourceType": "Slot", "schedule": {"reference": "Schedule/bup-uddevalla-nybesok"},
                        "status": "free", "start": f"{day}T{8 + (i // 2) % 8:02d}:{(i % 2) * 30:02d}:00+01:00",
                        "end": f"{day}T{8 + (i // 2) % 8:02d}:{(i % 2) * 30 + 29:02d}:00+01:00"}
                status, _, data = client.request("POST", "/Slot", orjson.dumps(slot), HEADERS)
                if status != 201:
                    raise RuntimeError(f"creating a Slot answered {status}: {data[:300]!r}")
                params = [{"name": "outcome", "valueCoding": {"system": CS + "evi-triage-outcome",
                                                              "code": "book-first-visit"}},
                          {"name": "slot", "valueReference": {"reference": f"Slot/{orjson.loads(data)['id']}"}}]
            calls.append((f"/Task/{task_id}/$triage", orjson.dumps({"resourceType": "Parameters", "parameter": params})))
        client.close()
        phase, lat, _ = timed_posts(server, calls, 200)
        results["triage"] = report("$triage (3 outcomes mixed)", phase, lat, "calls")
    finally:
        server.stop()
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, load {os.getloadavg()[0]:.2f}")
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
