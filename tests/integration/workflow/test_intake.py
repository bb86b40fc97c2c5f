"""Rules 1–3 through HTTP: the intake Task, eligibility flags, the placed-child notice."""

from datetime import date, datetime, timedelta

import httpx
import pytest
from fhirpy import SyncFHIRClient

from tests.support.evi import (
    CS, FHIR_JSON, HSA, PNR, SD, TEST_REGION, load_examples, patient, personnummer, post_transaction, referral,
    scenario,
)
from tests.support.live_server import LiveServer

INTAKE = f"{CS}evi-task-type|intake"
FLAG = f"{CS}evi-eligibility-flag"
PARAM = f"{CS}evi-task-parameter"


def _intake_tasks(client, sr_ref: str) -> list[dict]:
    bundle = client.get("/Task", params={"focus": sr_ref, "code": INTAKE}).json()
    return [e["resource"] for e in bundle.get("entry", [])]


def _flags(task: dict) -> list[str]:
    return [i["valueCoding"]["code"] for i in task.get("input", [])
            if i["type"]["coding"][0]["code"] == "eligibility-flag"]


def _suggested(task: dict) -> str | None:
    found = [i["valueCoding"]["code"] for i in task.get("input", []) if i["type"]["coding"][0]["code"] == "triage-outcome"]
    assert len(found) <= 1
    return found[0] if found else None


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _child(client, born: date, **kw) -> str:
    r = client.post("/Patient", json=patient(born, **kw), headers=FHIR_JSON)
    assert r.status_code == 201, r.text
    return f"Patient/{r.json()['id']}"


def _refer(client, patient_ref: str, **kw) -> dict:
    r = client.post("/ServiceRequest", json=referral(patient_ref, **kw), headers=FHIR_JSON)
    assert r.status_code == 201, r.text
    return r.json()


def test_scenario_referral_creates_exactly_one_intake_task(evi):
    landed = post_transaction(evi, scenario("school-health-referral-npf", born=date(2014, 5, 3)))
    sr_ref = next(v for v in landed.values() if v.startswith("ServiceRequest/"))
    patient_ref = next(v for v in landed.values() if v.startswith("Patient/"))
    sr = evi.get(f"/{sr_ref}").json()
    [task] = _intake_tasks(evi, sr_ref)
    assert task["status"] == "requested" and task["intent"] == "order"
    assert task["meta"]["profile"] == [f"{SD}evi-intake-task"]
    assert task["code"]["coding"][0]["code"] == "intake"
    assert task["businessStatus"]["coding"][0] == {
        "system": f"{CS}evi-task-stage", "code": "received", "display": task["businessStatus"]["coding"][0]["display"]}
    assert task["focus"] == {"reference": sr_ref}
    assert task["for"] == {"reference": patient_ref}
    assert task["owner"] == {"reference": "Organization/evi-vgr"}
    # receipt time = the server's write time of the ServiceRequest; due = receipt + 3 days
    assert task["authoredOn"] == sr["meta"]["lastUpdated"]
    assert _instant(task["restriction"]["period"]["end"]) - _instant(sr["meta"]["lastUpdated"]) == timedelta(days=3)
    assert task["priority"] == sr["priority"]
    assert _flags(task) == [] and _suggested(task) is None


@pytest.mark.parametrize("name", ["self-referral-guardian", "school-health-referral-npf", "placed-child-phoning"])
def test_every_referral_scenario_gets_its_task(evi, name):
    landed = post_transaction(evi, scenario(name, born=date(2013, 1, 20)))
    sr_ref = next(v for v in landed.values() if v.startswith("ServiceRequest/"))
    assert len(_intake_tasks(evi, sr_ref)) == 1


def test_updates_never_create_a_second_task(evi):
    pat = _child(evi, date(2012, 6, 1))
    sr = _refer(evi, pat, priority="routine")
    sr["priority"] = "urgent"
    assert evi.put(f"/ServiceRequest/{sr['id']}", json=sr, headers=FHIR_JSON).status_code == 200
    r = evi.patch(f"/ServiceRequest/{sr['id']}", json=[{"op": "add", "path": "/note", "value": [{"text": "x"}]}],
                  headers={"Content-Type": "application/json-patch+json"})
    assert r.status_code == 200, r.text
    [task] = _intake_tasks(evi, f"ServiceRequest/{sr['id']}")
    assert task["meta"]["versionId"] == "1"


def test_receipt_time_is_the_first_version_when_the_profile_is_claimed_later(evi):
    pat = _child(evi, date(2012, 6, 1))
    body = referral(pat)
    del body["meta"]
    r = evi.post("/ServiceRequest", json=body, headers=FHIR_JSON)
    first = r.json()
    assert _intake_tasks(evi, f"ServiceRequest/{first['id']}") == []
    first["meta"] = {"profile": [f"{SD}evi-referral"]}
    assert evi.put(f"/ServiceRequest/{first['id']}", json=first, headers=FHIR_JSON).status_code == 200
    [task] = _intake_tasks(evi, f"ServiceRequest/{first['id']}")
    assert task["authoredOn"] == r.json()["meta"]["lastUpdated"]


def test_plain_service_requests_get_no_task(evi):
    pat = _child(evi, date(2012, 6, 1))
    body = referral(pat)
    del body["meta"]
    sr = evi.post("/ServiceRequest", json=body, headers=FHIR_JSON).json()
    assert _intake_tasks(evi, f"ServiceRequest/{sr['id']}") == []


def test_bundle_order_does_not_matter(evi):
    """The referral comes before its Patient in the Bundle: the flags still see the Patient."""
    born = date.today().replace(year=date.today().year - 19)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:9c0c7f3e-0000-4000-8000-000000000002",
         "resource": referral("urn:uuid:9c0c7f3e-0000-4000-8000-000000000001"),
         "request": {"method": "POST", "url": "ServiceRequest"}},
        {"fullUrl": "urn:uuid:9c0c7f3e-0000-4000-8000-000000000001", "resource": patient(born),
         "request": {"method": "POST", "url": "Patient"}},
    ]}
    landed = post_transaction(evi, bundle)
    [task] = _intake_tasks(evi, landed["urn:uuid:9c0c7f3e-0000-4000-8000-000000000002"])
    assert _flags(task) == ["age-out-of-range"]
    assert _suggested(task) == "not-eligible"


@pytest.mark.parametrize("years,flagged", [(0, False), (17, False), (18, True), (25, True)])
def test_age_outside_the_range_is_flagged(evi, years, flagged):
    today = date.today()
    born = today.replace(year=today.year - years) - timedelta(days=1 if years else 0)
    if years == 0:
        born = today - timedelta(days=30)
    sr = _refer(evi, _child(evi, born))
    [task] = _intake_tasks(evi, f"ServiceRequest/{sr['id']}")
    assert ("age-out-of-range" in _flags(task)) is flagged
    if flagged:
        assert any("outside the region's range 0–17" in n["text"] for n in task["note"])


def test_birthday_on_the_day_of_receipt_counts(evi):
    today = date.today()
    if today.month == 2 and today.day == 29:
        pytest.skip("no such birthday 18 years ago")
    born = today.replace(year=today.year - 18)
    sr = _refer(evi, _child(evi, born))
    [task] = _intake_tasks(evi, f"ServiceRequest/{sr['id']}")
    assert _flags(task) == ["age-out-of-range"]


def test_placed_child_gets_notice_and_dialogue_task(evi):
    landed = post_transaction(evi, scenario("placed-child-phoning", born=date(2011, 7, 9)))
    sr_ref = next(v for v in landed.values() if v.startswith("ServiceRequest/"))
    patient_ref = next(v for v in landed.values() if v.startswith("Patient/"))
    municipality = next(v for v in landed.values() if v.startswith("Organization/"))
    [task] = _intake_tasks(evi, sr_ref)
    assert _flags(task) == ["placed-child"]
    notices = evi.get("/Communication", params={"subject": patient_ref}).json()["entry"]
    [notice] = [e["resource"] for e in notices]
    assert notice["meta"]["profile"] == [f"{SD}evi-notification"]
    assert notice["recipient"] == [{"reference": municipality}]
    assert notice["subject"] == {"reference": patient_ref}
    assert {"reference": sr_ref} in notice["about"] and {"reference": f"Task/{task['id']}"} in notice["about"]
    assert notice["sender"] == {"reference": "Organization/evi-vgr"}
    dialogue = evi.get("/Task", params={"focus": sr_ref, "code": f"{CS}evi-task-type|social-services-dialogue"}).json()
    [d] = [e["resource"] for e in dialogue["entry"]]
    assert d["owner"] == {"reference": municipality} and d["status"] == "requested"
    assert d["for"] == {"reference": patient_ref} and d["requester"] == {"reference": "Organization/evi-vgr"}


def _episode(patient_ref: str, org: str, status: str = "active") -> dict:
    return {"resourceType": "EpisodeOfCare", "status": status, "patient": {"reference": patient_ref},
            "managingOrganization": {"reference": org}}


@pytest.mark.parametrize("org,status,flagged", [
    ("Organization/bup-uddevalla", "active", True),
    ("Organization/vardcentral-uddevalla", "active", True),
    ("Organization/bup-uddevalla", "finished", False),
    ("Organization/socialtjansten-uddevalla", "active", False),
])
def test_existing_contact_on_this_server(evi, org, status, flagged):
    pat = _child(evi, date(2013, 3, 3))
    assert evi.post("/EpisodeOfCare", json=_episode(pat, org, status), headers=FHIR_JSON).status_code == 201
    sr = _refer(evi, pat)
    [task] = _intake_tasks(evi, f"ServiceRequest/{sr['id']}")
    assert ("existing-contact" in _flags(task)) is flagged
    if flagged:
        assert _suggested(task) == "redirect-existing-contact"
        assert any(org in n["text"] for n in task["note"])


def test_existing_contact_found_by_personnummer_on_another_patient_record(evi):
    born = date(2013, 3, 3)
    pnr = personnummer(born)
    other = _child(evi, born, pnr=pnr)
    evi.post("/EpisodeOfCare", json=_episode(other, "Organization/bup-uddevalla"), headers=FHIR_JSON)
    pat = _child(evi, born, pnr=pnr)
    sr = _refer(evi, pat)
    [task] = _intake_tasks(evi, f"ServiceRequest/{sr['id']}")
    assert _flags(task) == ["existing-contact"]


def test_referral_through_fhirpy(fhir):
    pat = fhir.resource("Patient", **patient(date(2015, 2, 2)))
    pat.save()
    sr = fhir.resource("ServiceRequest", **referral(f"Patient/{pat.id}", priority="urgent"))
    sr.save()
    tasks = fhir.resources("Task").search(focus=f"ServiceRequest/{sr.id}", code=INTAKE).fetch_all()
    assert len(tasks) == 1 and tasks[0]["priority"] == "urgent"
    assert tasks[0]["owner"]["reference"] == "Organization/evi-vgr"


# ---- the region's configuration --------------------------------------------------------


def _region_file(tmp_path, text: str):
    path = tmp_path / "region.toml"
    path.write_text(text)
    return str(path)


def test_deadline_and_age_range_come_from_the_region_file(tmp_path):
    region = _region_file(tmp_path, 'evi_unit = "Organization/evi-x"\nassessment_deadline_days = 5\nage_range = [0, 20]\n')
    with LiveServer(storage="sqlite://:memory:", region_file=region) as live, httpx.Client(base_url=live.base_url) as c:
        sr = _refer(c, _child(c, date.today().replace(year=date.today().year - 19) - timedelta(days=3)))
        [task] = _intake_tasks(c, f"ServiceRequest/{sr['id']}")
        assert task["owner"] == {"reference": "Organization/evi-x"}
        assert _flags(task) == []
        assert _instant(task["restriction"]["period"]["end"]) - _instant(task["authoredOn"]) == timedelta(days=5)


def test_units_named_by_hsa_id_resolve_to_the_stored_organization(tmp_path):
    region = _region_file(tmp_path, f'evi_unit = "{HSA}|SE2321000131-E000000000101"\n')
    with LiveServer(storage="sqlite://:memory:", region_file=region) as live, httpx.Client(base_url=live.base_url) as c:
        pat = _child(c, date(2014, 1, 1))
        r = c.post("/ServiceRequest", json=referral(pat), headers=FHIR_JSON)
        assert r.status_code == 422 and "not on this server" in r.text
        assert c.get("/ServiceRequest", params={"subject": pat}).json()["total"] == 0  # nothing written
        load_examples(c)
        sr = _refer(c, pat)
        [task] = _intake_tasks(c, f"ServiceRequest/{sr['id']}")
        assert task["owner"] == {"reference": "Organization/evi-vgr"}


def test_without_a_region_file_the_one_evi_unit_is_the_owner():
    with LiveServer(storage="sqlite://:memory:") as live, httpx.Client(base_url=live.base_url) as c:
        c.put("/Organization/evi-kalmar", json=_load("Organization-evi-kalmar"), headers=FHIR_JSON)
        sr = _refer(c, _child(c, date(2014, 1, 1)))
        [task] = _intake_tasks(c, f"ServiceRequest/{sr['id']}")
        assert task["owner"] == {"reference": "Organization/evi-kalmar"}
        c.put("/Organization/evi-vgr", json=_load("Organization-evi-vgr"), headers=FHIR_JSON)
        r = c.post("/ServiceRequest", json=referral(_child(c, date(2014, 1, 1))), headers=FHIR_JSON)
        assert r.status_code == 422 and "ambiguous" in r.json()["issue"][0]["diagnostics"]


def _load(name: str) -> dict:
    from tests.support.evi import example
    return example(name)


# ---- the upstream existing-contact check -----------------------------------------------


@pytest.fixture(scope="module")
def upstream():
    """A second evi-fhir playing the region's EHR: its own patient records and episodes."""
    with LiveServer(storage="sqlite://:memory:") as live:
        yield live


def test_existing_contact_upstream_is_flagged(upstream, tmp_path):
    born = date(2012, 9, 9)
    pnr = personnummer(born)
    with httpx.Client(base_url=upstream.base_url) as up:
        org = up.post("/Organization", json={"resourceType": "Organization", "name": "BUP Borås (EHR)"},
                      headers=FHIR_JSON).json()
        p = up.post("/Patient", json={"resourceType": "Patient", "identifier": [{"system": PNR, "value": pnr}]},
                    headers=FHIR_JSON).json()
        up.post("/EpisodeOfCare", json=_episode(f"Patient/{p['id']}", f"Organization/{org['id']}"), headers=FHIR_JSON)
    with LiveServer(storage="sqlite://:memory:", region_file=str(TEST_REGION),
                    upstream_fhir_url=upstream.base_url) as live, httpx.Client(base_url=live.base_url) as c:
        sr = _refer(c, _child(c, born, pnr=pnr))
        [task] = _intake_tasks(c, f"ServiceRequest/{sr['id']}")  # recorded before the create returned
        assert _flags(task) == ["existing-contact"]
        assert _suggested(task) == "redirect-existing-contact"
        assert any(upstream.base_url in n["text"] and "BUP Borås (EHR)" in n["text"] for n in task["note"])
        # a child the upstream server does not know: no flag, no note
        sr = _refer(c, _child(c, born))
        [task] = _intake_tasks(c, f"ServiceRequest/{sr['id']}")
        assert _flags(task) == [] and "note" not in task


def test_unreachable_upstream_leaves_a_note_and_keeps_the_referral(tmp_path):
    from tests.support.live_server import free_port

    dead = f"http://127.0.0.1:{free_port()}/fhir"
    with LiveServer(storage="sqlite://:memory:", region_file=str(TEST_REGION),
                    upstream_fhir_url=dead) as live, httpx.Client(base_url=live.base_url) as c:
        sr = _refer(c, _child(c, date(2012, 9, 9)))
        [task] = _intake_tasks(c, f"ServiceRequest/{sr['id']}")
        assert _flags(task) == []
        assert any("could not be made" in n["text"] for n in task["note"])
