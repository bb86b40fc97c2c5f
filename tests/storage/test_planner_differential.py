"""The SQLite planner (storage/sqlite/planner.py) against the MongoDB backend (on
mongomock): random data, random worklist-shaped queries, the same answers in the same
order. The two backends share no query code, so an agreement is evidence for both.

The planner's thresholds are lowered for some runs, so that a few hundred resources
drive it through every form: driven by the smallest condition, walking a sort's index,
counting with and without the resource rows, and keyset pages (``after``, with creates
and deletes between pages)."""

from __future__ import annotations

import random

import pytest

from fhir_server.storage import open_store
from fhir_server.storage.sqlite import planner
from tests.storage.conftest import _mongomock_store
from tests.storage.helpers import delete, plan, put

SYSTEM = "https://evi-fhir.org/fhir/CodeSystem/evi-task-type"
OTHER = "http://example.org/other"
STATUSES = ("requested", "in-progress", "completed", "cancelled")
CODES = ("intake", "triage", "sip")
OWNERS = 4
N = 260


def _day(rng: random.Random) -> str:
    return f"2025-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"


def _task(rng: random.Random, n: int) -> dict:
    codings = [{"system": SYSTEM, "code": rng.choice(CODES)}]
    if rng.random() < 0.2:  # a second coding: the code is multi-valued
        codings.append({"system": OTHER, "code": rng.choice(CODES)})
    task = {
        "resourceType": "Task", "id": f"t{n:04d}", "status": rng.choice(STATUSES), "intent": "order",
        "code": {"coding": codings},
    }
    if rng.random() < 0.9:
        task["owner"] = {"reference": f"Organization/o{rng.randrange(OWNERS)}"}
    if rng.random() < 0.85:  # some have no authored-on: they sort last either way
        task["authoredOn"] = _day(rng) + (f"T{rng.randrange(24):02d}:00:00Z" if rng.random() < 0.5 else "")
    shape = rng.random()
    if shape < 0.5:
        a, b = sorted((_day(rng), _day(rng)))
        task["executionPeriod"] = {"start": a, "end": b}
    elif shape < 0.6:
        task["executionPeriod"] = {"start": _day(rng)}  # open end
    elif shape < 0.7:
        task["executionPeriod"] = {"end": _day(rng)}  # open start
    return task


def _query(rng: random.Random) -> list[tuple[str, str]]:
    params: list[tuple[str, str]] = []
    if rng.random() < 0.6:
        params.append(("status", ",".join(rng.sample(STATUSES, rng.choice((1, 1, 2))))))
    if rng.random() < 0.6:
        code = rng.choice(CODES)
        params.append(("code", rng.choice((f"{SYSTEM}|{code}", code))))
    if rng.random() < 0.5:
        params.append(("owner", f"Organization/o{rng.randrange(OWNERS)}"))
    if rng.random() < 0.4:
        name = rng.choice(("authored-on", "period"))
        a, b = sorted((_day(rng), _day(rng)))
        params.append((name, rng.choice(("ge", "gt", "eq", "sa")) + a))
        if rng.random() < 0.7:
            params.append((name, rng.choice(("lt", "le", "eb")) + b))
    sort = rng.choice(("", "authored-on", "-authored-on", "period", "-period", "_lastUpdated", "-_id", "status"))
    if sort:
        params.append(("_sort", sort))
    return params


def _goal(rng: random.Random, n: int) -> dict:
    """Goals: ``target-date`` is multi-valued (a resource's first value in sort order counts)."""
    goal = {
        "resourceType": "Goal", "id": f"g{n:03d}", "lifecycleStatus": rng.choice(("proposed", "active")),
        "description": {"text": "x"}, "subject": {"reference": "Patient/p"},
    }
    dates = [_day(rng) for _ in range(rng.choice((0, 1, 2, 3)))]
    if dates:
        goal["target"] = [{"dueDate": d} for d in dates]
    return goal


def _appointment(rng: random.Random, n: int) -> dict:
    actors = rng.sample(range(OWNERS), rng.choice((1, 1, 2)))
    appointment = {
        "resourceType": "Appointment", "id": f"a{n:03d}", "status": "booked",
        "participant": [{"actor": {"reference": f"HealthcareService/s{a}"}, "status": "accepted"} for a in actors],
    }
    if rng.random() < 0.9:
        day = f"2025-03-{rng.randrange(1, 8):02d}"
        appointment |= {"start": f"{day}T{rng.randrange(8, 16):02d}:00:00Z", "end": f"{day}T17:00:00Z"}
    return appointment


@pytest.fixture(scope="module")
def stores():
    rng = random.Random(16)
    tasks = [_task(rng, n) for n in range(N)] + [_goal(rng, n) for n in range(80)]
    tasks += [_appointment(rng, n) for n in range(120)]
    sqlite, mongo = open_store("sqlite://:memory:"), _mongomock_store()
    for store in (sqlite, mongo):
        with store.unit_of_work(write=True) as uow:
            for n, task in enumerate(tasks):
                put(uow, task, last_updated=f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}.000000Z")
    yield sqlite, mongo
    sqlite.close()
    mongo.close()


def _refs(store, p, *, limit=None, offset=None):
    with store.unit_of_work(write=False) as uow:
        return uow.search(p, with_total=True, limit=limit, offset=offset)


@pytest.fixture(params=["default", "low-thresholds"])
def thresholds(request, monkeypatch):
    if request.param == "low-thresholds":  # every condition "large": walks and bounded counts
        monkeypatch.setattr(planner, "PROBE_CAP", 3)
        monkeypatch.setattr(planner, "WALK_NEED", 40)


def test_the_planner_agrees_with_mongodb_on_random_queries(stores, thresholds):
    sqlite, mongo = stores
    rng = random.Random(1616)
    for _ in range(80):
        params = _query(rng)
        p = plan("Task", params)
        limit, offset = rng.choice(((None, None), (7, 0), (5, rng.randrange(30))))
        got = _refs(sqlite, p, limit=limit or 10_000, offset=offset or 0)
        want = _refs(mongo, p, limit=limit or 10_000, offset=offset or 0)
        assert got.refs == want.refs, params
        assert got.total == want.total, params
        with sqlite.unit_of_work(write=False) as uow:
            assert uow.count(p, 5) == min(want.total, 5), params


@pytest.mark.parametrize("sort", ["target-date", "-target-date"])
def test_multi_valued_date_sorts_agree_with_mongodb(stores, thresholds, sort):
    sqlite, mongo = stores
    for params in ([("_sort", sort)], [("lifecycle-status", "active"), ("_sort", sort)],
                   [("target-date", "ge2025-03-01"), ("target-date", "lt2025-09-01"), ("_sort", sort)]):
        p = plan("Goal", params)
        for limit, offset in ((10_000, 0), (6, 0), (6, 11)):
            assert _refs(sqlite, p, limit=limit, offset=offset).refs == _refs(mongo, p, limit=limit, offset=offset).refs
        assert _pages(sqlite, p, 5) == _refs(mongo, p, limit=10_000).refs


def _pages(store, p, size: int, *, between=None) -> list:
    """Every page through cursors (``after``) and the start's high-water mark."""
    seen, after = [], None
    with store.unit_of_work(write=False) as uow:
        high_water = uow.high_water()
    while True:
        with store.unit_of_work(write=False) as uow:
            result = uow.search(p, with_total=False, limit=size + 1, offset=0, after=after, high_water=high_water)
        seen.extend(result.refs[:size])
        if len(result.refs) <= size:
            return seen
        after = result.cursors[size - 1]
        if between is not None:
            between(len(seen))


@pytest.mark.parametrize("sort", ["-authored-on", "authored-on", "-period", "_lastUpdated", "-_id", "", "status", "-status"])
def test_cursor_pages_visit_every_match_once_in_order(stores, thresholds, sort):
    sqlite, _ = stores
    params = [("status", "requested,in-progress,completed")] + ([("_sort", sort)] if sort else [])
    p = plan("Task", params)
    assert _pages(sqlite, p, 9) == _refs(sqlite, p, limit=10_000).refs


def test_cursor_pages_leave_out_later_creates_and_skip_nothing_when_others_go(thresholds):
    rng = random.Random(7)
    store = open_store("sqlite://:memory:")
    with store.unit_of_work(write=True) as uow:
        for n in range(60):
            put(uow, _task(rng, n) | {"status": "requested"})
    p = plan("Task", [("status", "requested"), ("_sort", "-authored-on")])
    before = _refs(store, p, limit=10_000).refs
    deleted: list = []

    def between(shown: int) -> None:
        with store.unit_of_work(write=True) as uow:
            put(uow, _task(rng, 1000 + shown) | {"status": "requested", "authoredOn": "2025-12-31"})
            victim = before[-(len(deleted) + 1)]  # one not shown yet
            delete(uow, "Task", victim[1], version_id=2, last_updated="2026-02-01T00:00:00.000000Z")
            deleted.append(victim)

    got = _pages(store, p, 7, between=between)
    assert got == [r for r in before if r not in deleted]
    store.close()


@pytest.mark.parametrize("code", [f"{SYSTEM}|intake", "intake", f"{OTHER}|triage", "sip,intake"])
def test_worklists_on_the_combined_index_agree_with_mongodb(stores, code):
    """The intake worklist's shape (combos.py): owner, status and code, newest first."""
    sqlite, mongo = stores
    for owner in range(OWNERS):
        for status in STATUSES:
            for sort in ("-authored-on", ""):
                params = [("code", code), ("owner", f"Organization/o{owner}"), ("status", status)]
                p = plan("Task", params + ([("_sort", sort)] if sort else []))
                want = _refs(mongo, p, limit=10_000)
                got = _refs(sqlite, p, limit=10_000)
                assert got.refs == want.refs and got.total == want.total, params
                assert _pages(sqlite, p, 2) == want.refs, params


def test_the_worklist_reads_the_combined_index(stores):
    sqlite, _ = stores
    p = plan("Task", [("code", "intake"), ("owner", "Organization/o1"), ("status", "requested"),
                      ("_sort", "-authored-on")])
    with sqlite.unit_of_work(write=False) as uow:
        planned = uow._planned(p)
        driver, _ = planned.choose(uow._conn)
    assert driver is not None and driver.combo is not None
    assert planned._combo_walk(driver) is not None


def test_the_combined_index_follows_updates_and_deletes():
    store = open_store("sqlite://:memory:")
    task = {"resourceType": "Task", "id": "w", "status": "requested", "intent": "order", "authoredOn": "2025-05-05",
            "code": {"coding": [{"system": SYSTEM, "code": "intake"}]}, "owner": {"reference": "Organization/o1"}}

    def worklist(owner: str) -> list:
        p = plan("Task", [("code", f"{SYSTEM}|intake"), ("owner", f"Organization/{owner}"), ("status", "requested"),
                          ("_sort", "-authored-on")])
        return [i for _, i in _refs(store, p).refs]

    with store.unit_of_work(write=True) as uow:
        put(uow, task)
    assert worklist("o1") == ["w"]
    with store.unit_of_work(write=True) as uow:
        put(uow, task | {"owner": {"reference": "Organization/o2"}}, version_id=2)
    assert (worklist("o1"), worklist("o2")) == ([], ["w"])
    with store.unit_of_work(write=True) as uow:
        delete(uow, "Task", "w", version_id=3, last_updated="2026-02-01T00:00:00.000000Z")
    assert worklist("o2") == []
    store.close()


def test_a_days_appointments_of_an_actor_agree_with_mongodb(stores):
    sqlite, mongo = stores
    for actor in range(OWNERS):
        for dates in (["2025-03-03"], ["ge2025-03-02", "lt2025-03-05"], ["sa2025-03-03"], ["eb2025-03-04"],
                      ["2025-03-02,2025-03-06"], ["le2025-03-03"]):
            for sort in ("", "-date"):
                params = [("actor", f"HealthcareService/s{actor}")] + [("date", d) for d in dates]
                p = plan("Appointment", params + ([("_sort", sort)] if sort else []))
                want = _refs(mongo, p, limit=10_000)
                assert _refs(sqlite, p, limit=10_000).refs == want.refs, params
                assert _pages(sqlite, p, 2) == want.refs, params


def test_an_estimate_is_never_below_the_matches(stores):
    sqlite, mongo = stores
    rng = random.Random(99)
    for _ in range(30):
        p = plan("Task", _query(rng))
        with sqlite.unit_of_work(write=False) as uow:
            estimate = uow.count(p, estimate=True)
        assert estimate >= _refs(mongo, p, limit=1).total
