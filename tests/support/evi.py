"""Builders and loaders for EVI workflow tests: valid Swedish identifiers, the example
units, and the scenario Bundles of examples/scenarios with fresh identities."""

from __future__ import annotations

import copy
import json
import random
import re
import threading
from datetime import date
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TEST_REGION = Path(__file__).parent / "region-test.toml"

PNR = "http://electronichealth.se/identifier/personnummer"
HSA = "urn:oid:1.2.752.29.4.19"
SD = "https://evi-fhir.org/fhir/StructureDefinition/"
CS = "https://evi-fhir.org/fhir/CodeSystem/"
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}

__all__ = [
    "CS", "EXAMPLES", "FHIR_JSON", "HSA", "PNR", "SD", "TEST_REGION",
    "example", "load_examples", "luhn_digit", "patient", "personnummer", "post_transaction", "referral",
    "scenario", "slot",
]


def luhn_digit(nine: str) -> str:
    total = 0
    for i, ch in enumerate(nine):
        n = int(ch) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return str((10 - total % 10) % 10)


#: personnummer handed out in this test process, and those the examples hold: a drawn
#: one is never one of them (random serials collided: test_triage.py alone draws 34
#: numbers of one birth date, for one server)
_TAKEN: set[str] = set()
_TAKEN_LOCK = threading.Lock()
#: the examples' fictional serials first, then the rest of 900-999
_SERIALS = (range(980, 1000), range(900, 980))


def _example_numbers() -> set[str]:
    return {m for p in EXAMPLES.rglob("*.json") for m in re.findall(r"\b(?:19|20)\d{10}\b", p.read_text())}


def personnummer(born: date, serial: int | None = None) -> str:
    """A valid 12-digit personnummer for a birth date (serial 980–999 as in the examples,
    900–979 once those are taken).

    Without ``serial``, one this process has not handed out before and no example
    holds; a birth date whose 100 serials are all taken is a test error.
    """
    def number(s: int) -> str:
        return f"{born:%Y%m%d}{s:03d}{luhn_digit(f'{born:%y%m%d}{s:03d}')}"

    if serial is not None:
        return number(serial)
    with _TAKEN_LOCK:
        if not _TAKEN:
            _TAKEN.update(_example_numbers())
        free = []
        for serials in _SERIALS:
            free = free or [n for n in map(number, serials) if n not in _TAKEN]
        if not free:
            raise RuntimeError(f"all 100 personnummer of {born} are taken: use another birth date")
        drawn = random.choice(free)
        _TAKEN.add(drawn)
        return drawn


def example(name: str) -> dict:
    return json.loads((EXAMPLES / "valid" / f"{name}.json").read_text())


def load_examples(client: httpx.Client) -> None:
    """PUT every resource of examples/valid in one transaction (the example units, slots...)."""
    resources = [json.loads(p.read_text()) for p in sorted((EXAMPLES / "valid").glob("*.json"))]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in resources]}
    r = client.post("", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 200, r.text


def post_transaction(client: httpx.Client, bundle: dict) -> dict[str, str]:
    """Post a transaction; return fullUrl -> 'Type/id' of what each entry landed on."""
    r = client.post("", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    landed = {}
    for entry, response in zip(bundle["entry"], r.json()["entry"]):
        location = response["response"].get("location", "")
        parts = location.split("/")
        if "_history" in parts:
            parts = parts[: parts.index("_history")]
        landed[entry.get("fullUrl", "")] = "/".join(parts[-2:])
    return landed


def scenario(name: str, *, born: date | None = None) -> dict:
    """A scenario Bundle; with ``born``, its child gets a fresh personnummer of that birth date."""
    bundle = json.loads((EXAMPLES / "scenarios" / f"{name}.json").read_text())
    if born is None:
        return bundle
    bundle = copy.deepcopy(bundle)
    pnr = personnummer(born)
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] != "Patient":
            continue
        old = next(i["value"] for i in resource["identifier"] if i["system"] == PNR)
        resource["identifier"] = [{"system": PNR, "value": pnr}]
        resource["birthDate"] = born.isoformat()
        if "ifNoneExist" in entry["request"]:
            entry["request"]["ifNoneExist"] = entry["request"]["ifNoneExist"].replace(old, pnr)
    return bundle


def patient(born: date, *, pnr: str | None = None, placement: dict | None = None) -> dict:
    resource = {
        "resourceType": "Patient",
        "meta": {"profile": [SD + "evi-patient"]},
        "identifier": [{"system": PNR, "value": pnr or personnummer(born)}],
        "name": [{"family": "Testsson", "given": ["Test"]}],
        "birthDate": born.isoformat(),
    }
    if placement:
        resource["extension"] = [placement]
    return resource


def referral(patient_ref: str, *, priority: str = "routine", requester: str | None = None,
             channel: str = "referral-electronic", performer: str | None = None) -> dict:
    resource = {
        "resourceType": "ServiceRequest",
        "meta": {"profile": [SD + "evi-referral"]},
        "extension": [{"url": SD + "evi-contact-channel",
                       "valueCoding": {"system": CS + "evi-contact-channel", "code": channel}}],
        "status": "active",
        "intent": "order" if channel.startswith("referral") else "proposal",
        "priority": priority,
        "subject": {"reference": patient_ref},
        "requester": {"reference": requester or patient_ref},
        "reasonCode": [{"coding": [{"system": CS + "evi-clinical-question", "code": "anxiety"}]}],
    }
    if performer:
        resource["performer"] = [{"reference": performer}]
    return resource


def slot(schedule_ref: str, start: str, end: str, status: str = "free") -> dict:
    return {"resourceType": "Slot", "schedule": {"reference": schedule_ref}, "status": status,
            "start": start, "end": end}


# ---- $triage (appended for tests/integration/workflow/test_triage*.py) ----------------------

INTAKE_CODE = f"{CS}evi-task-type|intake"
NYBESOK_SCHEDULE = "Schedule/bup-uddevalla-nybesok"


def intake_task_of(client: httpx.Client, landed: dict[str, str]) -> dict:
    """The intake Task of the ServiceRequest a posted scenario (``post_transaction``'s answer) made."""
    sr_ref = next(v for v in landed.values() if v.startswith("ServiceRequest/"))
    bundle = client.get("/Task", params={"focus": sr_ref, "code": INTAKE_CODE}).json()
    tasks = [e["resource"] for e in bundle.get("entry", [])]
    assert len(tasks) == 1, bundle
    return tasks[0]


def new_intake_task(client: httpx.Client, name: str = "self-referral-guardian", born: date | None = None) -> dict:
    """Post scenario ``name`` with a fresh child; return its intake Task."""
    return intake_task_of(client, post_transaction(client, scenario(name, born=born or date(2013, 4, 1))))


def triage_parameters(outcome: str, **params: dict) -> dict:
    """Parameters for $triage: ``triage_parameters("book-first-visit", slot={"valueReference": ...})``."""
    parameter = [{"name": "outcome", "valueCoding": {"system": f"{CS}evi-triage-outcome", "code": outcome}}]
    parameter += [{"name": name, **value} for name, value in params.items()]
    return {"resourceType": "Parameters", "parameter": parameter}


def new_slot(client: httpx.Client, schedule_ref: str = NYBESOK_SCHEDULE, status: str = "free",
             day: int | None = None) -> str:
    """POST a one-hour Slot on the Schedule; return its id."""
    day = random.randint(1, 28) if day is None else day
    hour = random.randint(8, 16)
    start, end = f"2026-03-{day:02d}T{hour:02d}:00:00+01:00", f"2026-03-{day:02d}T{hour + 1:02d}:00:00+01:00"
    r = client.post("/Slot", json=slot(schedule_ref, start, end, status), headers=FHIR_JSON)
    assert r.status_code == 201, r.text
    return r.json()["id"]


# -- SiS integrated care and care-responsibility transfer (rule 7) ------------------------------

TASK_TYPE = CS + "evi-task-type"
ORG_TYPE = CS + "evi-organization-type"
STEP_SYSTEM = CS + "evi-integrated-care-step"


def mobile_team(capacity: int | None = None, *, name: str = "Mobilt team BUP (test)") -> dict:
    """A BUP mobile-team Organization with a fresh HSA-id; ``capacity`` None: no evi-capacity."""
    resource = {
        "resourceType": "Organization",
        "meta": {"profile": [SD + "evi-organization"]},
        "identifier": [{"system": HSA, "value": f"SE2321000131-MT{random.getrandbits(40):010X}"}],
        "active": True,
        "type": [{"coding": [{"system": ORG_TYPE, "code": "bup-mobile-team"}]}],
        "name": name,
    }
    if capacity is not None:
        resource["extension"] = [{"url": SD + "evi-capacity", "valueInteger": capacity}]
    return resource


def sis_transfer(*, born: date, team: str | dict | None = None, placement: tuple[str, str] | None = ("sis", "LVU"),
                 consent: bool = True) -> dict:
    """examples/scenarios/sis-transfer.json with a fresh child born ``born``.

    ``team``: an existing ``Organization/{id}`` to transfer to, or an Organization resource
    to create (default: a fresh ``mobile_team(10)``) - so tests never share the example team.
    ``placement``: (type, legalBasis) of the child's evi-placement, None for no placement.
    ``consent``: False leaves the Consent out."""
    bundle = scenario("sis-transfer", born=born)
    team = mobile_team(10) if team is None else team
    entries = []
    team_url = None
    for entry in bundle["entry"]:
        resource = entry["resource"]
        kind = resource["resourceType"]
        if kind == "Organization" and any(c["code"] == "bup-mobile-team" for t in resource["type"] for c in t["coding"]):
            team_url = entry["fullUrl"]
            if isinstance(team, str):
                continue
            entry = {"fullUrl": team_url, "resource": copy.deepcopy(team), "request": {"method": "POST", "url": "Organization"}}
        elif kind == "Patient":
            ext = next(e for e in resource["extension"] if e["url"] == SD + "evi-placement")
            if placement is None:
                resource["extension"].remove(ext)
                if not resource["extension"]:
                    del resource["extension"]
            else:
                for sub in ext["extension"]:
                    if sub["url"] == "type":
                        sub["valueCoding"]["code"] = placement[0]
                    elif sub["url"] == "legalBasis":
                        sub["valueCoding"]["code"] = placement[1]
        elif kind == "Consent" and not consent:
            continue
        elif kind == "Task" and not consent:
            resource.pop("reasonReference", None)
        entries.append(entry)
    bundle["entry"] = entries
    if isinstance(team, str):  # point every reference to the team's urn at the existing team
        text = json.dumps(bundle).replace(f'"{team_url}"', f'"{team}"')
        bundle = json.loads(text)
    return bundle


def landed_of(landed: dict[str, str], resource_type: str) -> str:
    """The one 'Type/id' of ``resource_type`` among what post_transaction returned."""
    found = [v for v in landed.values() if v.startswith(f"{resource_type}/")]
    assert len(found) == 1, (resource_type, found)
    return found[0]


def integrated_care_episode(patient_ref: str, team_ref: str, *, status: str = "active", step: str = "efforts",
                            sis_home: str = "Organization/sis-ljungbacken", start: str = "2026-01-10") -> dict:
    """An evi-integrated-care EpisodeOfCare managed by ``team_ref``."""
    return {
        "resourceType": "EpisodeOfCare",
        "meta": {"profile": [SD + "evi-integrated-care"]},
        "extension": [
            {"url": SD + "evi-sis-home", "valueReference": {"reference": sis_home}},
            {"url": SD + "evi-integrated-care-step", "valueCoding": {"system": STEP_SYSTEM, "code": step}},
        ],
        "status": status,
        "patient": {"reference": patient_ref},
        "managingOrganization": {"reference": team_ref},
        "period": {"start": start},
    }
