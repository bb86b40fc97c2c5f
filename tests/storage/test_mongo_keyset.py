"""Keyset paging and the derived fields on the MongoDB backend (storage/mongo/keyset.py,
combos.py), on mongomock: what is stored, which form a search takes, what a cursor and
the high-water mark leave out. Behaviour only: mongomock has no query planner, so which
index a real server picks is not tested here (docs/mongodb.md says which one is meant)."""

from __future__ import annotations

import pytest

from fhir_server.storage.mongo import MongoStore
from fhir_server.storage.mongo.combos import COMBOS, NO_LOW, SORT_DATES, combo_key, narrowing
from fhir_server.storage.mongo.compile import compile_filter
from fhir_server.storage.mongo.keyset import order_for
from tests.storage.helpers import delete, plan, put
from tests.support.mongo_replica_set import ReplicaSet

SYSTEM = "https://evi-fhir.org/fhir/CodeSystem/evi-task-type"


def _task(id: str, *, owner="Organization/o1", status="requested", codes=("intake",), authored="2025-05-05") -> dict:
    task = {"resourceType": "Task", "id": id, "status": status, "intent": "order",
            "code": {"coding": [{"system": SYSTEM, "code": c} for c in codes]}, "owner": {"reference": owner}}
    if authored:
        task["authoredOn"] = authored
    return task


@pytest.fixture
def store():
    s = MongoStore(ReplicaSet(), "evi")
    yield s
    s.close()


def _doc(store, id: str) -> dict:
    return store.resources.find_one({"_id": f"Task/{id}"})


def test_the_declarations_name_parameters_of_their_types():
    from tests.storage.helpers import registry

    assert set(COMBOS) <= set(SORT_DATES)  # a combination's index is sorted by its type's sort date
    for resource_type, code in SORT_DATES.items():
        assert registry().get(resource_type, code).type == "date", (resource_type, code)
    for resource_type, combo in COMBOS.items():
        for code, kind in combo.keys:
            assert registry().get(resource_type, code).type == kind, (resource_type, code)


def test_a_task_carries_its_sort_dates_and_combination_keys(store):
    with store.unit_of_work(write=True) as uow:
        put(uow, _task("t1", codes=("intake", "triage"), authored="2025-05-05"))
        put(uow, _task("t2", authored=None))
    doc = _doc(store, "t1")
    assert doc["_sh"] == "2025-05-05T23:59:59.999999Z" and doc["_sl"] == "2025-05-05T00:00:00.000000Z"
    assert sorted(doc["_cb"]) == ['["Organization/o1","requested","intake"]', '["Organization/o1","requested","triage"]']
    assert (_doc(store, "t2")["_sh"], _doc(store, "t2")["_sl"]) == (None, NO_LOW)  # last in either direction
    patient = {"resourceType": "Patient", "id": "p"}
    with store.unit_of_work(write=True) as uow:
        put(uow, patient)
    assert not {"_sh", "_sl", "_cb"} & set(store.resources.find_one({"_id": "Patient/p"}))  # undeclared type


def test_the_resource_number_is_kept_through_updates_deletes_and_re_creates(store):
    with store.unit_of_work(write=True) as uow:
        put(uow, _task("t1"))
        put(uow, _task("t2"))
    first = _doc(store, "t1")["n"]
    with store.unit_of_work(write=True) as uow:
        put(uow, _task("t1", status="completed"), version_id=2)
        delete(uow, "Task", "t1", version_id=3, last_updated="2026-02-01T00:00:00.000000Z")
    doc = _doc(store, "t1")
    assert doc["n"] == first and doc["seq"] > first
    assert not {"_idx", "_sh", "_sl", "_cb"} & set(doc)  # a deletion keeps no search values
    with store.unit_of_work(write=True) as uow:
        put(uow, _task("t1", owner="Organization/o2"), version_id=4)
    doc = _doc(store, "t1")
    assert doc["n"] == first and doc["_cb"] == ['["Organization/o2","requested","intake"]']
    assert _doc(store, "t2")["n"] > first


def test_the_worklist_names_its_combination_key_and_walks_the_sort_date(store):
    p = plan("Task", [("code", f"{SYSTEM}|intake"), ("owner", "Organization/o1"), ("status", "requested"),
                      ("_sort", "-authored-on")])
    assert combo_key(p) == '["Organization/o1","requested","intake"]'
    with store.unit_of_work(write=False) as uow:
        assert {"_cb": combo_key(p)} in compile_filter(p, uow)["$and"]
    order = order_for(p)
    assert order.find and order.sort == (("_sh", -1), ("i", 1))
    # not served: two owners, a modifier, an owner without a type
    for params in ([("owner", "Organization/o1,Organization/o2")], [("owner:missing", "false")], [("owner", "o1")]):
        assert combo_key(plan("Task", params + [("code", "intake"), ("status", "requested")])) is None


def test_a_day_of_a_service_bounds_the_sort_date():
    p = plan("Appointment", [("actor", "HealthcareService/hs1"), ("date", "2025-03-14")])
    assert narrowing(p) == [{"_cb": '["HealthcareService/hs1"]'}, {"_sh": {"$gte": "2025-03-14T00:00:00.000000Z"}}]
    assert narrowing(plan("Appointment", [("date", "lt2025-03-14")])) == []  # an upper bound says nothing of the largest high


@pytest.mark.parametrize("sort, form", [
    ("", ("t", "i")), ("-_lastUpdated", ("lu", "i")), ("_id", ("i", "t")), ("authored-on", ("_sl", "i")),
])
def test_orders_walk_a_field(sort, form):
    order = order_for(plan("Task", [("_sort", sort)] if sort else []))
    assert order.find and tuple(f for f, _ in order.sort) == form


def test_parameter_sorts_run_the_pipeline_and_several_keys_have_no_positions():
    assert not order_for(plan("Task", [("_sort", "-period")])).find
    assert order_for(plan("Task", [("_sort", "status,-authored-on")])) is None


def _page(store, p, size, after=None, high_water=None):
    with store.unit_of_work(write=False) as uow:
        return uow.search(p, with_total=False, limit=size, offset=0, after=after, high_water=high_water)


@pytest.mark.parametrize("sort", ["-authored-on", "authored-on", "-period", "_lastUpdated", "", "-_id"])
def test_cursors_page_through_ties_and_missing_values(store, sort):
    with store.unit_of_work(write=True) as uow:
        for n in range(12):  # ties on the dates, and some without one
            task = _task(f"t{n:02d}", authored=None if n % 4 == 0 else f"2025-05-0{1 + n % 3}")
            if n % 3:
                task["executionPeriod"] = {"start": f"2025-06-0{1 + n % 2}"}
            put(uow, task)
    p = plan("Task", [("status", "requested")] + ([("_sort", sort)] if sort else []))
    everything = _page(store, p, 100)
    seen, after = [], None
    while True:
        result = _page(store, p, 5, after)
        seen += result.refs
        if len(result.refs) < 5:
            break
        after = result.cursors[-1]
    assert seen == everything.refs and len(seen) == 12
    assert all(c[2:] == list(r) for c, r in zip(everything.cursors, everything.refs))


def test_the_high_water_mark_leaves_out_later_creates_but_not_old_documents(store):
    with store.unit_of_work(write=True) as uow:
        put(uow, _task("t1"))
        put(uow, _task("t2"))
        mark = uow.high_water()
        put(uow, _task("t3"))
    store.resources.update_one({"_id": "Task/t2"}, {"$unset": {"n": ""}})  # written before numbers existed
    with store.unit_of_work(write=True) as uow:
        put(uow, _task("t1", status="requested"), version_id=2)  # an update keeps its number: still shown
    p = plan("Task", [("status", "requested")])
    assert [i for _, i in _page(store, p, 10, high_water=mark).refs] == ["t1", "t2"]


def test_documents_written_before_the_derived_fields_get_them_when_the_store_opens():
    client = ReplicaSet()
    store = MongoStore(client, "evi")
    with store.unit_of_work(write=True) as uow:
        put(uow, _task("t1"))
    store.resources.update_one({"_id": "Task/t1"}, {"$unset": {"_sh": "", "_sl": "", "_cb": ""}})
    store.counters.delete_one({"_id": "layout:derived"})
    MongoStore(client, "evi")  # another process opens the database
    doc = store.resources.find_one({"_id": "Task/t1"})
    assert doc["_cb"] == ['["Organization/o1","requested","intake"]'] and doc["_sh"].startswith("2025-05-05")
