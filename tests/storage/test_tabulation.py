"""Tabulations (``storage/tabulation.py``) on every backend: counts grouped by index values,
through references both ways, with the same answers everywhere."""

from __future__ import annotations

import pytest

from fhir_server.storage.tabulation import (
    Coalesce,
    Follow,
    Id,
    NotAfter,
    Referrers,
    Tabulation,
    TabulationError,
    TokenIs,
    Updated,
    Value,
    check_tabulation,
)
from tests.storage.helpers import delete, instant, plan, put

CH = "urn:test:channel"


def _task(tid: str, status: str, authored: str | None, focus: str | None, owner: str | None = None) -> dict:
    task = {"resourceType": "Task", "id": tid, "status": status, "intent": "order"}
    if authored:
        task["authoredOn"] = authored
    if focus:
        task["focus"] = {"reference": focus}
    if owner:
        task["owner"] = {"reference": owner}
    return task


def _request(sid: str, category: str | None, patient: str = "Patient/p1") -> dict:
    sr = {"resourceType": "ServiceRequest", "id": sid, "status": "active", "intent": "order",
          "subject": {"reference": patient}}
    if category:
        sr["category"] = [{"coding": [{"system": CH, "code": category}]}]
    return sr


def _appointment(aid: str, based_on: str, start: str, status: str = "booked") -> dict:
    return {"resourceType": "Appointment", "id": aid, "status": status, "start": start, "end": start,
            "basedOn": [{"reference": based_on}], "participant": [{"status": "accepted"}]}


@pytest.fixture
def world(store):
    with store.unit_of_work(write=True) as uow:
        put(uow, {"resourceType": "Patient", "id": "p1", "birthDate": "2014-05-06"})
        put(uow, _request("s1", "phone"))
        put(uow, _request("s2", "letter"))
        put(uow, _request("s3", None))
        put(uow, _task("t1", "completed", "2026-03-01T10:00:00Z", "ServiceRequest/s1", "Organization/o1"))
        put(uow, _task("t2", "requested", "2026-03-02T10:00:00Z", "ServiceRequest/s2"))
        put(uow, _task("t3", "completed", "2026-03-03T10:00:00Z", "ServiceRequest/s1"))
        put(uow, _task("t4", "requested", None, "ServiceRequest/gone"))
        put(uow, _task("t5", "requested", "2026-03-05T10:00:00Z", "ServiceRequest/s3"))
        put(uow, _appointment("a1", "ServiceRequest/s1", "2026-03-20T09:00:00Z"))
        put(uow, _appointment("a2", "ServiceRequest/s1", "2026-03-10T09:00:00Z", status="cancelled"))
        put(uow, _appointment("a3", "ServiceRequest/s2", "2026-04-01T09:00:00Z"))
        put(uow, _appointment("a4", "ServiceRequest/s2", "2026-03-30T09:00:00Z"))
        put(uow, {"resourceType": "Task", "id": "gone", "status": "requested", "intent": "order"})
        put(uow, _task("t6", "requested", "2026-03-06T10:00:00Z", "ServiceRequest/s1"))
    with store.unit_of_work(write=True) as uow:  # deleted resources count nowhere
        delete(uow, "Task", "t6", version_id=2, last_updated=instant(50))
    return store


def _tabulate(store, rtype: str, params: list, *columns) -> list[tuple]:
    with store.unit_of_work(write=False) as uow:
        rows = uow.tabulate(Tabulation(plan(rtype, params), tuple(columns)))
    return sorted(rows, key=lambda row: tuple("" if v is None else str(v) for v in row))


def test_counts_by_a_token_of_the_resource(world):
    assert _tabulate(world, "Task", [], Value("status", "code")) == [("completed", 2), ("requested", 4)]
    assert _tabulate(world, "Task", [("status", "requested")]) == [(4,)]
    assert _tabulate(world, "Task", [("status", "cancelled")]) == []  # nothing counted: no row
    assert _tabulate(world, "Task", [("status", "cancelled")], Value("status", "code")) == []


def test_ids_dates_and_missing_values(world):
    rows = _tabulate(world, "Task", [("status", "requested")], Id(), Value("authored-on", "low"))
    assert rows == [("gone", None, 1), ("t2", "2026-03-02T10:00:00.000000Z", 1), ("t4", None, 1),
                    ("t5", "2026-03-05T10:00:00.000000Z", 1)]
    [(updated, n)] = _tabulate(world, "Task", [("_id", "t1")], Updated())
    assert (updated, n) == (instant(1), 1)


def test_follow_a_reference_to_a_token_and_through_a_system(world):
    rows = _tabulate(world, "Task", [], Value("status", "code"), Follow("focus", "ServiceRequest", Value("category", "code")))
    assert rows == [("completed", "phone", 2), ("requested", None, 3), ("requested", "letter", 1)]
    rows = _tabulate(world, "Task", [("_id", "t1,t2")],
                     Follow("focus", "ServiceRequest", Value("category", "code", system="urn:other")))
    assert rows == [(None, 2)]


def test_follow_twice_and_reference_targets(world):
    patient_birth = Follow("focus", "ServiceRequest", Follow("subject", "Patient", Value("birthdate", "low")))
    assert _tabulate(world, "Task", [("_id", "t1,t2,t4")], patient_birth) == [
        (None, 1), ("2014-05-06T00:00:00.000000Z", 2)]
    assert _tabulate(world, "Task", [], Value("owner", "target")) == [(None, 5), ("Organization/o1", 1)]
    assert _tabulate(world, "Task", [("_id", "t1")], Value("owner", "target", target_type="Patient")) == [(None, 1)]


def test_referrers_with_token_conditions(world):
    first_visit = Follow("focus", "ServiceRequest", Referrers(
        "Appointment", "based-on", Value("date", "low"), (TokenIs("status", ("cancelled",), negate=True),)))
    rows = _tabulate(world, "Task", [("_id", "t1,t2,t5")], Id(), first_visit)
    assert rows == [("t1", "2026-03-20T09:00:00.000000Z", 1), ("t2", "2026-03-30T09:00:00.000000Z", 1), ("t5", None, 1)]
    cancelled = Referrers("Appointment", "based-on", Id(), (TokenIs("status", ("cancelled", "noshow")),))
    assert _tabulate(world, "ServiceRequest", [], Id(), cancelled) == [
        ("s1", "a2", 1), ("s2", None, 1), ("s3", None, 1)]
    # the referring entry must point at this resource under that parameter
    assert _tabulate(world, "ServiceRequest", [("_id", "s1")], Referrers("Task", "owner", Id())) == [(None, 1)]


def test_coalesce_and_not_after(world):
    channel = Follow("focus", "ServiceRequest", Value("category", "code"))
    rows = _tabulate(world, "Task", [], Coalesce((channel, Value("status", "code"))))
    assert rows == [("letter", 1), ("phone", 2), ("requested", 3)]
    visit = Follow("focus", "ServiceRequest", Referrers("Appointment", "based-on", Value("date", "low")))
    rows = _tabulate(world, "Task", [], Id(), NotAfter(visit, Value("authored-on", "low")),
                     NotAfter(Value("authored-on", "low"), visit))
    assert rows == [("gone", 0, 0, 1), ("t1", 0, 1, 1), ("t2", 0, 1, 1), ("t3", 0, 1, 1), ("t4", 0, 0, 1), ("t5", 0, 0, 1)]


def test_what_the_stores_cannot_run_is_refused_before_they_try():
    task = plan("Task", [])
    with pytest.raises(TabulationError):
        check_tabulation(Tabulation(plan(None, []), ()))
    with pytest.raises(TabulationError):
        check_tabulation(Tabulation(task, (Follow("focus", "X", Coalesce((Id(),))),)))
    with pytest.raises(TabulationError):
        check_tabulation(Tabulation(task, (Referrers("X", "p", Follow("a", "B", Id())),)))
    with pytest.raises(TabulationError):
        check_tabulation(Tabulation(task, (Value("status", "text"),)))
    with pytest.raises(TabulationError):
        check_tabulation(Tabulation(task, (Referrers("X", "p", Id(), (TokenIs("status", ()),)),)))
