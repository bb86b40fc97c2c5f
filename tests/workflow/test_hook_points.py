"""Every rule keeps the hook catalogue's promises (engine/hooks.py), over the EVI
scenarios: no hook sees an unvalidated body, and none mutates where the catalogue says
it may not (only AFTER_VALIDATION may)."""

from __future__ import annotations

import copy
import json
from datetime import date

import orjson
import pytest

from fhir_server.app import build_runtime
from fhir_server.engine import HookPoint, Hooks, RequestContext, delete, find_matches, process_bundle, update
from fhir_server.model import validate_resource
from fhir_server.settings import Settings
from fhir_server.storage import open_store
from fhir_server.workflow import triage
from tests.support.evi import CS, EXAMPLES, SD, TEST_REGION, scenario, sis_transfer

CTX = RequestContext(base_url="http://test/fhir")


class Calls:
    def __init__(self) -> None:
        self.by_point: dict[HookPoint, int] = {p: 0 for p in HookPoint}
        self.validated: set[tuple[int, HookPoint]] = set()


def checked(point: HookPoint, fn, calls: Calls):
    def run(event):
        calls.by_point[point] += 1
        if point is HookPoint.BEFORE_VALIDATION or event.resource is None:
            assert event.resource is None, f"{fn.__qualname__} got a body at {point}"
            assert point is HookPoint.BEFORE_VALIDATION or event.method == "DELETE"
            return fn(event)
        if (id(event), point) not in calls.validated:  # what the hooks of this point see is valid R4
            validate_resource(copy.deepcopy(event.resource))
            calls.validated.add((id(event), point))
        before = orjson.dumps(event.resource)
        fn(event)
        if point is not HookPoint.AFTER_VALIDATION:
            assert orjson.dumps(event.resource) == before, f"{fn.__qualname__} mutated the resource at {point}"

    return run


@pytest.fixture
def runtime():
    rt = build_runtime(Settings(region_file=str(TEST_REGION)), store=open_store("sqlite://:memory:"))
    calls = Calls()
    hooks = Hooks()
    for point in HookPoint:
        for fn in rt.hooks.registered(point):
            hooks.register(point, checked(point, fn, calls))
    rt.hooks = hooks
    rt.services["calls"] = calls
    yield rt
    rt.store.close()


def _transaction(runtime, entries) -> dict:
    return process_bundle(runtime, CTX, {"resourceType": "Bundle", "type": "transaction", "entry": entries})


def _landed(answer: dict, rtype: str) -> list[str]:
    return ["/".join(e["response"]["location"].split("/")[:2]) for e in answer["entry"]
            if e["response"].get("location", "").startswith(rtype + "/")]


def _current(runtime, ref: str) -> dict:
    with runtime.work(CTX, write=False) as work:
        return orjson.loads(work.uow.current(*ref.split("/")).body)


def _put(runtime, ref: str, resource: dict) -> None:
    with runtime.work(CTX, write=True) as work:
        update(work, *ref.split("/"), resource)


def test_every_rule_honours_the_catalogue(runtime):
    examples = [json.loads(p.read_text()) for p in sorted((EXAMPLES / "valid").glob("*.json"))]
    _transaction(runtime, [{"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
                           for r in examples])
    for name, born in (("self-referral-guardian", date(2012, 3, 4)), ("placed-child-phoning", date(2011, 5, 6)),
                       ("school-health-referral-npf", date(2013, 7, 8)), ("sip-initiation", None)):
        process_bundle(runtime, CTX, scenario(name, born=born))

    # $triage of an intake Task
    answer = process_bundle(runtime, CTX, scenario("self-referral-guardian", born=date(2012, 9, 10)))
    [sr] = _landed(answer, "ServiceRequest")
    with runtime.work(CTX, write=False) as work:
        [task_id] = find_matches(work, "Task", [("focus", sr), ("code", f"{CS}evi-task-type|intake")])
    triage(runtime, CTX, task_id, {"resourceType": "Parameters", "parameter": [
        {"name": "outcome", "valueCoding": {"system": f"{CS}evi-triage-outcome", "code": "advice"}}]})

    # a care transfer accepted and completed (the direct jump), then the episode at step 7 and closed
    answer = process_bundle(runtime, CTX, sis_transfer(born=date(2011, 11, 12)))
    [transfer], [episode_ref] = _landed(answer, "Task"), _landed(answer, "EpisodeOfCare")
    for status in ("accepted", "completed"):
        _put(runtime, transfer, {**_current(runtime, transfer), "status": status})
    episode = _current(runtime, episode_ref)
    for step in ("long-term-collaboration", "closure"):
        for ext in episode["extension"]:
            if ext["url"] == SD + "evi-integrated-care-step":
                ext["valueCoding"] = {"system": CS + "evi-integrated-care-step", "code": step}
        if step == "closure":
            episode.update(status="finished", period={**episode["period"], "end": "2026-12-01"})
            episode["extension"].append({"url": SD + "evi-receiving-unit",
                                         "valueReference": {"reference": "Organization/bup-uddevalla"}})
        _put(runtime, episode_ref, episode)
        episode = _current(runtime, episode_ref)
    assert "closure" in json.dumps(episode)

    with runtime.work(CTX, write=True) as work:
        delete(work, *transfer.split("/"))
    calls = runtime.services["calls"]
    assert all(calls.by_point[p] > 0 for p in HookPoint), calls.by_point
