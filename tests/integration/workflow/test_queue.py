"""Rule 6 through HTTP: GET Task/$triage-queue (httpx and fhirpy), the `due` search
parameter with date prefixes, and the operations' definitions in the guide and the
CapabilityStatement.

Most tests PUT intake Tasks with explicit times for an owner of their own, so that the
module's shared server (examples, other tests' referrals) does not disturb the order;
referrals posted to the EVI unit show that the Tasks intake creates queue the same way.
"""

import uuid
from datetime import date, datetime, timedelta, timezone

import pytest

from tests.support.evi import CS, FHIR_JSON, SD, patient, referral

QUEUE = "/Task/$triage-queue"
INTAKE = f"{CS}evi-task-type|intake"
OVERDUE = f"{SD}evi-overdue"
OPEN = ["requested", "received", "accepted", "ready", "in-progress", "on-hold"]
DEF_TRIAGE = "https://evi-fhir.org/fhir/OperationDefinition/triage"
DEF_QUEUE = "https://evi-fhir.org/fhir/OperationDefinition/triage-queue"


@pytest.fixture
def unit(evi) -> str:
    """A unit of its own (Organization/q-...), so a test sees only its Tasks in the queue."""
    oid = f"q-{uuid.uuid4().hex[:12]}"
    r = evi.put(f"/Organization/{oid}", json={"resourceType": "Organization", "id": oid, "name": "Kö-test"},
                headers=FHIR_JSON)
    assert r.status_code == 201, r.text
    return f"Organization/{oid}"


def _task(tid: str, owner: str, priority: str | None, authored: str, *, status: str = "requested",
          kind: str | None = "intake", due: str | None = "2099-01-01T00:00:00Z", requester: str | None = None) -> dict:
    task = {"resourceType": "Task", "id": tid, "status": status, "intent": "order", "authoredOn": authored,
            "owner": {"reference": owner}}
    if kind:
        task["code"] = {"coding": [{"system": f"{CS}evi-task-type", "code": kind}]}
    if priority:
        task["priority"] = priority
    if due:
        task["restriction"] = {"period": {"start": authored, "end": due}}
    if requester:
        task["requester"] = {"reference": requester}
    return task


def _put(evi, *tasks: dict) -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": t, "request": {"method": "PUT", "url": f"Task/{t['id']}"}} for t in tasks]}
    r = evi.post("", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 200, r.text


def _queue(evi, **params) -> dict:
    r = evi.get(QUEUE, params=params)
    assert r.status_code == 200, r.text
    bundle = r.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    return bundle


def _ids(bundle: dict) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", [])]


def _links(bundle: dict) -> dict[str, str]:
    return {link["relation"]: link["url"] for link in bundle["link"]}


def _prefix() -> str:
    return f"q{uuid.uuid4().hex[:8]}"


# ---- order --------------------------------------------------------------------------------

def test_order_is_priority_then_receipt_time_then_id(evi, unit):
    p = _prefix()
    tasks = [
        _task(f"{p}-routine-early", unit, "routine", "2026-01-05T08:00:00Z"),
        _task(f"{p}-none-mid", unit, None, "2026-01-05T09:00:00Z"),
        _task(f"{p}-routine-late", unit, "routine", "2026-01-06T08:00:00Z"),
        _task(f"{p}-stat-late", unit, "stat", "2026-02-01T08:00:00Z"),
        _task(f"{p}-stat-early", unit, "stat", "2026-01-01T08:00:00Z"),
        _task(f"{p}-asap", unit, "asap", "2026-03-01T08:00:00Z"),
        _task(f"{p}-urgent-b", unit, "urgent", "2026-01-10T08:00:00Z"),
        _task(f"{p}-urgent-a", unit, "urgent", "2026-01-10T09:00:00+01:00"),  # the same instant: id decides
        _task(f"{p}-urgent-0", unit, "urgent", "2026-01-09T23:30:00-01:00"),  # 2026-01-10T00:30Z
    ]
    _put(evi, *tasks)
    bundle = _queue(evi, owner=unit)
    assert bundle["total"] == len(tasks)
    assert _ids(bundle) == [f"{p}-{s}" for s in (
        "stat-early", "stat-late", "asap", "urgent-0", "urgent-a", "urgent-b",
        "routine-early", "none-mid", "routine-late")]
    for entry in bundle["entry"]:
        assert entry["search"]["mode"] == "match"
        assert entry["fullUrl"].endswith(f"/Task/{entry['resource']['id']}")


def test_the_requester_does_not_change_the_order(evi, unit):
    """Same priority, requesters whose order is the reverse of the receipt order."""
    p = _prefix()
    _put(evi,
         _task(f"{p}-1", unit, "urgent", "2026-01-01T10:00:00Z", requester="Organization/zzz-social-services"),
         _task(f"{p}-2", unit, "urgent", "2026-01-01T11:00:00Z", requester="Organization/aaa-school-health"),
         _task(f"{p}-3", unit, "urgent", "2026-01-01T12:00:00Z", requester="Organization/zzz-social-services"),
         _task(f"{p}-4", unit, "urgent", "2026-01-01T13:00:00Z"))
    assert _ids(_queue(evi, owner=unit)) == [f"{p}-1", f"{p}-2", f"{p}-3", f"{p}-4"]


def _refer(evi, priority: str, requester: str) -> str:
    """POST a Patient and a referral; return the intake Task's id."""
    pat = evi.post("/Patient", json=patient(date(2013, 4, 5)), headers=FHIR_JSON)
    assert pat.status_code == 201, pat.text
    body = referral(f"Patient/{pat.json()['id']}", priority=priority, requester=requester)
    sr = evi.post("/ServiceRequest", json=body, headers=FHIR_JSON)
    assert sr.status_code == 201, sr.text
    found = evi.get("/Task", params={"focus": f"ServiceRequest/{sr.json()['id']}", "code": INTAKE}).json()
    [entry] = found["entry"]
    return entry["resource"]["id"]


def _whole_queue(evi, **params) -> list[dict]:
    entries, offset = [], 0
    while True:
        bundle = _queue(evi, **params, _count="200", _offset=str(offset))
        entries.extend(bundle.get("entry", []))
        if "next" not in _links(bundle):
            return entries
        offset += 200


def test_referrals_queue_by_receipt_time_whatever_their_sender(evi, fhir):
    """Intake Tasks of referrals from different senders, same priority: receipt order only."""
    senders = ["Organization/vardcentral-uddevalla", "Organization/elevhalsan-uddevalla",
               "Organization/socialtjansten-uddevalla", "Organization/bup-uddevalla"]
    first = [_refer(evi, "asap", s) for s in senders]
    second = [_refer(evi, "asap", s) for s in reversed(senders)]
    received = first + second
    queue = [e["resource"] for e in _whole_queue(evi, owner="Organization/evi-vgr")]
    ids = [t["id"] for t in queue]
    assert [i for i in ids if i in received] == received
    mine = {t["id"]: t for t in queue if t["id"] in received}
    assert all(t["priority"] == "asap" and t["owner"]["reference"] == "Organization/evi-vgr" for t in mine.values())
    # an asap referral comes before every routine Task of the unit, and after every stat one
    ranks = [{"stat": 0, "asap": 1, "urgent": 2}.get(t.get("priority"), 3) for t in queue]
    assert ranks == sorted(ranks)
    # fhirpy sees the same queue (the operation answers a plain searchset)
    bundle = fhir.execute("Task/$triage-queue", method="get", params={"owner": "Organization/evi-vgr", "_count": "500"})
    assert [e["resource"]["id"] for e in bundle["entry"] if e["resource"]["id"] in received] == received
    # intake Tasks are due three days after receipt: not overdue
    for entry in bundle["entry"]:
        if entry["resource"]["id"] in received:
            assert entry["search"]["extension"] == [{"url": OVERDUE, "valueBoolean": False}]


# ---- what is in the queue -----------------------------------------------------------------

def test_overdue_says_whether_the_due_date_has_passed(evi, unit):
    p = _prefix()
    now = datetime.now(timezone.utc)
    past = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    soon = (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    _put(evi,
         _task(f"{p}-a", unit, "routine", "2026-01-01T00:00:00Z", due=past),
         _task(f"{p}-b", unit, "routine", "2026-01-02T00:00:00Z", due=soon),
         _task(f"{p}-c", unit, "routine", "2026-01-03T00:00:00Z", due="2026-01-06"),
         _task(f"{p}-d", unit, "routine", "2026-01-04T00:00:00Z", due=(now + timedelta(days=1)).date().isoformat()),
         _task(f"{p}-e", unit, "routine", "2026-01-05T00:00:00Z", due=None))
    bundle = _queue(evi, owner=unit)
    flags = {e["resource"]["id"]: e["search"]["extension"] for e in bundle["entry"]}
    assert flags == {f"{p}-{k}": [{"url": OVERDUE, "valueBoolean": v}]
                     for k, v in (("a", True), ("b", False), ("c", True), ("d", False), ("e", False))}


def test_only_open_intake_tasks_of_the_owner(evi, unit):
    p = _prefix()
    other = f"Organization/other-{p}"
    open_tasks = [_task(f"{p}-{s}", unit, "routine", f"2026-01-0{i + 1}T00:00:00Z", status=s) for i, s in enumerate(OPEN)]
    closed = [_task(f"{p}-{s}", unit, "stat", "2026-01-01T00:00:00Z", status=s)
              for s in ("draft", "completed", "cancelled", "failed", "rejected", "entered-in-error")]
    not_intake = [_task(f"{p}-dialogue", unit, "stat", "2026-01-01T00:00:00Z", kind="social-services-dialogue"),
                  _task(f"{p}-transfer", unit, "stat", "2026-01-01T00:00:00Z", kind="transfer-care-responsibility"),
                  _task(f"{p}-nocode", unit, "stat", "2026-01-01T00:00:00Z", kind=None)]
    elsewhere = [_task(f"{p}-elsewhere", other, "stat", "2026-01-01T00:00:00Z")]
    _put(evi, *open_tasks, *closed, *not_intake, *elsewhere)

    bundle = _queue(evi, owner=unit)
    assert _ids(bundle) == [t["id"] for t in open_tasks] and bundle["total"] == len(OPEN)
    assert _ids(_queue(evi, owner=other)) == [f"{p}-elsewhere"]
    # without an owner: every owner's open intake Tasks (the examples' and other tests' too)
    everyone = [e["resource"]["id"] for e in _whole_queue(evi)]
    assert {t["id"] for t in open_tasks} | {f"{p}-elsewhere"} <= set(everyone)
    assert not {t["id"] for t in closed + not_intake} & set(everyone)
    assert "intake-hugo" not in everyone  # the example's intake Task is completed


def test_a_task_leaves_the_queue_when_it_is_closed(evi, unit):
    p = _prefix()
    task = _task(f"{p}-x", unit, "urgent", "2026-01-01T00:00:00Z")
    _put(evi, task, _task(f"{p}-y", unit, "routine", "2026-01-01T00:00:00Z"))
    assert _ids(_queue(evi, owner=unit)) == [f"{p}-x", f"{p}-y"]
    for status in ("in-progress", "completed"):
        r = evi.put(f"/Task/{p}-x", json={**task, "status": status}, headers=FHIR_JSON)
        assert r.status_code == 200, r.text
    assert _ids(_queue(evi, owner=unit)) == [f"{p}-y"]


def test_an_empty_queue(evi, unit):
    bundle = _queue(evi, owner=unit)
    assert bundle["total"] == 0 and "entry" not in bundle
    assert set(_links(bundle)) == {"self"}


# ---- pages --------------------------------------------------------------------------------

def test_paging_gives_every_task_once_in_order(evi, unit):
    p = _prefix()
    priorities = ["stat", "asap", "urgent", "routine", None]
    tasks = [_task(f"{p}-{n:02d}", unit, priorities[n % 5], f"2026-01-{1 + (n * 7) % 20:02d}T08:00:00Z")
             for n in range(45)]
    _put(evi, *tasks)
    rank = {"stat": 0, "asap": 1, "urgent": 2}
    expected = [t["id"] for t in sorted(tasks, key=lambda t: (rank.get(t.get("priority"), 3), t["authoredOn"], t["id"]))]

    seen, pages, url = [], [], f"{QUEUE}?owner={unit}&_count=10"
    while url:
        r = evi.get(url)
        assert r.status_code == 200, r.text
        bundle = r.json()
        assert bundle["total"] == 45
        pages.append(bundle)
        seen.extend(_ids(bundle))
        url = _links(bundle).get("next")
    assert seen == expected
    assert [len(b["entry"]) for b in pages] == [10, 10, 10, 10, 5]
    last = _links(pages[-1])
    assert "next" not in last and "_offset=30" in last["previous"] and "_offset=40" in last["self"]
    assert "previous" not in _links(pages[0])
    for link in _links(pages[2]).values():
        assert "/Task/$triage-queue?" in link and f"owner={unit.replace('/', '%2F')}" in link and "_count=10" in link
    # a previous link goes back a page
    back = evi.get(_links(pages[2])["previous"]).json()
    assert _ids(back) == expected[10:20]


def test_count_and_summary(evi, unit):
    p = _prefix()
    _put(evi, *[_task(f"{p}-{n}", unit, "routine", f"2026-01-0{n + 1}T00:00:00Z") for n in range(3)])
    none = _queue(evi, owner=unit, _count="0")
    assert none["total"] == 3 and "entry" not in none and set(_links(none)) == {"self"}
    summary = _queue(evi, owner=unit, _summary="count")
    assert summary["total"] == 3 and "entry" not in summary
    default = _queue(evi, owner=unit)
    assert len(default["entry"]) == 3 and "_count=20" in _links(default)["self"]
    past_the_end = _queue(evi, owner=unit, _offset="10", _count="2")
    assert "entry" not in past_the_end and "_offset=8" in _links(past_the_end)["previous"]


# ---- errors -------------------------------------------------------------------------------

def _outcome(r, *mentions: str) -> dict:
    assert r.status_code == 400, r.text
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    text = " ".join(i.get("diagnostics", "") for i in outcome["issue"])
    for m in mentions:
        assert m in text, text
    return outcome


def test_unknown_parameters_are_refused_naming_the_allowed_ones(evi):
    outcome = _outcome(evi.get(QUEUE, params={"requester": "Organization/evi-vgr"}),
                       "requester", "owner", "_count", "_offset")
    assert outcome["issue"][0]["expression"] == ["requester"]
    _outcome(evi.get(QUEUE, params={"_sort": "-authored-on"}), "_sort")
    _outcome(evi.get(QUEUE, params={"status": "completed"}), "status")


@pytest.mark.parametrize("params, mention", [
    ({"owner": "evi-vgr"}, "Organization/{id}"),
    ({"owner": "Patient/child-hugo"}, "owner"),
    ({"owner": "Organization/"}, "owner"),
    ({"owner": "Organization/not an id"}, "owner"),
    ({"_count": "ten"}, "_count"),
    ({"_count": "-5"}, "_count"),
    ({"_offset": "-1"}, "_offset"),
    ({"_summary": "text"}, "_summary"),
])
def test_malformed_parameters_are_a_400(evi, params, mention):
    _outcome(evi.get(QUEUE, params=params), mention)


def test_a_repeated_owner_is_a_400(evi):
    _outcome(evi.get(f"{QUEUE}?owner=Organization/a&owner=Organization/b"), "once")


# ---- the due search parameter ---------------------------------------------------------------

def test_due_search_finds_overdue_work_with_date_prefixes(evi, fhir, unit):
    p = _prefix()
    _put(evi,
         _task(f"{p}-mar10", unit, "routine", "2026-03-01T08:00:00Z", due="2026-03-10T12:00:00Z"),
         _task(f"{p}-mar17", unit, "routine", "2026-03-01T08:00:00Z", due="2026-03-17T23:00:00Z"),
         _task(f"{p}-mar18", unit, "routine", "2026-03-01T08:00:00Z", due="2026-03-18T10:00:00Z"),
         _task(f"{p}-mar20", unit, "routine", "2026-03-01T08:00:00Z", due="2026-03-20"),
         _task(f"{p}-closed", unit, "routine", "2026-02-28T08:00:00Z", due="2026-03-01T00:00:00Z", status="completed"),
         _task(f"{p}-nodue", unit, "routine", "2026-03-01T08:00:00Z", due=None))

    def found(**criteria) -> set[str]:
        r = evi.get("/Task", params={"code": INTAKE, "status": "requested", "owner": unit, "_count": "50", **criteria})
        assert r.status_code == 200, r.text
        return {e["resource"]["id"].removeprefix(f"{p}-") for e in r.json().get("entry", []) if e["search"]["mode"] == "match"}

    assert found(due="lt2026-03-18") == {"mar10", "mar17"}
    assert found(due="le2026-03-18") == {"mar10", "mar17", "mar18"}
    assert found(due="ge2026-03-18") == {"mar18", "mar20"}
    assert found(due="gt2026-03-18") == {"mar20"}
    assert found(due="2026-03-18") == {"mar18"}
    assert found(due="lt2026-03-18T00:00:00Z") == {"mar10", "mar17"}
    assert found(due="lt2026-03-17T23:00:00Z") == {"mar10"}
    assert found(due=["ge2026-03-15", "lt2026-03-19"]) == {"mar17", "mar18"}
    assert found(**{"due:missing": "true"}) == {"nodue"}
    # fhirpy passes the prefix in the value
    tasks = fhir.resources("Task").search(code=INTAKE, status="requested", owner=unit, due="lt2026-03-18").fetch_all()
    assert {t.id.removeprefix(f"{p}-") for t in tasks} == {"mar10", "mar17"}


def test_a_referral_intake_task_is_due_three_days_after_receipt(evi):
    task_id = _refer(evi, "routine", "Organization/elevhalsan-uddevalla")
    task = evi.get(f"/Task/{task_id}").json()
    received = datetime.fromisoformat(task["authoredOn"].replace("Z", "+00:00"))
    assert datetime.fromisoformat(task["restriction"]["period"]["end"].replace("Z", "+00:00")) == received + timedelta(days=3)

    def ids(due: str) -> set[str]:
        r = evi.get("/Task", params={"code": INTAKE, "status": "requested", "_id": task_id, "due": due})
        assert r.status_code == 200, r.text
        return {e["resource"]["id"] for e in r.json().get("entry", [])}

    day = lambda d: (received + timedelta(days=d)).date().isoformat()  # noqa: E731
    assert ids(f"lt{day(2)}") == set() and ids(f"gt{day(2)}") == {task_id}
    assert ids(f"lt{day(5)}") == {task_id} and ids(f"ge{day(5)}") == set()


# ---- definitions --------------------------------------------------------------------------

def test_capability_statement_names_the_operations_with_their_definitions(evi, fhir):
    cs = evi.get("/metadata").json()
    resources = {r["type"]: r for r in cs["rest"][0]["resource"]}
    task_ops = {o["name"]: o["definition"] for o in resources["Task"]["operation"]}
    assert task_ops["triage"] == DEF_TRIAGE and task_ops["triage-queue"] == DEF_QUEUE
    for rtype, entry in resources.items():
        if rtype != "Task":
            assert not {"triage", "triage-queue"} & {o["name"] for o in entry.get("operation", ())}, rtype
    # the definitions resolve on this server, by id and by canonical
    for canonical in (DEF_TRIAGE, DEF_QUEUE):
        [found] = fhir.resources("OperationDefinition").search(url=canonical).fetch_all()
        assert found.url == canonical and found.resource == ["Task"]


def test_the_operation_definitions_are_served(evi):
    triage = evi.get("/OperationDefinition/triage")
    assert triage.status_code == 200, triage.text
    od = triage.json()
    assert (od["url"], od["code"], od["instance"], od["type"], od["system"]) == (DEF_TRIAGE, "triage", True, False, False)
    params = {(p["use"], p["name"]): p for p in od["parameter"]}
    assert set(params) == {("in", n) for n in ("outcome", "note", "slot", "careLevel", "visitMode", "recipient")} | {
        ("out", "task"), ("out", "created")}
    outcome = params["in", "outcome"]
    assert (outcome["min"], outcome["max"], outcome["type"]) == (1, "1", "Coding")
    assert outcome["binding"]["valueSet"] == "https://evi-fhir.org/fhir/ValueSet/evi-triage-outcome"
    assert params["in", "slot"]["targetProfile"] == ["http://hl7.org/fhir/StructureDefinition/Slot"]
    assert (params["out", "created"]["max"], params["out", "created"]["type"]) == ("*", "Resource")

    od = evi.get("/OperationDefinition/triage-queue").json()
    assert (od["url"], od["code"], od["type"], od["instance"]) == (DEF_QUEUE, "triage-queue", True, False)
    assert od["affectsState"] is False
    params = {(p["use"], p["name"]): p for p in od["parameter"]}
    assert params["in", "owner"]["type"] == "string" and params["in", "owner"]["searchType"] == "reference"
    assert params["out", "return"]["type"] == "Bundle"
    assert {"_count", "_offset"} <= {n for u, n in params if u == "in"}
