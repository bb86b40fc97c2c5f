"""Rule 4 through HTTP: Task/{id}/$triage for every outcome, from the scenario Bundles of
examples/scenarios with fresh children, and every error path (which must write nothing)."""

from __future__ import annotations

from datetime import date

import httpx
import orjson
import pytest

from fhir_server.app import build_runtime
from fhir_server.engine import HookPoint, RequestContext, find_matches, process_bundle, update
from fhir_server.errors import FhirError, Unprocessable
from fhir_server.settings import Settings
from fhir_server.storage.sqlite.store import SqliteUnitOfWork
from fhir_server.workflow import triage
from tests.support.evi import (
    CS,
    FHIR_JSON,
    SD,
    TEST_REGION,
    example,
    intake_task_of,
    new_intake_task,
    new_slot,
    post_transaction,
    scenario,
    triage_parameters,
)

OUTCOME = f"{CS}evi-triage-outcome"
TASK_PARAMETER = f"{CS}evi-task-parameter"
EVI_UNIT = "Organization/evi-vgr"
BUP_ACUTE = "Organization/bup-akut-vgr"
COUNTED = ("Appointment", "ServiceRequest", "Communication", "Task", "Slot")


def ref(reference: str) -> dict:
    return {"valueReference": {"reference": reference}}


def code(system: str, value: str) -> dict:
    return {"valueCoding": {"system": f"{CS}{system}", "code": value}}


def run_triage(fhir, task_id: str, params: dict) -> dict:
    """$triage through fhirpy, as a client of the product would call it."""
    return fhir.resource("Task", id=task_id).execute("$triage", data=params)


def parts(result: dict) -> tuple[dict, list[dict]]:
    assert result["resourceType"] == "Parameters"
    names = [p["name"] for p in result["parameter"]]
    assert names[0] == "task" and set(names[1:]) <= {"created"}, names
    return result["parameter"][0]["resource"], [p["resource"] for p in result["parameter"][1:]]


def outputs(task: dict) -> tuple[list[str], list[str]]:
    """(triage-outcome codes, created references) of a Task's outputs."""
    outcomes, created = [], []
    for o in task.get("output", []):
        kind = o["type"]["coding"][0]
        assert kind["system"] == TASK_PARAMETER
        if kind["code"] == "triage-outcome":
            assert o["valueCoding"]["system"] == OUTCOME
            outcomes.append(o["valueCoding"]["code"])
        elif kind["code"] == "created":
            created.append(o["valueReference"]["reference"])
    return outcomes, created


def check_completed(evi: httpx.Client, fhir, before: dict, result: dict, outcome: str, n_created: int) -> list[dict]:
    """The common checks of a successful $triage; returns the created resources as stored."""
    task, created = parts(result)
    assert len(created) == n_created
    stored = fhir.reference("Task", before["id"]).to_resource().serialize()
    assert stored == task  # the answer carries the Task as stored
    assert stored["status"] == "completed"
    assert stored["meta"]["versionId"] == "2"
    assert stored["businessStatus"]["coding"][0]["system"] == f"{CS}evi-task-stage"
    assert stored["businessStatus"]["coding"][0]["code"] == "triaged"
    assert stored["lastModified"]
    assert stored["meta"]["profile"] == [f"{SD}evi-intake-task"]
    outcomes, references = outputs(stored)
    assert outcomes == [outcome]
    assert references == [f"{r['resourceType']}/{r['id']}" for r in created]
    for reference, resource in zip(references, created):
        read = evi.get(f"/{reference}")
        assert read.status_code == 200
        assert read.json() == resource  # the answer carries each created resource as stored
    history = evi.get(f"/Task/{before['id']}/_history").json()
    assert history["total"] == 2
    newest, oldest = (e["resource"] for e in history["entry"])
    assert (newest["meta"]["versionId"], newest["status"]) == ("2", "completed")
    assert (oldest["meta"]["versionId"], oldest["status"]) == ("1", before["status"])
    assert outputs(newest)[0] == [outcome]
    return created


def counts(evi: httpx.Client) -> dict[str, int]:
    return {t: evi.get(f"/{t}", params={"_summary": "count"}).json()["total"] for t in COUNTED}


@pytest.fixture
def unchanged(evi):
    """Asserts, after the test, that nothing of the counted types was written during it."""
    before = counts(evi)
    yield
    assert counts(evi) == before


def post_triage(evi: httpx.Client, task_id: str, params: dict) -> httpx.Response:
    return evi.post(f"/Task/{task_id}/$triage", json=params, headers=FHIR_JSON)


def assert_outcome(response: httpx.Response, status: int, *words: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    text = " ".join(i.get("diagnostics", "") + " " + " ".join(i.get("expression", [])) for i in body["issue"])
    for word in words:
        assert word in text, (word, body)
    return body


# ---- every outcome ------------------------------------------------------------------------------


@pytest.mark.parametrize("outcome,name", [
    ("advice", "self-referral-guardian"),
    ("redirect-existing-contact", "school-health-referral-npf"),
    ("not-eligible", "placed-child-phoning"),
])
def test_outcomes_that_create_nothing(evi, fhir, outcome, name):
    task = new_intake_task(evi, name, born=date(2012, 8, 9))
    assert task["status"] == "requested"
    result = run_triage(fhir, task["id"], triage_parameters(outcome, note={"valueString": f"{outcome}: klart"}))
    check_completed(evi, fhir, task, result, outcome, 0)
    stored = evi.get(f"/Task/{task['id']}").json()
    note = stored["note"][-1]
    assert note["text"] == f"{outcome}: klart" and note["time"]


def test_refer_primary_care_creates_a_service_request_to_the_recipient(evi, fhir):
    landed = post_transaction(evi, scenario("school-health-referral-npf", born=date(2014, 5, 3)))
    task = intake_task_of(evi, landed)
    original = evi.get(f"/{task['focus']['reference']}").json()
    result = run_triage(fhir, task["id"], triage_parameters(
        "refer-primary-care", recipient=ref("Organization/vardcentral-uddevalla"), note={"valueString": "Till VC"}))
    (sr,) = check_completed(evi, fhir, task, result, "refer-primary-care", 1)
    assert sr["resourceType"] == "ServiceRequest"
    assert (sr["status"], sr["intent"]) == ("active", "order")
    assert sr["performer"] == [{"reference": "Organization/vardcentral-uddevalla"}]
    assert sr["basedOn"] == [{"reference": task["focus"]["reference"]}]
    assert sr["requester"] == {"reference": EVI_UNIT}
    assert sr["subject"] == {"reference": task["for"]["reference"]}
    assert sr["reasonCode"] == original["reasonCode"]
    assert sr["priority"] == original["priority"]
    # found by search too, and it did not become a contact of its own (no new intake Task)
    found = fhir.resources("ServiceRequest").search(performer="Organization/vardcentral-uddevalla",
                                                   **{"based-on": task["focus"]["reference"]}).fetch_all()
    assert [r.id for r in found] == [sr["id"]]
    assert evi.get("/Task", params={"focus": f"ServiceRequest/{sr['id']}", "_summary": "count"}).json()["total"] == 0


def test_refer_other_actor_creates_a_communication(evi, fhir):
    task = new_intake_task(evi, "placed-child-phoning", born=date(2011, 7, 9))
    result = run_triage(fhir, task["id"], triage_parameters(
        "refer-other-actor", recipient=ref("Organization/elevhalsan-uddevalla"),
        note={"valueString": "Skolrelaterat; elevhälsan tar över."}))
    (comm,) = check_completed(evi, fhir, task, result, "refer-other-actor", 1)
    assert comm["resourceType"] == "Communication"
    assert comm["status"] == "completed"
    assert comm["recipient"] == [{"reference": "Organization/elevhalsan-uddevalla"}]
    assert comm["sender"] == {"reference": EVI_UNIT}
    assert comm["subject"] == {"reference": task["for"]["reference"]}
    assert {a["reference"] for a in comm["about"]} == {task["focus"]["reference"], f"Task/{task['id']}"}
    assert comm["sent"]
    assert comm["payload"][0]["contentString"] == "Skolrelaterat; elevhälsan tar över."
    found = fhir.resources("Communication").search(recipient="Organization/elevhalsan-uddevalla",
                                                  subject=task["for"]["reference"]).fetch_all()
    assert [r.id for r in found] == [comm["id"]]


def test_book_first_visit_books_the_slot(evi, fhir):
    slot_id = new_slot(evi)
    slot = evi.get(f"/Slot/{slot_id}").json()
    task = new_intake_task(evi, "school-health-referral-npf", born=date(2014, 2, 18))
    result = run_triage(fhir, task["id"], triage_parameters("book-first-visit", slot=ref(f"Slot/{slot_id}")))
    (appt,) = check_completed(evi, fhir, task, result, "book-first-visit", 1)
    assert appt["resourceType"] == "Appointment"
    assert appt["meta"]["profile"] == [f"{SD}evi-appointment"]
    assert appt["status"] == "booked"
    assert appt["slot"] == [{"reference": f"Slot/{slot_id}"}]
    assert (appt["start"], appt["end"]) == (slot["start"], slot["end"])
    assert appt["basedOn"] == [{"reference": task["focus"]["reference"]}]
    actors = [p["actor"]["reference"] for p in appt["participant"]]
    assert actors == [task["for"]["reference"], "HealthcareService/bup-uddevalla-nybesok"]
    ext = {e["url"].rsplit("/", 1)[1]: e["valueCoding"]["code"] for e in appt["extension"]}
    assert ext == {"evi-care-level": "specialist", "evi-visit-mode": "in-person"}  # bup-clinic; default mode
    # the Slot is busy now, in its version 2
    booked = evi.get(f"/Slot/{slot_id}").json()
    assert (booked["status"], booked["meta"]["versionId"]) == ("busy", "2")
    found = fhir.resources("Appointment").search(slot=f"Slot/{slot_id}").fetch_all()
    assert [a.id for a in found] == [appt["id"]]
    # the same Slot again, for another child: 409, nothing written
    other = new_intake_task(evi, "self-referral-guardian", born=date(2013, 1, 1))
    before = counts(evi)
    r = post_triage(evi, other["id"], triage_parameters("book-first-visit", slot=ref(f"Slot/{slot_id}")))
    assert_outcome(r, 409, f"Slot/{slot_id}", "busy")
    assert counts(evi) == before
    assert evi.get(f"/Task/{other['id']}").json()["meta"]["versionId"] == "1"


def test_book_first_visit_with_care_level_and_visit_mode(evi, fhir):
    slot_id = new_slot(evi)
    task = new_intake_task(evi, "self-referral-guardian", born=date(2010, 12, 24))
    result = run_triage(fhir, task["id"], triage_parameters(
        "book-first-visit", slot=ref(f"Slot/{slot_id}"), careLevel=code("evi-care-level", "primary"),
        visitMode=code("evi-visit-mode", "video"), note={"valueString": "Videobesök"}))
    (appt,) = check_completed(evi, fhir, task, result, "book-first-visit", 1)
    ext = {e["url"].rsplit("/", 1)[1]: e["valueCoding"] for e in appt["extension"]}
    assert ext["evi-care-level"]["code"] == "primary" and ext["evi-care-level"]["display"]
    assert ext["evi-visit-mode"]["code"] == "video"


def _unit_schedule(evi: httpx.Client, organization: str, name: str) -> str:
    hs = {"resourceType": "HealthcareService", "active": True, "providedBy": {"reference": organization},
          "name": name}
    hs_id = evi.post("/HealthcareService", json=hs, headers=FHIR_JSON).json()["id"]
    schedule = {"resourceType": "Schedule", "active": True, "actor": [{"reference": f"HealthcareService/{hs_id}"}]}
    return "Schedule/" + evi.post("/Schedule", json=schedule, headers=FHIR_JSON).json()["id"]


def test_care_level_defaults_to_primary_at_a_primary_care_unit(evi, fhir):
    schedule = _unit_schedule(evi, "Organization/vardcentral-uddevalla", "Nybesök barn VC Uddevalla")
    slot_id = new_slot(evi, schedule)
    task = new_intake_task(evi, "self-referral-guardian", born=date(2015, 6, 1))
    result = run_triage(fhir, task["id"], triage_parameters("book-first-visit", slot=ref(f"Slot/{slot_id}")))
    (appt,) = check_completed(evi, fhir, task, result, "book-first-visit", 1)
    assert appt["extension"][0]["valueCoding"]["code"] == "primary"


def test_care_level_is_required_at_other_units(evi, fhir):
    schedule = _unit_schedule(evi, "Organization/elevhalsan-uddevalla", "Elevhälsans mottagning")
    slot_id = new_slot(evi, schedule)
    task = new_intake_task(evi, "self-referral-guardian", born=date(2015, 6, 2))
    before = counts(evi)
    r = post_triage(evi, task["id"], triage_parameters("book-first-visit", slot=ref(f"Slot/{slot_id}")))
    assert_outcome(r, 400, "careLevel")
    assert counts(evi) == before
    assert evi.get(f"/Slot/{slot_id}").json()["status"] == "free"
    result = run_triage(fhir, task["id"], triage_parameters(
        "book-first-visit", slot=ref(f"Slot/{slot_id}"), careLevel=code("evi-care-level", "primary")))
    check_completed(evi, fhir, task, result, "book-first-visit", 1)


@pytest.mark.parametrize("recipient", [None, "Organization/bup-uddevalla"])
def test_acute_handover(evi, fhir, recipient):
    task = new_intake_task(evi, "self-referral-guardian", born=date(2009, 3, 3))
    params = triage_parameters("acute-handover", note={"valueString": "Akut risk; BUP akut kontaktad."})
    if recipient:
        params["parameter"].append({"name": "recipient", **ref(recipient)})
    result = run_triage(fhir, task["id"], params)
    (handover,) = check_completed(evi, fhir, task, result, "acute-handover", 1)
    assert handover["resourceType"] == "Task"
    assert handover["code"]["coding"][0]["system"] == f"{CS}evi-task-type"
    assert handover["code"]["coding"][0]["code"] == "acute-handover"
    assert (handover["status"], handover["intent"]) == ("requested", "order")
    assert handover["owner"] == {"reference": recipient or BUP_ACUTE}
    assert handover["requester"] == {"reference": EVI_UNIT}
    assert handover["focus"] == task["focus"] and handover["for"] == task["for"]
    found = fhir.resources("Task").search(code=f"{CS}evi-task-type|acute-handover",
                                         owner=recipient or BUP_ACUTE, patient=task["for"]["reference"]).fetch_all()
    assert [t.id for t in found] == [handover["id"]]


def test_triage_from_received_accepted_and_in_progress(evi, fhir):
    for status in ("received", "accepted", "in-progress"):
        task = new_intake_task(evi, "self-referral-guardian", born=date(2012, 1, 1))
        path = ["requested", "accepted", "in-progress"] if status == "in-progress" else ["requested", status]
        for step in path[1:]:
            task = evi.put(f"/Task/{task['id']}", json={**task, "status": step}, headers=FHIR_JSON).json()
        assert task["status"] == status
        result = run_triage(fhir, task["id"], triage_parameters("advice"))
        stored, _ = parts(result)
        assert stored["status"] == "completed"
        assert stored["meta"]["versionId"] == str(len(path) + 1)


def test_absolute_reference_on_this_server_is_literal(evi, fhir, evi_server):
    slot_id = new_slot(evi)
    task = new_intake_task(evi)
    result = run_triage(fhir, task["id"], triage_parameters(
        "book-first-visit", slot=ref(f"{evi_server.base_url}/Slot/{slot_id}")))
    (appt,) = parts(result)[1]
    assert appt["slot"] == [{"reference": f"Slot/{slot_id}"}]


# ---- errors: each writes nothing ---------------------------------------------------------------


@pytest.fixture
def open_task(evi):
    return new_intake_task(evi, "self-referral-guardian", born=date(2012, 2, 2))


def test_unknown_task_is_404(evi, unchanged):
    assert_outcome(post_triage(evi, "no-such-task", triage_parameters("advice")), 404, "Task/no-such-task")


def test_deleted_task_is_410(evi, open_task):
    assert evi.delete(f"/Task/{open_task['id']}").status_code in (200, 204)
    before = counts(evi)
    assert_outcome(post_triage(evi, open_task["id"], triage_parameters("advice")), 410)
    assert counts(evi) == before


def test_task_that_is_not_an_intake_task_is_422(evi):
    other = {"resourceType": "Task", "status": "requested", "intent": "order",
             "code": {"coding": [{"system": f"{CS}evi-task-type", "code": "acute-handover"}]}}
    task_id = evi.post("/Task", json=other, headers=FHIR_JSON).json()["id"]
    before = counts(evi)
    assert_outcome(post_triage(evi, task_id, triage_parameters("advice")), 422, "intake", "Task.code")
    assert counts(evi) == before
    assert evi.get(f"/Task/{task_id}").json()["meta"]["versionId"] == "1"


@pytest.mark.parametrize("status", ["completed", "cancelled", "rejected", "on-hold"])
def test_task_in_a_status_triage_cannot_complete_is_409(evi, fhir, status):
    task = new_intake_task(evi, "self-referral-guardian", born=date(2012, 3, 3))
    if status == "completed":
        run_triage(fhir, task["id"], triage_parameters("advice"))
    else:
        steps = {"cancelled": ["cancelled"], "rejected": ["rejected"], "on-hold": ["in-progress", "on-hold"]}[status]
        for step in steps:
            task = evi.put(f"/Task/{task['id']}", json={**task, "status": step}, headers=FHIR_JSON).json()
    version = evi.get(f"/Task/{task['id']}").json()["meta"]["versionId"]
    before = counts(evi)
    assert_outcome(post_triage(evi, task["id"], triage_parameters("not-eligible")), 409, f"'{status}'", "Task.status")
    assert counts(evi) == before
    assert evi.get(f"/Task/{task['id']}").json()["meta"]["versionId"] == version


OUTCOME_CODING = {"system": OUTCOME, "code": "advice"}
BAD_PARAMETERS = {
    "no parameters": ({"resourceType": "Parameters"}, "outcome"),
    "no outcome": ({"resourceType": "Parameters", "parameter": [{"name": "note", "valueString": "x"}]}, "outcome"),
    "unknown outcome": (triage_parameters("refer-to-moon"), "refer-to-moon"),
    "outcome of another system": ({"resourceType": "Parameters", "parameter": [
        {"name": "outcome", "valueCoding": {"system": "http://example.org/x", "code": "advice"}}]}, "outcome"),
    "outcome as valueCode": ({"resourceType": "Parameters", "parameter": [
        {"name": "outcome", "valueCode": "advice"}]}, "valueCoding"),
    "note as valueCoding": (triage_parameters("advice", note={"valueCoding": OUTCOME_CODING}), "note"),
    "slot as valueString": (triage_parameters("book-first-visit", slot={"valueString": "Slot/x"}), "slot"),
    "slot missing": (triage_parameters("book-first-visit"), "slot"),
    "recipient missing (primary care)": (triage_parameters("refer-primary-care"), "recipient"),
    "recipient missing (other actor)": (triage_parameters("refer-other-actor"), "recipient"),
    "parameter the outcome does not use": (
        triage_parameters("advice", slot=ref("Slot/bup-uddevalla-2026-02-12-1300")), "slot"),
    "recipient for book-first-visit": (triage_parameters(
        "book-first-visit", slot=ref("Slot/bup-uddevalla-2026-02-12-1300"),
        recipient=ref("Organization/bup-uddevalla")), "recipient"),
    "unknown parameter": (triage_parameters("advice", priority={"valueCode": "urgent"}), "priority"),
    "repeated parameter": ({"resourceType": "Parameters", "parameter": [
        {"name": "outcome", "valueCoding": OUTCOME_CODING}, {"name": "note", "valueString": "a"},
        {"name": "note", "valueString": "b"}]}, "Parameters.parameter[2]"),
    "repeated outcome": ({"resourceType": "Parameters", "parameter": [
        {"name": "outcome", "valueCoding": OUTCOME_CODING},
        {"name": "outcome", "valueCoding": {**OUTCOME_CODING, "code": "not-eligible"}}]}, "outcome"),
    "unknown careLevel": (triage_parameters(
        "book-first-visit", slot=ref("Slot/bup-uddevalla-2026-02-12-1300"),
        careLevel=code("evi-care-level", "tertiary")), "careLevel"),
    "unknown visitMode": (triage_parameters(
        "book-first-visit", slot=ref("Slot/bup-uddevalla-2026-02-12-1300"),
        visitMode=code("evi-visit-mode", "telepathy")), "visitMode"),
    "slot by identifier": (triage_parameters(
        "book-first-visit", slot={"valueReference": {"identifier": {"system": "urn:x", "value": "1"}}}), "slot"),
    "slot of another server": (triage_parameters(
        "book-first-visit", slot=ref("https://other.example/fhir/Slot/bup-uddevalla-2026-02-12-1300")), "slot"),
    "slot naming another type": (triage_parameters(
        "book-first-visit", slot=ref("Organization/bup-uddevalla")), "slot"),
    "recipient naming a Slot": (triage_parameters(
        "refer-primary-care", recipient=ref("Slot/bup-uddevalla-2026-02-12-1300")), "recipient"),
    "recipient as contained": (triage_parameters("refer-other-actor", recipient=ref("#org")), "recipient"),
    "not a list": ({"resourceType": "Parameters", "parameter": {"name": "outcome"}}, "Parameters.parameter"),
}


@pytest.mark.parametrize("case", list(BAD_PARAMETERS))
def test_bad_parameters_are_400(evi, open_task, case):
    params, word = BAD_PARAMETERS[case]
    before = counts(evi)
    body = assert_outcome(post_triage(evi, open_task["id"], params), 400, word)
    assert all(i["severity"] == "error" for i in body["issue"])
    assert counts(evi) == before
    stored = evi.get(f"/Task/{open_task['id']}").json()
    assert (stored["meta"]["versionId"], stored["status"]) == ("1", "requested")
    assert evi.get("/Slot/bup-uddevalla-2026-02-12-1300").json()["status"] == "free"


def test_a_body_that_is_not_parameters_is_400(evi, open_task, unchanged):
    r = evi.post(f"/Task/{open_task['id']}/$triage", json=example("Organization-evi-vgr"), headers=FHIR_JSON)
    assert_outcome(r, 400, "Parameters")


@pytest.mark.parametrize("outcome,name,reference", [
    ("book-first-visit", "slot", "Slot/no-such-slot"),
    ("refer-primary-care", "recipient", "Organization/no-such-unit"),
    ("refer-other-actor", "recipient", "Organization/no-such-unit"),
    ("acute-handover", "recipient", "Organization/no-such-unit"),
])
def test_references_to_nothing_are_422(evi, open_task, outcome, name, reference):
    before = counts(evi)
    r = post_triage(evi, open_task["id"], triage_parameters(outcome, **{name: ref(reference)}))
    assert_outcome(r, 422, reference, "Parameters.parameter[1]")
    assert counts(evi) == before
    assert evi.get(f"/Task/{open_task['id']}").json()["meta"]["versionId"] == "1"


def test_a_deleted_slot_is_422(evi, open_task):
    slot_id = new_slot(evi)
    evi.delete(f"/Slot/{slot_id}")
    before = counts(evi)
    r = post_triage(evi, open_task["id"], triage_parameters("book-first-visit", slot=ref(f"Slot/{slot_id}")))
    assert_outcome(r, 422, f"Slot/{slot_id}")
    assert counts(evi) == before


@pytest.mark.parametrize("status", ["busy", "busy-tentative", "busy-unavailable", "entered-in-error"])
def test_a_slot_that_is_not_free_is_409_and_nothing_is_written(evi, open_task, status):
    slot_id = new_slot(evi, status=status)
    before = counts(evi)
    r = post_triage(evi, open_task["id"], triage_parameters("book-first-visit", slot=ref(f"Slot/{slot_id}")))
    assert_outcome(r, 409, f"Slot/{slot_id}", f"'{status}'")
    assert counts(evi) == before
    assert evi.get(f"/Slot/{slot_id}").json()["meta"]["versionId"] == "1"
    stored = evi.get(f"/Task/{open_task['id']}").json()
    assert (stored["meta"]["versionId"], stored["status"]) == ("1", "requested")
    assert evi.get("/Appointment", params={"slot": f"Slot/{slot_id}", "_summary": "count"}).json()["total"] == 0


def test_a_free_slot_that_an_appointment_holds_is_409(evi, open_task):
    slot_id = new_slot(evi)
    held = {**example("Appointment-first-visit-hugo"), "slot": [{"reference": f"Slot/{slot_id}"}]}
    held.pop("id")
    held["basedOn"] = [open_task["focus"]]
    held["participant"][0]["actor"] = open_task["for"]
    assert evi.post("/Appointment", json=held, headers=FHIR_JSON).status_code == 201
    before = counts(evi)
    r = post_triage(evi, open_task["id"], triage_parameters("book-first-visit", slot=ref(f"Slot/{slot_id}")))
    assert_outcome(r, 409, f"Slot/{slot_id}", "Appointment/")
    assert counts(evi) == before


# ---- in process: atomicity and the version checks behind the read-check ---------------------

SLOT = "bup-uddevalla-2026-02-12-1300"
CTX = RequestContext(base_url="http://test/fhir")


@pytest.fixture
def runtime(tmp_path):
    """A runtime of the test region with the units, the nybesök Schedule, one free Slot and
    one intake Task (of a scenario); yields (runtime, task id)."""
    runtime = build_runtime(Settings(storage=f"sqlite://{tmp_path / 'x.db'}", region_file=str(TEST_REGION)))
    try:
        entries = [example(n) for n in (
            "Organization-evi-vgr", "Organization-bup-uddevalla", "HealthcareService-bup-uddevalla-nybesok",
            "Schedule-bup-uddevalla-nybesok", f"Slot-{SLOT}")]
        process_bundle(runtime, CTX, {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in entries]})
        process_bundle(runtime, CTX, scenario("self-referral-guardian", born=date(2012, 5, 5)))
        with runtime.work(CTX, write=False) as work:
            (task_id,) = find_matches(work, "Task", [("code", f"{CS}evi-task-type|intake")])
        yield runtime, task_id
    finally:
        runtime.store.close()


def assert_nothing_written(runtime, task_id: str) -> None:
    with runtime.work(CTX, write=False) as work:
        slot = work.uow.current("Slot", SLOT)
        task = work.uow.current("Task", task_id)
        appointments = work.uow.statistics().get("Appointment", (0, 0))
    assert (slot.version_id, b'"free"' in slot.body) == (1, True)
    assert task.version_id == 1
    assert appointments == (0, 0)


def test_a_failure_late_in_the_unit_of_work_rolls_back_everything(runtime):
    """A rule that refuses the Appointment (after the Slot was written) leaves the Slot
    free, the Task untouched and no Appointment."""
    runtime, task_id = runtime

    def refuse(event):
        if event.resource_type == "Appointment":
            raise Unprocessable("refused by a test rule")

    runtime.hooks.register(HookPoint.BEFORE_COMMIT, refuse)
    with pytest.raises(FhirError) as raised:
        triage(runtime, CTX, task_id, triage_parameters("book-first-visit", slot=ref(f"Slot/{SLOT}")))
    assert raised.value.status == 422
    assert_nothing_written(runtime, task_id)


@pytest.mark.parametrize("stale", ["Slot", "Task"])
def test_a_stale_read_is_409_by_the_version_check(runtime, monkeypatch, stale):
    """Should a backend let two bookings read the same version (no write lock), the write
    with If-Match of the version read refuses the second: here the first read of the Slot
    (or Task) answers an older version than is stored."""
    runtime, task_id = runtime
    rid = SLOT if stale == "Slot" else task_id
    with runtime.work(CTX, write=False) as work:
        old = work.uow.current(stale, rid)
    # a newer version than the one the triage will read (same content, version 2)
    with runtime.work(CTX, write=True) as work:
        body = orjson.loads(old.body)
        update(work, stale, rid, body)
    uow_class = SqliteUnitOfWork
    real_current = uow_class.current
    served = []

    def first_read_is_stale(self, resource_type, id):
        if (resource_type, id) == (stale, rid) and not served:
            served.append(True)
            return old
        return real_current(self, resource_type, id)

    monkeypatch.setattr(uow_class, "current", first_read_is_stale)
    with pytest.raises(FhirError) as raised:
        triage(runtime, CTX, task_id, triage_parameters("book-first-visit", slot=ref(f"Slot/{SLOT}")))
    assert raised.value.status == 409, raised.value.message
    assert served
    monkeypatch.undo()
    with runtime.work(CTX, write=False) as work:
        assert work.uow.current(stale, rid).version_id == 2
        other = "Task" if stale == "Slot" else "Slot"
        assert work.uow.current(other, task_id if other == "Task" else SLOT).version_id == 1
        assert work.uow.statistics().get("Appointment", (0, 0)) == (0, 0)
