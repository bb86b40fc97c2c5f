"""Rule 7 in-process: the pure checks of the care-responsibility transfer and the
integrated-care steps, then the whole rule on every backend (SQLite, mongomock; a real
replica set when EVI_TEST_MONGO_URI is set) without HTTP."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import orjson
import pytest

from fhir_server.app import build_runtime
from fhir_server.engine import RequestContext, find_matches, process_bundle
from fhir_server.errors import Conflict, Unprocessable
from fhir_server.settings import Settings
from fhir_server.storage import open_store
from fhir_server.workflow.care_transfer import age_problem, capacity_of, is_transfer, placement_problem
from fhir_server.workflow.integrated_care import STEPS, closure_problems, step_change_problem
from tests.storage.conftest import _mongodb_store, _mongomock_store
from tests.support.evi import (
    CS,
    EXAMPLES,
    SD,
    TEST_REGION,
    integrated_care_episode,
    mobile_team,
    patient,
    sis_transfer,
)

STOCKHOLM = ZoneInfo("Europe/Stockholm")
TODAY = date.today()


def _born(years: int, days: int = 0) -> date:
    """``years`` old today, give or take one (so the tests do not age)."""
    return date(TODAY.year - years, 1, 1) + timedelta(days=days)


# -- pure checks --------------------------------------------------------------------------------

@pytest.mark.parametrize("old,new", [
    ("sis-assessment", "referral"), ("decision", "decision"), ("decision", "efforts"),
    ("referral", "closure"), ("long-term-collaboration", "closure"), ("closure", "closure"),
])
def test_steps_may_stay_or_move_forward(old, new):
    assert step_change_problem(old, new) is None


@pytest.mark.parametrize("old,new", [
    ("referral", "sis-assessment"), ("efforts", "offer"), ("closure", "long-term-collaboration"), ("closure", "decision"),
])
def test_a_step_back_is_named_with_both_steps(old, new):
    problem = step_change_problem(old, new)
    assert problem is not None and f"'{old}'" in problem and f"'{new}'" in problem


def test_steps_are_the_code_system_in_order():
    codes = [c["code"] for c in json.loads(
        (EXAMPLES.parent / "profiles" / "CodeSystem-evi-integrated-care-step.json").read_text())["concept"]]
    assert list(STEPS) == codes


def test_closure_needs_finished_and_period_end():
    assert closure_problems({"status": "finished", "period": {"start": "2026-01-01", "end": "2026-06-01"}}) == []
    problems = closure_problems({"status": "active", "period": {"start": "2026-01-01"}})
    assert len(problems) == 2 and "finished" in problems[0] and "period.end" in problems[1]


def test_age_is_taken_in_the_region_time_zone():
    youth = {"birthDate": "2008-11-23"}
    # 23:30 UTC on the 22nd is already the 23rd (the 18th birthday) in Stockholm (UTC+1)
    assert age_problem(youth, datetime(2026, 11, 22, 23, 30, tzinfo=timezone.utc), STOCKHOLM) is not None
    assert age_problem(youth, datetime(2026, 11, 22, 23, 30, tzinfo=timezone.utc), timezone.utc) is None
    assert age_problem(youth, datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc), STOCKHOLM) is None
    assert "birthDate" in age_problem({}, datetime(2026, 1, 1, tzinfo=timezone.utc), STOCKHOLM)


def _placed(kind: str | None, basis: str | None) -> dict:
    subs = []
    if kind:
        subs.append({"url": "type", "valueCoding": {"system": CS + "evi-placement-type", "code": kind}})
    if basis:
        subs.append({"url": "legalBasis", "valueCoding": {"system": CS + "evi-placement-legal-basis", "code": basis}})
    return {"extension": [{"url": SD + "evi-placement", "extension": subs}]}


def test_placement_must_be_sis_under_lvu():
    assert placement_problem(_placed("sis", "LVU")) is None
    assert "type hvb" in placement_problem(_placed("hvb", "LVU"))
    assert "legalBasis SoL" in placement_problem(_placed("sis", "SoL"))
    both = placement_problem(_placed("foster-home", None))
    assert "type foster-home" in both and "legalBasis missing" in both
    assert "no evi-placement" in placement_problem({"birthDate": "2010-01-01"})


def test_capacity_and_transfer_code():
    assert capacity_of(mobile_team(3), 10) == 3
    assert capacity_of(mobile_team(None), 10) == 10
    assert capacity_of(None, 7) == 7
    assert is_transfer({"code": {"coding": [{"system": CS + "evi-task-type", "code": "transfer-care-responsibility"}]}})
    assert not is_transfer({"code": {"coding": [{"system": CS + "evi-task-type", "code": "intake"}]}})


# -- the whole rule in-process, on every backend --------------------------------------------------

CTX = RequestContext(base_url="http://test/fhir")


@pytest.fixture(params=["sqlite-memory", "mongomock", "mongodb"])
def runtime(request):
    store = {"sqlite-memory": lambda: open_store("sqlite://:memory:"), "mongomock": _mongomock_store,
             "mongodb": _mongodb_store}[request.param]()
    rt = build_runtime(Settings(region_file=str(TEST_REGION)), store=store)
    resources = [json.loads(p.read_text()) for p in sorted((EXAMPLES / "valid").glob("*.json"))]
    process_bundle(rt, CTX, {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in resources]})
    yield rt
    if request.param == "mongodb":
        store.db.client.drop_database(store.db.name)
    store.close()


def _post(runtime, bundle: dict) -> dict[str, str]:
    answer = process_bundle(runtime, CTX, bundle)
    landed = {}
    for entry, response in zip(bundle["entry"], answer["entry"]):
        parts = response["response"]["location"].split("/")
        landed[entry.get("fullUrl", "")] = "/".join(parts[parts.index("_history") - 2: parts.index("_history")])
    return landed


def _one(landed: dict[str, str], rtype: str) -> str:
    [ref] = [v for v in landed.values() if v.startswith(rtype + "/")]
    return ref


def _get(runtime, ref: str) -> dict:
    with runtime.work(CTX, write=False) as work:
        return orjson.loads(work.uow.current(*ref.split("/")).body)


def _put(runtime, resource: dict) -> None:
    ref = f"{resource['resourceType']}/{resource['id']}"
    process_bundle(runtime, CTX, {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": resource, "request": {"method": "PUT", "url": ref}}]})


def _set_status(runtime, ref: str, status: str) -> dict:
    task = _get(runtime, ref)
    task["status"] = status
    _put(runtime, task)
    return _get(runtime, ref)


def _new_team(runtime, capacity: int | None) -> str:
    return _one(_post(runtime, {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:team", "resource": mobile_team(capacity), "request": {"method": "POST", "url": "Organization"}}]}),
        "Organization")


def test_transfer_accepted_then_completed_with_provenance(runtime):
    team = _new_team(runtime, 2)
    landed = _post(runtime, sis_transfer(born=_born(15, 3), team=team))
    task_ref, episode_ref = _one(landed, "Task"), _one(landed, "EpisodeOfCare")
    assert _set_status(runtime, task_ref, "accepted")["status"] == "accepted"
    _set_status(runtime, task_ref, "completed")  # accepted -> completed: a server rule for a transfer
    episode = _get(runtime, episode_ref)
    assert episode["managingOrganization"] == {"reference": team}
    with runtime.work(CTX, write=False) as work:
        [pid] = find_matches(work, "Provenance", [("target", task_ref)], limit=5)
        provenance = orjson.loads(work.uow.current("Provenance", pid).body)
    assert provenance["target"] == [
        {"reference": f"{episode_ref}/_history/{episode['meta']['versionId']}"}, {"reference": task_ref}]
    assert provenance["recorded"] == episode["meta"]["lastUpdated"]
    assert provenance["agent"][0]["who"] == {"reference": team}


def test_every_failed_criterion_is_one_issue_and_nothing_changes(runtime):
    team = _new_team(runtime, 0)
    landed = _post(runtime, sis_transfer(born=_born(19), team=team, placement=None, consent=False))
    task_ref = _one(landed, "Task")
    with pytest.raises(Unprocessable) as caught:
        _set_status(runtime, task_ref, "accepted")
    kinds = [i.diagnostics.split(":")[0] for i in caught.value.issues]
    assert kinds == ["age", "placement", "consent", "capacity"]
    assert all(i.code == "business-rule" for i in caught.value.issues)
    assert _get(runtime, task_ref)["status"] == "requested"


def test_accepted_transfers_hold_places_and_closure_frees_one(runtime):
    team = _new_team(runtime, 1)
    first = _post(runtime, sis_transfer(born=_born(15, 5), team=team))
    second = _post(runtime, sis_transfer(born=_born(14, 6), team=team))
    _set_status(runtime, _one(first, "Task"), "accepted")
    with pytest.raises(Unprocessable, match="capacity"):
        _set_status(runtime, _one(second, "Task"), "in-progress")  # requested -> in-progress is checked too
    _set_status(runtime, _one(first, "Task"), "in-progress")
    _set_status(runtime, _one(first, "Task"), "completed")
    with pytest.raises(Unprocessable, match="capacity"):
        _set_status(runtime, _one(second, "Task"), "accepted")
    episode = _get(runtime, _one(first, "EpisodeOfCare"))
    episode["status"] = "finished"
    episode["period"]["end"] = "2026-11-01"
    episode["extension"][1]["valueCoding"]["code"] = "closure"
    _put(runtime, episode)
    assert _set_status(runtime, _one(second, "Task"), "accepted")["status"] == "accepted"


def test_episode_steps_only_move_forward(runtime):
    team = _new_team(runtime, 5)
    landed = _post(runtime, {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:p", "resource": patient(_born(15)), "request": {"method": "POST", "url": "Patient"}},
        {"resource": integrated_care_episode("urn:uuid:p", team, step="offer"),
         "request": {"method": "POST", "url": "EpisodeOfCare"}}]})
    episode = _get(runtime, _one(landed, "EpisodeOfCare"))
    episode["extension"][1]["valueCoding"]["code"] = "decision"
    with pytest.raises(Conflict, match="'offer'.*'decision'"):
        _put(runtime, episode)
    episode["extension"][1]["valueCoding"]["code"] = "closure"
    with pytest.raises(Unprocessable, match="finished"):
        _put(runtime, episode)
