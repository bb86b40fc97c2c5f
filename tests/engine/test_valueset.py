""":in / :not-in expand with the server's one expansion (the one $expand uses): filters,
nested include.valueSet intersected with the include's system, exclude, stored and guide
terminology. The first two cases are what the former :in expander got wrong (it took
the whole CodeSystem, ignoring the filter, and added a nested ValueSet to the include
instead of intersecting with it)."""

from __future__ import annotations

import orjson
import pytest

from fhir_server.app import build_runtime
from fhir_server.engine import RequestContext, create
from fhir_server.conformance.terminology import value_set_concepts
from fhir_server.engine.search import plan_search
from fhir_server.engine.terminology import resolver
from fhir_server.errors import InvalidSearch
from fhir_server.settings import Settings

CS = "http://example.org/fhir/CodeSystem/colours"
EX = "http://example.org/fhir/ValueSet/"
EVI = "https://evi-fhir.org/fhir/"

COLOURS = {
    "resourceType": "CodeSystem", "url": CS, "status": "active", "content": "complete",
    "property": [{"code": "warm", "type": "boolean"}],
    "concept": [
        {"code": "red", "property": [{"code": "warm", "valueBoolean": True}],
         "concept": [{"code": "crimson", "property": [{"code": "warm", "valueBoolean": True}]},
                     {"code": "scarlet", "property": [{"code": "warm", "valueBoolean": True}]}]},
        {"code": "blue", "concept": [{"code": "navy"}]},
        {"code": "green"},
    ],
}


def _vs(name: str, compose: dict) -> dict:
    return {"resourceType": "ValueSet", "url": EX + name, "status": "active", "compose": compose}


VALUE_SETS = [
    _vs("reds", {"include": [{"system": CS, "filter": [{"property": "concept", "op": "is-a", "value": "red"}]}]}),
    _vs("below-blue", {"include": [{"system": CS, "filter": [{"property": "concept", "op": "descendent-of",
                                                                "value": "blue"}]}]}),
    _vs("warm", {"include": [{"system": CS, "filter": [{"property": "warm", "op": "=", "value": "true"}]}]}),
    _vs("r-words", {"include": [{"system": CS, "filter": [{"property": "code", "op": "regex", "value": "r.*"}]}]}),
    _vs("with-property", {"include": [{"system": CS, "filter": [{"property": "warm", "op": "exists",
                                                                   "value": "true"}]}]}),
    _vs("picked", {"include": [{"system": CS, "filter": [{"property": "concept", "op": "in",
                                                           "value": "green,navy"}]}]}),
    # the whole system, narrowed by a nested ValueSet: the intersection (R4 valueset.html#compose)
    _vs("reds-again", {"include": [{"system": CS, "valueSet": [EX + "reds"]}]}),
    _vs("reds-but-scarlet", {"include": [{"valueSet": [EX + "reds"]}],
                             "exclude": [{"system": CS, "concept": [{"code": "scarlet"}]}]}),
    _vs("broken", {"include": [{"valueSet": [EX + "nowhere"]}]}),
]


@pytest.fixture(scope="module")
def runtime():
    rt = build_runtime(Settings(storage="sqlite://:memory:"))
    ctx = RequestContext(base_url="http://test/fhir")
    with rt.work(ctx, write=True) as work:
        for resource in (COLOURS, *VALUE_SETS):
            create(work, resource["resourceType"], dict(resource))
        for colour in ("red", "crimson", "scarlet", "blue", "navy", "green"):
            create(work, "Observation", {"resourceType": "Observation", "id": colour, "status": "final",
                                         "code": {"coding": [{"system": CS, "code": colour}]}})
    yield rt
    rt.store.close()


def _codes(runtime, params: list[tuple[str, str]]) -> set[str]:
    ctx = RequestContext(base_url="http://test/fhir")
    with runtime.work(ctx, write=False) as work:
        plan = plan_search(work, "Observation", params)
        refs = work.uow.search(plan, with_total=False, limit=100).refs
        found = work.uow.load("Observation", [i for _, i in refs])
    return {orjson.loads(v.body)["code"]["coding"][0]["code"] for v in found}


@pytest.mark.parametrize("name, expected", [
    ("reds", {"red", "crimson", "scarlet"}),          # is-a: the former :in gave every colour
    ("reds-again", {"red", "crimson", "scarlet"}),    # system ∩ nested: the former :in gave every colour
    ("below-blue", {"navy"}),
    ("warm", {"red", "crimson", "scarlet"}),
    ("r-words", {"red"}),
    ("with-property", {"red", "crimson", "scarlet"}),
    ("picked", {"green", "navy"}),
    ("reds-but-scarlet", {"red", "crimson"}),
])
def test_in_and_not_in_follow_the_expansion(runtime, name, expected):
    everything = {"red", "crimson", "scarlet", "blue", "navy", "green"}
    assert _codes(runtime, [("code:in", EX + name)]) == expected
    assert _codes(runtime, [("code:not-in", EX + name)]) == everything - expected


def test_in_agrees_with_expand(runtime):
    ctx = RequestContext(base_url="http://test/fhir")
    with runtime.work(ctx, write=False) as work:
        resolve = resolver(work)
        expanded = {vs["url"]: {c.code for c in value_set_concepts(resolve("ValueSet", vs["url"]), resolve)}
                    for vs in VALUE_SETS[:-1]}
    for url, codes in expanded.items():
        assert _codes(runtime, [("code:in", url)]) == codes, url


def test_unknown_or_unexpandable_value_sets_are_400(runtime):
    with pytest.raises(InvalidSearch, match="Unknown ValueSet"):
        _codes(runtime, [("code:in", EX + "nope")])
    with pytest.raises(InvalidSearch, match="cannot be expanded") as caught:
        _codes(runtime, [("code:not-in", EX + "broken")])
    assert caught.value.status == 400 and EX + "nowhere" in caught.value.message


def test_the_guides_terminology_backs_the_store(tmp_path):
    """A ValueSet of the guide that is not stored (here: a store filled without a guide)
    is still found, with the guide's CodeSystem, through the one reader of the guide."""
    (tmp_path / "empty").mkdir()
    rt = build_runtime(Settings(storage="sqlite://:memory:", profiles_dir=str(tmp_path / "empty")))
    ctx = RequestContext(base_url="http://test/fhir")
    outcome = EVI + "CodeSystem/evi-triage-outcome"
    with rt.work(ctx, write=True) as work:
        create(work, "Task", {"resourceType": "Task", "status": "requested", "intent": "order",
                              "code": {"coding": [{"system": outcome, "code": "advice"}]}})
        create(work, "Task", {"resourceType": "Task", "status": "requested", "intent": "order",
                              "code": {"coding": [{"system": outcome, "code": "no-such-outcome"}]}})
    with rt.work(ctx, write=False) as work:
        params = [("code:in", EVI + "ValueSet/evi-triage-outcome")]
        with pytest.raises(InvalidSearch, match="Unknown ValueSet"):
            plan_search(work, "Task", params)  # neither stored nor in this (empty) guide
        rt.profiles_dir = None  # now the product's guide, still not stored
        plan = plan_search(work, "Task", params)
        assert len(work.uow.search(plan, with_total=False).ids) == 1
    rt.store.close()
