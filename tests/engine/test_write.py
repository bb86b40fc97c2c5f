"""engine/write.py: answers are final (what the unit of work committed, after its deferred
rules) and name what server rules did; ``meta`` must be an object."""

from dataclasses import dataclass

import orjson
import pytest

from fhir_server.engine import DeferredRule, HookPoint, create, patch, update
from fhir_server.errors import BadRequest, InvalidResource
from tests.engine.conftest import CTX

TAG = {"system": "urn:test:rule", "code": "seen"}


@dataclass(frozen=True)
class Retag(DeferredRule):
    rule = "test retag"
    once = True
    patient_id: str


@dataclass(frozen=True)
class Note(DeferredRule):
    rule = "test note"
    patient_id: str


def install_rules(runtime) -> None:
    """A Patient write gets a second version with TAG, and a Basic about it."""

    def on_patient(event):
        if event.resource_type != "Patient" or event.resource is None:
            return
        work, pid = event.work, event.id

        def retag():
            current = orjson.loads(work.uow.current("Patient", pid).body)
            if TAG not in (current.get("meta") or {}).get("tag", []):
                current.setdefault("meta", {}).setdefault("tag", []).append(TAG)
                update(work, "Patient", pid, current)

        def note():
            create(work, "Basic", {"resourceType": "Basic", "code": {"text": "note"},
                                   "subject": {"reference": f"Patient/{pid}"}})

        work.defer(Retag(pid), retag)
        work.defer(Note(pid), note)

    runtime.hooks.register(HookPoint.BEFORE_COMMIT, on_patient)


def test_a_create_answers_the_version_its_rules_left(runtime):
    install_rules(runtime)
    with runtime.work(CTX, write=True) as work:
        outcome = create(work, "Patient", {"resourceType": "Patient", "active": True})
    assert outcome.status == 201
    assert outcome.version.version_id == 2  # the rule's version, not the create's
    assert TAG in outcome.resource["meta"]["tag"]
    with runtime.work(CTX, write=False) as work:
        current = work.uow.current("Patient", outcome.version.id)
    assert (current.version_id, current.body) == (outcome.version.version_id, outcome.version.body)


def test_side_effects_name_the_rule_the_action_and_the_final_version(runtime):
    install_rules(runtime)
    with runtime.work(CTX, write=True) as work:
        outcome = create(work, "Patient", {"resourceType": "Patient"})
    pid = outcome.version.id
    effects = [(e.rule, e.action, e.version.resource_type, e.version.version_id) for e in outcome.side_effects]
    assert effects == [("test retag", "updated", "Patient", 2), ("test note", "created", "Basic", 1)]
    assert outcome.side_effects[0].describe() == f"Server rule 'test retag' updated Patient/{pid}/_history/2"


def test_writes_of_the_request_itself_are_not_side_effects(runtime):
    with runtime.work(CTX, write=True) as work:
        first = create(work, "Patient", {"resourceType": "Patient"})
        second = create(work, "Basic", {"resourceType": "Basic", "code": {"text": "x"}})
    assert first.side_effects == [] and second.side_effects == []


def test_rules_deferred_by_a_rule_write_are_attributed_to_the_request_write(runtime):
    """A rule's write runs the hooks again; what they defer still belongs to the original write."""
    install_rules(runtime)

    def on_basic(event):
        if event.resource_type == "Basic" and event.resource["code"]["text"] == "note":
            work = event.work
            work.defer(Note("basic-" + event.id), lambda: create(work, "Basic", {"resourceType": "Basic",
                                                                                  "code": {"text": "nested"}}))

    runtime.hooks.register(HookPoint.BEFORE_COMMIT, on_basic)
    with runtime.work(CTX, write=True) as work:
        outcome = create(work, "Patient", {"resourceType": "Patient"})
    assert [(e.rule, e.version.resource_type) for e in outcome.side_effects] == [
        ("test retag", "Patient"), ("test note", "Basic"), ("test note", "Basic")]


@pytest.mark.parametrize("meta", ["{}", 5, ["x"]])
def test_meta_that_is_not_an_object_is_400_and_nothing_is_stored(runtime, meta):
    with pytest.raises(BadRequest, match="meta"):
        with runtime.work(CTX, write=True) as work:
            create(work, "Patient", {"resourceType": "Patient", "meta": meta})
    with runtime.work(CTX, write=False) as work:
        assert work.uow.statistics().get("Patient", (0, 0)) == (0, 0)


def _nested(levels: int) -> dict:
    """An extension ``levels`` extensions deep (two JSON levels each)."""
    extension = {"url": "http://x", "valueString": "v"}
    for _ in range(levels - 1):
        extension = {"url": "http://x", "extension": [extension]}
    return extension


def test_every_write_is_held_to_the_runtimes_depth_limit(runtime):
    """Runtime.max_json_depth (Settings.max_json_depth): a PATCH result too, although
    its body was shallow."""
    runtime.max_json_depth = 20
    with runtime.work(CTX, write=True) as work:
        rid = create(work, "Patient", {"resourceType": "Patient", "extension": [_nested(9)]}).version.id  # 19 levels
    with pytest.raises(InvalidResource, match="nested deeper than 20 levels"):
        with runtime.work(CTX, write=True) as work:
            create(work, "Patient", {"resourceType": "Patient", "extension": [_nested(10)]})
    innermost = "/extension/0" * 9
    ops = [{"op": "remove", "path": innermost + "/valueString"},
           {"op": "add", "path": innermost + "/extension", "value": [{"url": "http://y", "valueString": "w"}]}]
    with pytest.raises(InvalidResource, match="nested deeper than 20 levels"):
        with runtime.work(CTX, write=True) as work:
            patch(work, "Patient", rid, ops)
    with runtime.work(CTX, write=False) as work:
        assert work.uow.current("Patient", rid).version_id == 1


def test_a_write_breaking_a_base_invariant_is_400_and_nothing_is_stored(runtime):
    period = {"start": "2026-03-02", "end": "2026-03-01"}
    with pytest.raises(InvalidResource) as info:
        with runtime.work(CTX, write=True) as work:
            create(work, "Patient", {"resourceType": "Patient", "name": [{"family": "x", "period": period}]})
    assert info.value.status == 400
    assert [(i.code, i.expression) for i in info.value.issues] == [("invariant", ("Patient.name[0].period",))]
    assert info.value.issues[0].diagnostics.startswith("per-1: ")
    with runtime.work(CTX, write=False) as work:
        assert work.uow.statistics().get("Patient", (0, 0)) == (0, 0)
