"""engine/hooks.py: the catalogue's promises, point by point (order, what a hook sees,
where it may mutate, that hooks never write themselves)."""

from dataclasses import dataclass

import orjson
import pytest

from fhir_server.engine import Exemption, HookPoint, create, delete, update
from fhir_server.errors import Conflict
from tests.engine.conftest import CTX

POINTS = (HookPoint.BEFORE_VALIDATION, HookPoint.AFTER_VALIDATION, HookPoint.BEFORE_COMMIT, HookPoint.AFTER_COMMIT)


def record(runtime) -> list:
    seen = []
    for point in POINTS:
        runtime.hooks.register(point, lambda e, p=point: seen.append((p, e.method, e.id, e.resource)))
    return seen


def test_points_run_in_the_catalogue_order_and_before_validation_sees_no_body(runtime):
    seen = record(runtime)
    with runtime.work(CTX, write=True) as work:
        rid = create(work, "Patient", {"resourceType": "Patient", "active": True}).version.id
    assert [p for p, *_ in seen] == list(POINTS)
    (_, method, first_id, body), *later = seen
    assert (method, first_id, body) == ("POST", "", None)  # a create's id is not assigned yet
    for _, _, rid_seen, resource in later:
        assert rid_seen == rid and resource["meta"]["versionId"] == "1" and resource["active"] is True
    seen.clear()
    with runtime.work(CTX, write=True) as work:
        update(work, "Patient", rid, {"resourceType": "Patient", "id": rid, "active": False})
    assert seen[0][1:] == ("PUT", rid, None)


def test_a_delete_passes_before_and_after_commit_only(runtime):
    with runtime.work(CTX, write=True) as work:
        rid = create(work, "Patient", {"resourceType": "Patient"}).version.id
    seen = record(runtime)
    with runtime.work(CTX, write=True) as work:
        delete(work, "Patient", rid)
    assert [(p, m, r) for p, m, _, r in seen] == [
        (HookPoint.BEFORE_COMMIT, "DELETE", None), (HookPoint.AFTER_COMMIT, "DELETE", None)]


def stored_body(runtime, rid: str) -> dict:
    with runtime.work(CTX, write=False) as work:
        return orjson.loads(work.uow.current("Patient", rid).body)


def test_after_validation_may_set_server_owned_parts(runtime):
    def tag(event):
        event.resource["meta"]["tag"] = [{"system": "urn:test", "code": "server"}]

    runtime.hooks.register(HookPoint.AFTER_VALIDATION, tag)
    with runtime.work(CTX, write=True) as work:
        outcome = create(work, "Patient", {"resourceType": "Patient"})
    assert stored_body(runtime, outcome.version.id)["meta"]["tag"] == [{"system": "urn:test", "code": "server"}]
    assert orjson.loads(outcome.version.body) == outcome.resource


def test_what_is_stored_is_fixed_before_before_commit(runtime):
    """A BEFORE_COMMIT hook may not mutate; were one to, neither storage nor the index changes."""
    runtime.hooks.register(HookPoint.BEFORE_COMMIT, lambda e: e.resource.update(active=True))
    with runtime.work(CTX, write=True) as work:
        outcome = create(work, "Patient", {"resourceType": "Patient", "active": False})
    assert stored_body(runtime, outcome.version.id)["active"] is False
    assert orjson.loads(outcome.version.body)["active"] is False


@pytest.mark.parametrize("point", [HookPoint.AFTER_VALIDATION, HookPoint.BEFORE_COMMIT])
def test_a_hook_that_writes_is_a_programming_error(runtime, point):
    def writes(event):
        if event.resource_type == "Patient":
            create(event.work, "Basic", {"resourceType": "Basic", "code": {"text": "x"}})

    runtime.hooks.register(point, writes)
    with pytest.raises(RuntimeError, match="hooks defer writes"):
        with runtime.work(CTX, write=True) as work:
            create(work, "Patient", {"resourceType": "Patient"})
    with runtime.work(CTX, write=False) as work:
        assert work.uow.statistics() == {} or all(n == (0, 0) for n in work.uow.statistics().values())


@dataclass(frozen=True)
class MayDeactivate(Exemption):
    patient_id: str


def test_an_exemption_granted_after_validation_is_seen_before_commit(runtime):
    def check(event):
        if event.resource.get("active") is False and not event.work.exempt(MayDeactivate(event.id)):
            raise Conflict("no deactivation")

    def grant(event):
        if event.resource.get("deceasedBoolean"):
            event.work.grant(MayDeactivate(event.id, granted_by="test"))

    runtime.hooks.register(HookPoint.BEFORE_COMMIT, check)
    runtime.hooks.register(HookPoint.AFTER_VALIDATION, grant)  # registered later, runs earlier
    with runtime.work(CTX, write=True) as work:
        create(work, "Patient", {"resourceType": "Patient", "active": False, "deceasedBoolean": True})
    with pytest.raises(Conflict):
        with runtime.work(CTX, write=True) as work:
            create(work, "Patient", {"resourceType": "Patient", "active": False})


def test_exemptions_compare_by_value_not_by_who_granted_them():
    assert MayDeactivate("p", granted_by="a") == MayDeactivate("p", granted_by="b")
    assert MayDeactivate("p") != MayDeactivate("q")
