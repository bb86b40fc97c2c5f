"""workflow/queue.py: the triage queue's order (rule 6: priority, then receipt time, then id;
never the sender), its page arithmetic, overdue, parameters; and the operation over a
real store (SQLite in memory, the Mongo backend on mongomock, a real MongoDB when
EVI_TEST_MONGO_URI is set; no HTTP) against the reference order."""

import random
from datetime import datetime, timezone

import pytest

from fhir_server.conformance import ig_directory, ig_search_parameters
from fhir_server.engine import RequestContext, Runtime, create
from fhir_server.errors import BadRequest
from fhir_server.search import SearchRegistry
from fhir_server.storage import open_store
from fhir_server.workflow.queue import (
    OPEN_STATUSES,
    is_overdue,
    page_window,
    parse_queue_params,
    priority_rank,
    queue_key,
    triage_queue,
)
from tests.storage.conftest import _mongodb_store, _mongomock_store

BASE = "http://127.0.0.1:8080/fhir"
TASK_TYPE = "https://evi-fhir.org/fhir/CodeSystem/evi-task-type"
OVERDUE = "https://evi-fhir.org/fhir/StructureDefinition/evi-overdue"
NOW = datetime(2026, 3, 18, 12, 0, tzinfo=timezone.utc)


def _task(tid: str, priority: str | None, authored: str, **extra) -> dict:
    task = {"resourceType": "Task", "id": tid, "status": "requested", "intent": "order", "authoredOn": authored}
    if priority:
        task["priority"] = priority
    return {**task, **extra}


# ---- the order ----------------------------------------------------------------------------

def test_priority_rank_is_stat_asap_urgent_routine_and_missing_is_routine():
    assert [priority_rank(p) for p in ("stat", "asap", "urgent", "routine", None)] == [0, 1, 2, 3, 3]


def test_queue_key_orders_by_priority_then_receipt_then_id():
    tasks = [
        _task("a", None, "2026-01-01T08:00:00Z"),
        _task("b", "routine", "2026-01-01T07:00:00Z"),
        _task("c", "urgent", "2026-02-01T00:00:00Z"),
        _task("d", "stat", "2026-03-01T00:00:00Z"),
        _task("e", "asap", "2026-01-01T00:00:00Z"),
        _task("f", "routine", "2026-01-01T08:00:00Z"),  # same receipt as a: id decides
    ]
    assert [t["id"] for t in sorted(tasks, key=queue_key)] == ["d", "e", "c", "b", "a", "f"]


def test_receipt_times_compare_as_instants_across_zones():
    early = _task("x", "routine", "2026-01-19T10:15:02+01:00")  # 09:15:02Z
    late = _task("y", "routine", "2026-01-19T09:30:00Z")
    assert sorted([late, early], key=queue_key)[0]["id"] == "x"


def test_the_requester_and_everything_else_do_not_change_the_order():
    priorities = ["stat", None, "urgent", "routine", "asap"] * 3
    base = [_task(f"t{i}", p, f"2026-01-0{1 + i % 5}T10:00:00Z") for i, p in enumerate(priorities)]
    decorated = [
        {**t, "requester": {"reference": f"Organization/{random.choice(['school', 'social', 'bup', 'parent'])}"},
         "for": {"reference": f"Patient/{i}"}, "businessStatus": {"text": str(i)}, "note": [{"text": "!" * i}]}
        for i, t in enumerate(base)
    ]
    assert [queue_key(t) for t in base] == [queue_key(t) for t in decorated]


# ---- pages ------------------------------------------------------------------------------

@pytest.mark.parametrize("sizes", [[0, 0, 0, 0], [3, 0, 5, 2], [1, 1, 1, 1], [0, 0, 0, 17], [10, 10, 10, 10], [7, 0, 0, 0]])
@pytest.mark.parametrize("count", [0, 1, 3, 10, 50])
def test_page_window_is_the_slice_of_the_buckets_laid_end_to_end(sizes, count):
    laid = [(b, i) for b, size in enumerate(sizes) for i in range(size)]
    for offset in range(0, len(laid) + 3):
        window = page_window(sizes, offset, count)
        got = [(b, i) for b, start, n in window for i in range(start, start + n)]
        assert got == laid[offset : offset + count]
        assert all(n > 0 for _, _, n in window)


# ---- overdue ----------------------------------------------------------------------------

@pytest.mark.parametrize("end, overdue", [
    ("2026-03-18T11:59:59Z", True),
    ("2026-03-18T12:00:01Z", False),
    ("2026-03-18T12:30:00+01:00", True),   # 11:30Z
    ("2026-03-17", True),
    ("2026-03-18", False),                 # due until the day ends
    ("2026-03-19", False),
    (None, False),
])
def test_overdue_when_the_due_date_has_passed(end, overdue):
    task = _task("t", "routine", "2026-03-15T12:00:00Z")
    if end is not None:
        task["restriction"] = {"period": {"end": end}}
    assert is_overdue(task, NOW) is overdue


def test_no_restriction_is_never_overdue():
    assert not is_overdue({"resourceType": "Task", "restriction": {"period": {"start": "2020-01-01"}}}, NOW)


# ---- parameters -------------------------------------------------------------------------

def _parse(*pairs):
    return parse_queue_params(list(pairs), default_count=20, max_count=100, base_url=BASE)


def test_parameters_defaults_and_limits():
    assert _parse() == parse_queue_params([], default_count=20, max_count=100)
    request = _parse(("owner", "Organization/evi-vgr"), ("_count", "500"), ("_offset", "40"), ("_format", "json"))
    assert (request.owner, request.count, request.offset, request.summary_count) == ("Organization/evi-vgr", 100, 40, False)
    assert _parse(("owner", f"{BASE}/Organization/evi-vgr")).owner == "Organization/evi-vgr"
    assert _parse(("_summary", "count")).summary_count


@pytest.mark.parametrize("pairs, mention", [
    ([("requester", "Organization/x")], "requester"),
    ([("_sort", "-authored-on")], "owner, _count, _offset, _summary"),
    ([("owner", "evi-vgr")], "Organization/{id}"),
    ([("owner", "Patient/p1")], "owner"),
    ([("owner", "Organization/")], "owner"),
    ([("owner", "Organization/bad id")], "owner"),
    ([("owner", "Organization/a"), ("owner", "Organization/b")], "once"),
    ([("_count", "-1")], "_count"),
    ([("_count", "ten")], "_count"),
    ([("_offset", "x")], "_offset"),
    ([("_summary", "true")], "_summary"),
])
def test_bad_parameters_are_refused(pairs, mention):
    with pytest.raises(BadRequest) as raised:
        _parse(*pairs)
    assert raised.value.status == 400
    assert mention in raised.value.message


# ---- the operation over a store -----------------------------------------------------------

@pytest.fixture(params=["sqlite-memory", "mongomock", "mongodb"])
def runtime(request):
    store = {"sqlite-memory": lambda: open_store("sqlite://:memory:"), "mongomock": _mongomock_store,
             "mongodb": _mongodb_store}[request.param]()
    runtime = Runtime(
        store=store,
        registry=SearchRegistry.from_spec(extra=ig_search_parameters(ig_directory())),
        default_page_size=20, max_page_size=50,
    )
    yield runtime
    if request.param == "mongodb":
        store.db.client.drop_database(store.db.name)
    store.close()


def _stored_task(rng: random.Random, owner: str, *, status="requested", kind="intake") -> dict:
    task = {
        "resourceType": "Task",
        "status": status,
        "intent": "order",
        "code": {"coding": [{"system": TASK_TYPE, "code": kind}]},
        # few distinct times, so that ties are common and the id must break them
        "authoredOn": f"2026-02-{rng.randint(1, 4):02d}T0{rng.randint(8, 9)}:00:00+01:00",
        "owner": {"reference": owner},
        "requester": {"reference": f"Organization/sender-{rng.randint(1, 5)}"},
        "restriction": {"period": {"end": rng.choice(["2026-01-01T00:00:00Z", "2099-01-01T00:00:00Z"])}},
    }
    priority = rng.choice(["stat", "asap", "urgent", "routine", None, None])
    if priority:
        task["priority"] = priority
    return task


def test_every_page_follows_the_reference_order(runtime):
    rng = random.Random(6)
    ctx = RequestContext(base_url=BASE)
    expected = []
    with runtime.work(ctx, write=True) as work:
        for _ in range(120):
            stored = create(work, "Task", _stored_task(rng, "Organization/queue-unit")).resource
            expected.append(stored)
        for status in ("completed", "cancelled", "draft", "failed", "rejected"):
            create(work, "Task", _stored_task(rng, "Organization/queue-unit", status=status))
        for status in OPEN_STATUSES:
            stored = create(work, "Task", _stored_task(rng, "Organization/queue-unit", status=status)).resource
            expected.append(stored)
        create(work, "Task", _stored_task(rng, "Organization/queue-unit", kind="social-services-dialogue"))
        create(work, "Task", _stored_task(rng, "Organization/other-unit"))
    expected.sort(key=queue_key)

    seen, offset, pages = [], 0, 0
    while True:
        bundle = triage_queue(runtime, ctx, [("owner", "Organization/queue-unit"), ("_count", "13"), ("_offset", str(offset))])
        assert bundle["type"] == "searchset" and bundle["total"] == len(expected)
        entries = bundle.get("entry", [])
        for entry in entries:
            assert entry["search"]["mode"] == "match"
            (ext,) = entry["search"]["extension"]
            seen.append((entry["fullUrl"].rsplit("/", 1)[-1], ext["url"], ext["valueBoolean"]))
        pages += 1
        relations = {link["relation"]: link["url"] for link in bundle["link"]}
        if "next" not in relations:
            break
        assert f"_offset={offset + 13}" in relations["next"]
        offset += 13
    assert pages == -(-len(expected) // 13)
    assert [s[0] for s in seen] == [t["id"] for t in expected]
    assert {s[1] for s in seen} == {OVERDUE}
    overdue = {t["id"]: t["restriction"]["period"]["end"].startswith("2026") for t in expected}
    assert all(flag == overdue[tid] for tid, _, flag in seen)

    everyone = triage_queue(runtime, ctx, [("_count", "50")])
    assert everyone["total"] == len(expected) + 1  # the other unit's Task too
    summary = triage_queue(runtime, ctx, [("owner", "Organization/queue-unit"), ("_summary", "count")])
    assert summary["total"] == len(expected) and "entry" not in summary
