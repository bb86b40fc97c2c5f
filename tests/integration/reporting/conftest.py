"""A region server with a reporting data set built through the API (auth off, so the
historical receipt times of evi-received are honoured), shared by the module's tests.
Every expected number in the tests is worked out by hand from the table in
``reporting_world``'s docstring."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.support.evi import (
    CS, FHIR_JSON, PNR, SD, TEST_REGION, load_examples, personnummer, referral, slot, triage_parameters,
)
from tests.support.live_server import LiveServer

KEY = "reporting-test-key-" + "x" * 32
STOCKHOLM = ZoneInfo("Europe/Stockholm")
BUP_HSA = "SE2321000131-E000000000201"  # Organization/bup-uddevalla
SCHEDULE = "Schedule/bup-uddevalla-nybesok"


def _post(client: httpx.Client, resource: dict) -> dict:
    r = client.post(f"/{resource['resourceType']}", json=resource, headers=FHIR_JSON)
    assert r.status_code == 201, r.text
    return r.json()


def child(client: httpx.Client, born: date, district: str | None = None, *, use: str = "home",
          first: str | None = None) -> tuple[str, str]:
    """A Patient (fresh personnummer); returns (reference, personnummer)."""
    pnr = personnummer(born)
    resource = {"resourceType": "Patient", "meta": {"profile": [SD + "evi-patient"]},
                "identifier": [{"system": PNR, "value": pnr}], "name": [{"family": "Rapportsson", "given": ["Test"]}],
                "birthDate": born.isoformat()}
    addresses = []
    if first is not None:
        addresses.append({"use": "temp", "city": "X", "district": first})
    if district is not None:
        addresses.append({"use": use, "city": "X", "district": district})
    if addresses:
        resource["address"] = addresses
    return f"Patient/{_post(client, resource)['id']}", pnr


def contact(client: httpx.Client, patient: str, received: str, channel: str = "referral-electronic") -> tuple[str, dict]:
    """A contact with a historical receipt time; returns (ServiceRequest reference, intake Task)."""
    sr = referral(patient, channel=channel)
    sr["extension"].append({"url": SD + "evi-received", "valueDateTime": received})
    ref = f"ServiceRequest/{_post(client, sr)['id']}"
    bundle = client.get("/Task", params={"focus": ref, "code": f"{CS}evi-task-type|intake"}).json()
    (task,) = [e["resource"] for e in bundle["entry"]]
    return ref, task


def triage(client: httpx.Client, task: dict, outcome: str, **params) -> None:
    r = client.post(f"/Task/{task['id']}/$triage", json=triage_parameters(outcome, **params), headers=FHIR_JSON)
    assert r.status_code == 200, r.text


def book(client: httpx.Client, task: dict, start: str) -> None:
    begin = datetime.fromisoformat(start)
    s = _post(client, slot(SCHEDULE, start, (begin + timedelta(hours=1)).isoformat()))
    triage(client, task, "book-first-visit", slot={"valueReference": {"reference": f"Slot/{s['id']}"}})


def milestone(client: httpx.Client, sr: str, kind: str, day: str) -> None:
    _post(client, {"resourceType": "Encounter", "meta": {"profile": [SD + "evi-wait-milestone"]}, "status": "finished",
                   "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                   "type": [{"coding": [{"system": CS + "evi-wait-milestone", "code": kind}]}],
                   "basedOn": [{"reference": sr}], "serviceProvider": {"reference": "Organization/bup-uddevalla"},
                   "period": {"start": day}})


def deviate(client: httpx.Client, sr: str, kind: str, interval: str, start: str, end: str) -> None:
    resource = client.get(f"/{sr}").json()
    resource.setdefault("extension", []).append({"url": SD + "evi-wait-deviation", "extension": [
        {"url": "type", "valueCoding": {"system": CS + "evi-wait-deviation-type", "code": kind}},
        {"url": "period", "valuePeriod": {"start": start, "end": end}},
        {"url": "interval", "valueCode": interval}]})
    r = client.put(f"/{sr}", json=resource, headers=FHIR_JSON)
    assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def reporting_server(tmp_path_factory):
    db = tmp_path_factory.mktemp("reporting") / "evi.db"
    with LiveServer(storage=f"sqlite://{db}", region_file=str(TEST_REGION), pseudonym_key=KEY) as live:
        with httpx.Client(base_url=live.base_url, timeout=60, headers={"Accept": "application/fhir+json"}) as c:
            load_examples(c)
            live.world = reporting_world(c)
        yield live


@pytest.fixture
def client(reporting_server):
    with httpx.Client(base_url=reporting_server.base_url, timeout=60,
                      headers={"Accept": "application/fhir+json"}) as c:
        yield c


@pytest.fixture
def world(reporting_server) -> dict:
    return reporting_server.world


def reporting_world(c: httpx.Client) -> dict:
    """The data set (region time zone Europe/Stockholm; "now" is when the test runs):

    contact  child (born, home district)     received (evi-received)      triage
    sA       pA 2019-09-10 Uddevalla          2026-09-05                   first visit 2026-09-25 (20 d)
    sB       pB 2011-03-01 1480 (temp: Uddevalla) 2026-09-10T14:00+02:00   first visit 2026-10-20 (40 d)
    sC       pC 2023-01-01 -                  2026-09-30T23:30+02:00       -
    sD       pD 2008-01-01 Atlantis (first addr., no home) 2026-09-20      refer-primary-care vårdcentral
    sE       pA                               2026-10-01T00:30+02:00 (Sept 30 UTC, Oct 1 here)
    sF       pC                               2026-08-31                   -
    sG       pC                               yesterday                    refer-primary-care (on time)
    sH       pE 2015-06-01 -                  2026-10-02                   -
    sI       pF 2012-01-01 -                  2026-08-01                   -

    Every triage runs now, so the deadline (receipt + 3 days) of every September contact
    has passed; sG's has not. SKR milestones (BUP Uddevalla) and deviations:
    sA first-assessment + investigation-decision 2026-09-25, investigation-start and
    treatment-decision 2026-10-30, MoV on investigation 2026-10-01..2026-10-10;
    sB PvV on first-assessment 2026-09-15..2026-09-30 (no milestone: its first visit is
    booked at BUP); sH first-assessment 2026-10-12; sI first-assessment 2026-10-15.
    A free Slot of BUP Uddevalla on 2026-10-05 (in the 21 days after 2026-09-30).
    """
    pA, pnr_a = child(c, date(2019, 9, 10), "Uddevalla")
    pB, pnr_b = child(c, date(2011, 3, 1), "1480", first="Uddevalla")
    pC, _ = child(c, date(2023, 1, 1))
    pD, _ = child(c, date(2008, 1, 1), "Atlantis", use="work")
    pE, pnr_e = child(c, date(2015, 6, 1))
    pF, pnr_f = child(c, date(2012, 1, 1))
    sA, tA = contact(c, pA, "2026-09-05")
    sB, tB = contact(c, pB, "2026-09-10T14:00:00+02:00", "e-service-self-referral-guardian")
    sC, tC = contact(c, pC, "2026-09-30T23:30:00+02:00", "phone-advice")
    sD, tD = contact(c, pD, "2026-09-20")
    sE, tE = contact(c, pA, "2026-10-01T00:30:00+02:00")
    sF, tF = contact(c, pC, "2026-08-31")
    yesterday = (datetime.now(STOCKHOLM).date() - timedelta(days=1)).isoformat()
    sG, tG = contact(c, pC, yesterday)
    sH, tH = contact(c, pE, "2026-10-02")
    sI, tI = contact(c, pF, "2026-08-01")
    book(c, tA, "2026-09-25T09:00:00+02:00")
    book(c, tB, "2026-10-20T09:00:00+02:00")
    primary = {"recipient": {"valueReference": {"reference": "Organization/vardcentral-uddevalla"}}}
    triage(c, tD, "refer-primary-care", **primary)
    triage(c, tG, "refer-primary-care", **primary)
    milestone(c, sA, "first-assessment", "2026-09-25")
    milestone(c, sA, "investigation-decision", "2026-09-25")
    milestone(c, sA, "investigation-start", "2026-10-30")
    milestone(c, sA, "treatment-decision", "2026-10-30")
    deviate(c, sA, "MoV", "investigation", "2026-10-01", "2026-10-10")
    deviate(c, sB, "PvV", "first-assessment", "2026-09-15", "2026-09-30")
    milestone(c, sH, "first-assessment", "2026-10-12")
    milestone(c, sI, "first-assessment", "2026-10-15")
    _post(c, slot(SCHEDULE, "2026-10-05T09:00:00+02:00", "2026-10-05T10:00:00+02:00"))
    return {"sA": sA, "sB": sB, "sC": sC, "sD": sD, "sE": sE, "sF": sF, "sG": sG, "sH": sH, "sI": sI,
            "tasks": {k: t["id"] for k, t in {"A": tA, "B": tB, "C": tC, "D": tD, "G": tG}.items()},
            "pnr": {"A": pnr_a, "B": pnr_b, "E": pnr_e, "F": pnr_f}, "yesterday": yesterday}
