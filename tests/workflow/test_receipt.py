"""The receipt time of a contact (workflow/receipt.py, domain.md §8 "Historical data"):
evi-received is honoured from the admin role and with auth off, refused in the future,
and ignored (not stored) from every other caller, whose write time stands."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import orjson
import pytest

from fhir_server.app import build_runtime
from fhir_server.engine import RequestContext, create, find_matches, process_bundle, update
from fhir_server.errors import Unprocessable
from fhir_server.security import Caller, Scopes
from fhir_server.settings import Settings
from fhir_server.storage import open_store
from fhir_server.workflow import EXT_RECEIVED
from tests.storage.conftest import _mongomock_store
from tests.support.evi import CS, EXAMPLES, TEST_REGION, patient, referral

BASE = "http://test/fhir"
SERVER = RequestContext(base_url=BASE)


def _as(role: str) -> RequestContext:
    caller = Caller(role, Scopes.parse("system/*.cruds"), client_id=f"c-{role}", organization="Organization/evi-vgr")
    return RequestContext(base_url=BASE, caller=caller, from_client=True)


@pytest.fixture(params=["sqlite-memory", "mongomock"])
def runtime(request):
    store = open_store("sqlite://:memory:") if request.param == "sqlite-memory" else _mongomock_store()
    rt = build_runtime(Settings(region_file=str(TEST_REGION)), store=store)
    resources = [json.loads(p.read_text()) for p in sorted((EXAMPLES / "valid").glob("*.json"))]
    process_bundle(rt, SERVER, {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in resources]})
    yield rt
    store.close()


def _received(value: str) -> dict:
    return {"url": EXT_RECEIVED, "valueDateTime": value}


def _refer(runtime, ctx: RequestContext, *received: str, born: date = date(2014, 2, 3)) -> tuple[dict, dict]:
    """Create a child and its referral (with ``received``); (stored referral, its intake Task)."""
    with runtime.work(SERVER, write=True) as work:
        child = create(work, "Patient", patient(born)).resource
    sr = referral(f"Patient/{child['id']}", requester="Organization/evi-vgr")
    sr["extension"] += [_received(r) for r in received]
    with runtime.work(ctx, write=True) as work:
        stored = create(work, "ServiceRequest", sr).resource
    return stored, _intake_task(runtime, stored["id"])


def _intake_task(runtime, sr_id: str) -> dict:
    with runtime.work(SERVER, write=False) as work:
        [tid] = find_matches(work, "Task", [("focus", f"ServiceRequest/{sr_id}"), ("code", f"{CS}evi-task-type|intake")])
        return orjson.loads(work.uow.current("Task", tid).body)


def _stated(resource: dict) -> list[str]:
    return [e["valueDateTime"] for e in resource.get("extension", []) if e["url"] == EXT_RECEIVED]


@pytest.mark.parametrize("who", ["admin", "server"])
def test_a_migrated_referral_is_received_when_it_says(runtime, who):
    ctx = SERVER if who == "server" else _as("admin")
    stored, task = _refer(runtime, ctx, "2025-11-03T08:15:00+01:00")
    assert _stated(stored) == ["2025-11-03T08:15:00+01:00"]
    assert task["authoredOn"] == "2025-11-03T07:15:00.000000Z"
    assert task["restriction"]["period"] == {"start": "2025-11-03T07:15:00.000000Z", "end": "2025-11-06T07:15:00.000000Z"}


def test_a_date_is_the_first_moment_of_that_day_in_the_region(runtime):
    _, task = _refer(runtime, _as("admin"), "2025-07-01")  # summer time: UTC+2
    assert task["authoredOn"] == "2025-06-30T22:00:00.000000Z"
    assert task["restriction"]["period"]["end"] == "2025-07-03T22:00:00.000000Z"


def test_age_is_taken_on_the_day_of_receipt(runtime):
    # 18 today, but 17 on the day the old system received the referral: no age flag
    born = date.today().replace(year=date.today().year - 18) - timedelta(days=10)
    _, task = _refer(runtime, _as("admin"), (born.replace(year=born.year + 18) - timedelta(days=1)).isoformat(), born=born)
    assert not [i for i in task.get("input", []) if i["valueCoding"]["code"] == "age-out-of-range"]


@pytest.mark.parametrize("value", [
    (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    (date.today() + timedelta(days=1)).isoformat(),
    "2025-11",
    "2025",
])
def test_a_future_or_dayless_receipt_is_refused_and_nothing_is_stored(runtime, value):
    before = _referrals(runtime)
    with pytest.raises(Unprocessable, match="evi-received"):
        _refer(runtime, _as("admin"), value)
    assert _referrals(runtime) == before


def _referrals(runtime) -> set[str]:
    with runtime.work(SERVER, write=False) as work:
        return set(find_matches(work, "ServiceRequest", [("status", "active,draft,on-hold,completed,revoked")], limit=1000))


def test_a_receipt_is_stated_once(runtime):
    with pytest.raises(Unprocessable, match="at most once"):
        _refer(runtime, _as("admin"), "2025-11-03", "2025-11-04")


@pytest.mark.parametrize("role", ["evi", "care-unit", "municipality"])
def test_other_callers_cannot_set_change_or_remove_a_receipt(runtime, role):
    before = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    caller = _as(role)
    stored, task = _refer(runtime, caller, "2025-11-03")
    assert _stated(stored) == [] and task["authoredOn"] >= before  # the write time stands
    migrated, _ = _refer(runtime, _as("admin"), "2025-11-03")
    for given in ([_received("2024-01-01")], []):  # changed, then removed: the stored value stays
        changed = {**migrated, "extension": [e for e in migrated["extension"] if e["url"] != EXT_RECEIVED] + given}
        with runtime.work(caller, write=True) as work:
            kept = update(work, "ServiceRequest", migrated["id"], changed).resource
        assert _stated(kept) == ["2025-11-03"]
    assert _intake_task(runtime, migrated["id"])["authoredOn"] == "2025-11-02T23:00:00.000000Z"
