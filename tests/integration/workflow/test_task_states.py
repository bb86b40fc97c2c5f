"""Rule 5: every Task write follows the FHIR R4 Task state machine, however it arrives."""

import pytest

from tests.support.evi import CS, FHIR_JSON


def _task(status: str, code: str = "acute-handover") -> dict:
    return {"resourceType": "Task", "status": status, "intent": "order",
            "code": {"coding": [{"system": f"{CS}evi-task-type", "code": code}]}}


def _create(evi, status: str) -> dict:
    r = evi.post("/Task", json=_task(status), headers=FHIR_JSON)
    assert r.status_code == 201, r.text
    return r.json()


def _put(evi, task: dict, status: str):
    return evi.put(f"/Task/{task['id']}", json={**task, "status": status}, headers=FHIR_JSON)


LEGAL = [
    ("draft", "requested"), ("requested", "received"), ("requested", "accepted"), ("requested", "in-progress"),
    ("received", "accepted"), ("accepted", "ready"), ("ready", "in-progress"), ("in-progress", "on-hold"),
    ("on-hold", "in-progress"), ("in-progress", "completed"), ("in-progress", "failed"), ("requested", "rejected"),
    ("completed", "entered-in-error"), ("cancelled", "cancelled"), ("requested", "cancelled"),
]
ILLEGAL = [
    ("requested", "completed"), ("draft", "in-progress"), ("received", "in-progress"), ("accepted", "completed"),
    ("completed", "in-progress"), ("cancelled", "requested"), ("rejected", "accepted"), ("failed", "ready"),
    ("on-hold", "completed"), ("entered-in-error", "requested"),
]


@pytest.mark.parametrize("old,new", LEGAL)
def test_legal_transitions(evi, old, new):
    task = _create(evi, old)
    r = _put(evi, task, new)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == new


@pytest.mark.parametrize("old,new", ILLEGAL)
def test_illegal_transitions_are_409_naming_both_states(evi, old, new):
    task = _create(evi, old)
    r = _put(evi, task, new)
    assert r.status_code == 409, r.text
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    diagnostics = outcome["issue"][0]["diagnostics"]
    assert f"'{old}'" in diagnostics and f"'{new}'" in diagnostics
    assert outcome["issue"][0]["expression"] == ["Task.status"]
    assert evi.get(f"/Task/{task['id']}").json()["meta"]["versionId"] == "1"


def test_patch_follows_the_state_machine(evi):
    task = _create(evi, "requested")
    r = evi.patch(f"/Task/{task['id']}", json=[{"op": "replace", "path": "/status", "value": "completed"}],
                  headers={"Content-Type": "application/json-patch+json"})
    assert r.status_code == 409
    r = evi.patch(f"/Task/{task['id']}", json=[{"op": "replace", "path": "/status", "value": "in-progress"}],
                  headers={"Content-Type": "application/json-patch+json"})
    assert r.status_code == 200


def test_an_illegal_transition_rolls_back_the_whole_transaction(evi, uid):
    task = _create(evi, "completed")
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Basic", "code": {"text": uid}}, "request": {"method": "POST", "url": "Basic"}},
        {"resource": {**task, "status": "in-progress"}, "request": {"method": "PUT", "url": f"Task/{task['id']}"}},
    ]}
    r = evi.post("", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 409
    assert "'completed'" in r.text and "'in-progress'" in r.text
    assert evi.get("/Basic", params={"code:text": uid}).json()["total"] == 0


def test_conditional_update_follows_the_state_machine(evi, uid):
    body = {**_task("requested"), "identifier": [{"system": "urn:test", "value": uid}]}
    evi.post("/Task", json=body, headers=FHIR_JSON)
    r = evi.put("/Task", params={"identifier": f"urn:test|{uid}"}, json={**body, "status": "completed"},
                headers=FHIR_JSON)
    assert r.status_code == 409


def test_creating_a_task_in_any_status_is_allowed(evi):
    for status in ("completed", "on-hold", "entered-in-error"):
        _create(evi, status)


def test_a_deleted_task_may_come_back_in_any_status(evi):
    task = _create(evi, "completed")
    assert evi.delete(f"/Task/{task['id']}").status_code in (200, 204)
    assert _put(evi, task, "requested").status_code == 201
