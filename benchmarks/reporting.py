"""The seven measures for one month and the SKR report on a large store (issue 15).

A script, not a test: it prints numbers (see benchmarks/README.md, docs/reporting.md).

    .venv/bin/python benchmarks/reporting.py                  # 1,000,000 resources (built once, cached)
    .venv/bin/python benchmarks/reporting.py --size 50000     # a twentieth, for development
    .venv/bin/python benchmarks/reporting.py --storage mongodb://host:27017/?replicaSet=rs0 --size 50000

What it does
  1. Builds a deterministic store (--seed) through the engine (``process_bundle``: the
     write pipeline with validation, indexing and the region's rules, as ``evi-fhir load``),
     in transactions of --bundle entries, unless the SQLite file for (size, seed, version)
     is cached under $TMPDIR/evi-bench-reporting/. Per 1,000,000 resources: 120,000
     Patients (home districts over 40 municipalities), 200,000 contacts (ServiceRequest
     with channel, evi-received) each with its intake Task (triaged ones with outcome,
     created resource and triage time), 120,000 specialist Appointments, 120,000 Slots,
     about 200,000 wait-milestone Encounters (most first visits are the first assessment,
     half of them lead to an investigation or a treatment), 10,000 SIPs (CarePlan,
     CareTeam, Consent), 10,000 completed transfer
     Tasks, plus the units, HealthcareServices and Schedules, over 2024-2025. Memory stays
     flat: resources are generated as the bundles are written.
  2. Evaluates every measure (summary) for --month and the SKR report for it, in-process
     through the reporting entry points, after one warm-up run, and prints each time and
     the total against the 10 s target.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # rest_core

from fhir_server.app import build_runtime  # noqa: E402
from fhir_server.engine import RequestContext, process_bundle  # noqa: E402
from fhir_server.reporting import MEASURES, evaluate_measure, skr_csv, skr_wait_times  # noqa: E402
from fhir_server.settings import Settings  # noqa: E402
from rest_core import luhn_digit  # noqa: E402  (the benchmarks' one personnummer check digit)

DATASET_VERSION = 3  # 3: personnummer with a valid Luhn digit (the server checks it)
CS = "https://evi-fhir.org/fhir/CodeSystem/"
SD = "https://evi-fhir.org/fhir/StructureDefinition/"
PNR = "http://electronichealth.se/identifier/personnummer"
HSA = "urn:oid:1.2.752.29.4.19"
KEY = "benchmark-pseudonym-key-" + "0" * 32
#: per 1,000,000 resources
MIX = {"Patient": 120_000, "ServiceRequest": 200_000, "Task": 200_000, "Appointment": 120_000, "Slot": 120_000,
       "CarePlan": 10_000, "Transfer": 10_000}
CLINICS, PRIMARY, TEAMS, SOCIAL, SERVICES = 12, 30, 4, 10, 24
CHANNELS = ["referral-electronic", "referral-paper", "phone-advice", "phone-professional", "e-service-message",
            "e-service-self-referral-guardian", "e-service-self-referral-child"]
OUTCOMES = ["book-first-visit", "refer-primary-care", "advice-given", "not-eligible"]
DISTRICTS = ["Uddevalla", "Göteborg", "1480", "Borås", "Trollhättan", "Vänersborg", "Mölndal", "Kungälv", "Lerum",
             "Partille", "Alingsås", "Skövde", "Lidköping", "Mariestad", "Stenungsund", "1486", "1487", "Tjörn",
             "Orust", "Lysekil", "Munkedal", "Tanum", "Strömstad", "Sotenäs", "Färgelanda", "Dals-Ed", "Bengtsfors",
             "Mellerud", "Åmål", "Härryda", "Ale", "Lilla Edet", "Mark", "Svenljunga", "Tranemo", "Ulricehamn",
             "Herrljunga", "Vårgårda", "Falköping", "Tidaholm"]
MILESTONES = ["first-assessment", "investigation-decision", "investigation-start", "treatment-decision",
              "treatment-start"]
START = datetime(2024, 1, 1, tzinfo=timezone.utc)
DAYS = 730


def _instant(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _pnr(born: date, p: int) -> str:
    """A valid personnummer (the server checks the Luhn digit over the last ten digits),
    unique per patient index: birth day from ``p``, serial ``p // 6900`` (0..~17 at 1,000,000)."""
    serial = f"{born:%y%m%d}{p // 6900 % 1000:03d}"
    return f"{born:%Y%m%d}{p // 6900 % 1000:03d}{luhn_digit(serial)}"


def _units() -> Iterator[dict]:
    kinds = [("clinic", CLINICS, "bup-clinic"), ("vc", PRIMARY, "primary-care"), ("team", TEAMS, "bup-mobile-team"),
             ("soc", SOCIAL, "social-services")]
    for prefix, n, kind in kinds:
        for i in range(n):
            yield {"resourceType": "Organization", "id": f"{prefix}-{i}", "active": True, "name": f"{prefix} {i}",
                   "identifier": [{"system": HSA, "value": f"SE2321000131-{prefix.upper()}{i:04d}"}],
                   "type": [{"coding": [{"system": CS + "evi-organization-type", "code": kind}]}]}
    for h in range(SERVICES):
        owner = f"clinic-{h % CLINICS}" if h < CLINICS * 2 else f"vc-{h % PRIMARY}"
        yield {"resourceType": "HealthcareService", "id": f"hs-{h}", "active": True, "name": f"Nybesök {h}",
               "providedBy": {"reference": f"Organization/{owner}"}}
        yield {"resourceType": "Schedule", "id": f"sch-{h}", "active": True,
               "actor": [{"reference": f"HealthcareService/hs-{h}"}]}


def _code(system: str, code: str) -> dict:
    return {"coding": [{"system": CS + system, "code": code}]}


def generate(size: int, seed: int) -> Iterator[dict]:
    """Every resource, referred-to first; contacts and their Tasks, Appointments and
    milestones in the same stretch of time. Deterministic per (size, seed)."""
    rng = random.Random(seed)
    yield from _units()
    n = {t: max(1, c * size // 1_000_000) for t, c in MIX.items()}
    patients = n["Patient"]
    for p in range(patients):
        born = date(2007, 1, 1) + timedelta(days=(p * 7919) % 6900)
        yield {"resourceType": "Patient", "id": f"pat-{p}", "birthDate": born.isoformat(),
               "identifier": [{"system": PNR, "value": _pnr(born, p)}],
               "name": [{"family": "Bench", "given": ["Mark"]}],
               "address": [{"use": "home", "district": DISTRICTS[p % len(DISTRICTS)]}]}
    contacts = n["ServiceRequest"]
    for k in range(contacts):
        yield from _contact(rng, k, contacts, patients, n)
    for s in range(n["Slot"]):
        when = START + timedelta(days=s * DAYS / n["Slot"], hours=rng.randrange(8, 16))
        yield {"resourceType": "Slot", "id": f"slot-{s}", "schedule": {"reference": f"Schedule/sch-{rng.randrange(SERVICES)}"},
               "status": rng.choice(("busy", "free")), "start": _instant(when), "end": _instant(when + timedelta(hours=1))}
    for c in range(n["CarePlan"]):
        yield from _sip(c, START + timedelta(days=c * DAYS / n["CarePlan"]), f"Patient/pat-{rng.randrange(patients)}")
    for t in range(n["Transfer"]):
        when = START + timedelta(days=t * DAYS / n["Transfer"])
        yield {"resourceType": "Task", "id": f"transfer-{t}", "status": "completed", "intent": "order",
               "code": _code("evi-task-type", "transfer-care-responsibility"),
               "for": {"reference": f"Patient/pat-{rng.randrange(patients)}"},
               "owner": {"reference": f"Organization/team-{t % TEAMS}"},
               "executionPeriod": {"start": _instant(when), "end": _instant(when + timedelta(days=3))}}


def _sip(c: int, when: datetime, patient: str) -> Iterator[dict]:
    """A SIP as rule 8 wants it: its CareTeam (a region and a municipality unit, each with
    a responsibility) and the child's consent naming both."""
    members = [f"Organization/clinic-{c % CLINICS}", f"Organization/soc-{c % SOCIAL}"]
    day = when.date().isoformat()
    yield {"resourceType": "CareTeam", "id": f"sip-{c}", "status": "active", "subject": {"reference": patient},
           "participant": [{"extension": [{"url": SD + "evi-responsibility", "valueString": "Insatser"}],
                            "member": {"reference": m}} for m in members]}
    yield {"resourceType": "Consent", "id": f"sip-{c}", "status": "active",
           "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
           "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
           "patient": {"reference": patient}, "dateTime": _instant(when), "performer": [{"reference": patient}],
           "policy": [{"uri": "https://www.riksdagen.se/sv/dokument-och-lagar/"}],
           "provision": {"type": "permit", "period": {"start": day},
                         "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                                         "code": "IRCP"}]}, "reference": {"reference": m}} for m in members]}}
    yield {"resourceType": "CarePlan", "id": f"sip-{c}", "status": "active", "intent": "plan",
           "category": [_code("evi-careplan-category", "sip")], "created": day, "subject": {"reference": patient},
           "author": {"reference": members[1]}, "careTeam": [{"reference": f"CareTeam/sip-{c}"}],
           "supportingInfo": [{"reference": f"Consent/sip-{c}"}],
           "activity": [{"detail": {"status": "scheduled", "description": "Insats", "performer": [{"reference": m}]}}
                        for m in members]}


def _contact(rng: random.Random, k: int, contacts: int, patients: int, n: dict) -> Iterator[dict]:
    received = START + timedelta(seconds=int(k / contacts * DAYS * 86400) + rng.randrange(3600))
    sr = f"sr-{k}"
    yield {"resourceType": "ServiceRequest", "id": sr, "status": "active", "intent": "order",
           "subject": {"reference": f"Patient/pat-{rng.randrange(patients)}"},
           "performer": [{"reference": f"Organization/clinic-{rng.randrange(CLINICS)}"}],
           "extension": [{"url": SD + "evi-contact-channel",
                          "valueCoding": {"system": CS + "evi-contact-channel", "code": rng.choice(CHANNELS)}},
                         {"url": SD + "evi-received", "valueDateTime": _instant(received)}],
           "authoredOn": _instant(received)}
    task = {"resourceType": "Task", "id": f"intake-{k}", "status": "requested", "intent": "order",
            "code": _code("evi-task-type", "intake"), "focus": {"reference": f"ServiceRequest/{sr}"},
            "authoredOn": _instant(received),
            "restriction": {"period": {"end": (received + timedelta(days=3)).date().isoformat()}}}
    visit = rng.random() < n["Appointment"] / contacts
    if rng.random() < 0.9:
        outcome = "book-first-visit" if visit else rng.choice(OUTCOMES[1:])
        triaged = received + timedelta(hours=rng.randrange(2, 120))
        task.update(status="completed", lastModified=_instant(triaged),
                    executionPeriod={"start": _instant(received), "end": _instant(triaged)},
                    output=[{"type": _code("evi-task-parameter", "triage-outcome"),
                             "valueCoding": {"system": CS + "evi-triage-outcome", "code": outcome}}])
        if outcome == "book-first-visit":
            task["output"].append({"type": _code("evi-task-parameter", "created"),
                                   "valueReference": {"reference": f"Appointment/appt-{k}"}})
    if visit:
        start = received + timedelta(days=rng.randrange(3, 60))
        yield {"resourceType": "Appointment", "id": f"appt-{k}", "status": "booked", "basedOn": [{"reference": f"ServiceRequest/{sr}"}],
               "extension": [{"url": SD + "evi-care-level", "valueCoding": {"system": CS + "evi-care-level", "code": "specialist"}}],
               "start": _instant(start), "end": _instant(start + timedelta(hours=1)),
               "participant": [{"actor": {"reference": f"HealthcareService/hs-{rng.randrange(CLINICS * 2)}"}, "status": "accepted"}]}
    yield task
    if visit:
        yield from _milestones(rng, k, sr, start)


def _milestones(rng: random.Random, k: int, sr: str, visit: datetime) -> Iterator[dict]:
    """Most first visits are the first assessment; half go on to an investigation or a
    treatment, decided within a week and (mostly) started 10-70 days later."""
    if rng.random() >= 0.85:
        return
    steps = [("first-assessment", visit)]
    if rng.random() < 0.5:
        stage = "investigation" if rng.random() < 0.4 else "treatment"
        decided = visit + timedelta(days=rng.randrange(0, 8))
        steps.append((f"{stage}-decision", decided))
        if rng.random() < 0.9:
            steps.append((f"{stage}-start", decided + timedelta(days=rng.randrange(10, 70))))
    for milestone, day in steps:
        yield {"resourceType": "Encounter", "id": f"ms-{k}-{milestone}", "status": "finished",
               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
               "type": [_code("evi-wait-milestone", milestone)], "basedOn": [{"reference": f"ServiceRequest/{sr}"}],
               "serviceProvider": {"reference": f"Organization/clinic-{k % CLINICS}"},
               "period": {"start": day.date().isoformat()}}


def build(storage: str, size: int, seed: int, bundle: int) -> int:
    runtime = build_runtime(Settings(storage=storage))
    ctx = RequestContext(base_url="http://bench/fhir")
    written, started, entries = 0, time.perf_counter(), []

    def flush() -> None:
        nonlocal written
        process_bundle(runtime, ctx, {"resourceType": "Bundle", "type": "transaction", "entry": entries},
                       return_pref="minimal")
        written += len(entries)
        entries.clear()
        if written // 50_000 != (written - bundle) // 50_000:
            print(f"  built {written:,} ({written / (time.perf_counter() - started):,.0f}/s)", flush=True)

    try:
        for resource in generate(size, seed):
            entries.append({"resource": resource,
                            "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}})
            if len(entries) == bundle:
                flush()
        if entries:
            flush()
    finally:
        runtime.store.close()
    return written


def evaluate(storage: str, month: str) -> list[tuple[str, float]]:
    runtime = build_runtime(Settings(storage=storage, pseudonym_key=KEY))
    ctx = RequestContext(base_url="http://bench/fhir")
    first = datetime.strptime(month, "%Y-%m").date()
    last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    times = []
    try:
        for measure in MEASURES:
            t = time.perf_counter()
            report = evaluate_measure(runtime, ctx, measure, period_start=first.isoformat(),
                                      period_end=last.isoformat(), key=KEY)
            times.append((f"{measure} ({report['group'][0]['population'][0]['count']:,})", time.perf_counter() - t))
        t = time.perf_counter()
        report = skr_wait_times(runtime, ctx, month, key=KEY)
        skr_csv(report)
        times.append((f"$skr-wait-times ({len(report.cases):,} cases)", time.perf_counter() - t))
    finally:
        runtime.store.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--month", default="2025-06")
    parser.add_argument("--bundle", type=int, default=500)
    parser.add_argument("--storage", help="a store to build into and evaluate on (default: the cached SQLite file)")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}")
    storage = args.storage
    if storage is None:
        cache = Path(tempfile.gettempdir()) / "evi-bench-reporting"
        cache.mkdir(exist_ok=True)
        db = cache / f"reporting-n{args.size}-seed{args.seed}-v{DATASET_VERSION}.db"
        storage = f"sqlite://{db}"
        if not db.exists() or (cache / f"{db.name}.partial").exists():
            db.unlink(missing_ok=True)
            (cache / f"{db.name}.partial").touch()
            started = time.perf_counter()
            total = build(storage, args.size, args.seed, args.bundle)
            (cache / f"{db.name}.partial").unlink()
            print(f"built {total:,} resources in {time.perf_counter() - started:,.0f} s -> {db}")
        else:
            print(f"cached store {db}")
    elif not args.storage.startswith("sqlite"):
        total = build(storage, args.size, args.seed, args.bundle)
        print(f"built {total:,} resources")
    evaluate(storage, args.month)  # warm-up: registry, compiled statements, page cache
    times = evaluate(storage, args.month)
    for name, seconds in times:
        print(f"  {seconds * 1000:9.1f} ms  {name}")
    total_s = sum(s for _, s in times)
    print(f"total {total_s:.2f} s (target < 10 s at 1,000,000 resources): {'ok' if total_s < 10 else 'OVER'}")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
