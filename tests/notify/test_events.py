"""Events are recorded in the unit of work of the write that causes them (domain.md §7):
rolled back with it, committed with it, only for subscribers whose criteria and owner's
view the focus meets."""

from __future__ import annotations

import uuid

import orjson
import pytest

from fhir_server.app import build_runtime
from fhir_server.engine import RequestContext, create, update
from fhir_server.security import Caller, Scopes
from fhir_server.settings import Settings
from tests.support.notify import subscription

BASE = "http://evi.example/fhir"
KALMAR = Caller(role="municipality", scopes=Scopes.parse("system/*.rs system/Subscription.cud"), client_id="kalmar",
                organization="Organization/kalmar")


@pytest.fixture(params=["sqlite", "mongomock"])
def runtime(request, tmp_path):
    """Both backends: the outbox is in the main database's transaction on each."""
    store = None
    if request.param == "mongomock":
        from fhir_server.storage.mongo import MongoStore
        from tests.support.mongo_replica_set import ReplicaSet

        store = MongoStore(ReplicaSet(), "evi")
    runtime = build_runtime(Settings(storage=f"sqlite://{tmp_path / 'evi.db'}"), store=store)
    yield runtime
    runtime.store.close()


def _write(runtime, resource: dict, caller: Caller | None = None) -> str:
    with runtime.work(RequestContext(base_url=BASE, caller=caller, from_client=True), write=True) as work:
        return create(work, resource["resourceType"], resource).version.id


def _task(owner: str) -> dict:
    return {"resourceType": "Task", "status": "requested", "intent": "order", "owner": {"reference": owner},
            "identifier": [{"system": "urn:test", "value": uuid.uuid4().hex}]}


def _waiting(runtime) -> dict[str, int]:
    with runtime.store.unit_of_work(write=False) as uow:
        return uow.outbox.unnumbered()


def test_events_roll_back_with_the_write_and_commit_with_it(runtime):
    sid = _write(runtime, subscription("task-assigned", "http://127.0.0.1:9/x", filters=("Task?owner=Organization/a",)))
    stream = f"Subscription/{sid}"
    with pytest.raises(RuntimeError):
        with runtime.work(RequestContext(base_url=BASE), write=True) as work:
            create(work, "Task", _task("Organization/a"))
            work.run_before_commit()  # the events are appended now, in this transaction
            assert work.uow.outbox.unnumbered() == {stream: 1}
            raise RuntimeError("a later step of the same unit of work fails")
    assert _waiting(runtime) == {}
    _write(runtime, _task("Organization/b"))  # not the filter's owner
    assert _waiting(runtime) == {}
    _write(runtime, _task("Organization/a"))
    assert _waiting(runtime) == {stream: 1}


def test_an_owner_gets_events_only_about_what_it_may_see(runtime):
    _write(runtime, {"resourceType": "Organization", "id": "x", "name": "kalmar"})
    sid = _write(runtime, subscription("task-assigned", "http://127.0.0.1:9/x"), caller=KALMAR)
    stream = f"Subscription/{sid}"
    _write(runtime, _task("Organization/uddevalla"))  # another municipality's Task
    assert _waiting(runtime) == {}
    _write(runtime, _task("Organization/kalmar"))
    assert _waiting(runtime) == {stream: 1}


def test_an_off_subscription_records_nothing(runtime):
    sid = _write(runtime, subscription("task-assigned", "http://127.0.0.1:9/x"))
    with runtime.work(RequestContext(base_url=BASE, from_client=True), write=True) as work:
        current = orjson.loads(work.uow.current("Subscription", sid).body)
        update(work, "Subscription", sid, {**current, "status": "off"})
    _write(runtime, _task("Organization/a"))
    assert _waiting(runtime) == {}
