"""The workflow rules on every storage backend, in-process (no HTTP): the same intake
transaction on SQLite and on the Mongo backend (mongomock in CI; a real replica set
when EVI_TEST_MONGO_URI is set)."""

import json
from datetime import date

import orjson
import pytest

from fhir_server.app import build_runtime
from fhir_server.engine import RequestContext, find_matches, process_bundle
from fhir_server.errors import Conflict
from fhir_server.settings import Settings
from fhir_server.storage import open_store
from tests.storage.conftest import _mongodb_store, _mongomock_store
from tests.support.evi import CS, EXAMPLES, TEST_REGION, scenario


@pytest.fixture(params=["sqlite-memory", "mongomock", "mongodb"])
def runtime(request):
    store = {"sqlite-memory": lambda: open_store("sqlite://:memory:"), "mongomock": _mongomock_store,
             "mongodb": _mongodb_store}[request.param]()
    rt = build_runtime(Settings(region_file=str(TEST_REGION)), store=store)
    yield rt
    if request.param == "mongodb":
        store.db.client.drop_database(store.db.name)
    store.close()


CTX = RequestContext(base_url="http://test/fhir")


def _load_examples(runtime) -> None:
    resources = [json.loads(p.read_text()) for p in sorted((EXAMPLES / "valid").glob("*.json"))]
    process_bundle(runtime, CTX, {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in resources]})


def _read(runtime, rtype, query):
    with runtime.work(CTX, write=False) as work:
        ids = find_matches(work, rtype, query, limit=10)
        return [orjson.loads(work.uow.current(rtype, i).body) for i in ids]


def test_intake_of_a_placed_child(runtime):
    _load_examples(runtime)
    answer = process_bundle(runtime, CTX, scenario("placed-child-phoning", born=date(2011, 7, 9)))
    locations = [e["response"]["location"].split("/") for e in answer["entry"]]
    sr = next(f"ServiceRequest/{p[p.index('ServiceRequest') + 1]}" for p in locations if "ServiceRequest" in p)
    [task] = _read(runtime, "Task", [("focus", sr), ("code", f"{CS}evi-task-type|intake")])
    assert task["owner"] == {"reference": "Organization/evi-vgr"} and task["status"] == "requested"
    assert [i["valueCoding"]["code"] for i in task["input"]] == ["placed-child"]
    assert len(_read(runtime, "Task", [("focus", sr), ("code", f"{CS}evi-task-type|social-services-dialogue")])) == 1
    assert len(_read(runtime, "Communication", [("subject", task["for"]["reference"])])) == 1


def test_state_machine_and_rollback(runtime):
    task = {"resourceType": "Task", "id": "t1", "status": "completed", "intent": "order"}
    process_bundle(runtime, CTX, {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": task, "request": {"method": "PUT", "url": "Task/t1"}}]})
    with pytest.raises(Conflict, match="'completed' to 'requested'"):
        process_bundle(runtime, CTX, {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": {"resourceType": "Basic", "id": "b1", "code": {"text": "x"}},
             "request": {"method": "PUT", "url": "Basic/b1"}},
            {"resource": {**task, "status": "requested"}, "request": {"method": "PUT", "url": "Task/t1"}}]})
    with runtime.work(CTX, write=False) as work:
        assert work.uow.current("Basic", "b1") is None
        assert work.uow.current("Task", "t1").version_id == 1


def test_triage_books_a_slot_once(runtime):
    from fhir_server.workflow import triage

    _load_examples(runtime)
    tasks = []
    for born in (date(2012, 1, 5), date(2013, 2, 6)):
        answer = process_bundle(runtime, CTX, scenario("self-referral-guardian", born=born))
        parts = next(p for p in (e["response"]["location"].split("/") for e in answer["entry"]) if "ServiceRequest" in p)
        sr = f"ServiceRequest/{parts[parts.index('ServiceRequest') + 1]}"
        [task] = _read(runtime, "Task", [("focus", sr), ("code", f"{CS}evi-task-type|intake")])
        tasks.append(task["id"])
    slot = {"resourceType": "Slot", "id": "s1", "schedule": {"reference": "Schedule/bup-uddevalla-nybesok"},
            "status": "free", "start": "2027-03-01T09:00:00+01:00", "end": "2027-03-01T09:45:00+01:00"}
    process_bundle(runtime, CTX, {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": slot, "request": {"method": "PUT", "url": "Slot/s1"}}]})
    params = {"resourceType": "Parameters", "parameter": [
        {"name": "outcome", "valueCoding": {"system": f"{CS}evi-triage-outcome", "code": "book-first-visit"}},
        {"name": "slot", "valueReference": {"reference": "Slot/s1"}}]}
    result = triage(runtime, CTX, tasks[0], params)
    [appointment] = [p["resource"] for p in result["parameter"] if p["name"] == "created"]
    assert appointment["slot"] == [{"reference": "Slot/s1"}] and appointment["status"] == "booked"
    with pytest.raises(Conflict):
        triage(runtime, CTX, tasks[1], params)
    with runtime.work(CTX, write=False) as work:
        assert orjson.loads(work.uow.current("Slot", "s1").body)["status"] == "busy"
        assert work.uow.current("Slot", "s1").version_id == 2
        assert orjson.loads(work.uow.current("Task", tasks[1]).body)["status"] == "requested"
    assert len(_read(runtime, "Appointment", [("slot", "Slot/s1")])) == 1
