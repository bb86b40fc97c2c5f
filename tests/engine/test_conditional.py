"""engine/conditional.py: the one resolver of write targets (single interactions and
Bundle entries use the same function; tests/integration covers both over HTTP)."""

import pytest

from fhir_server.engine import create, resolve_target
from fhir_server.errors import BadRequest, Conflict, NotFound, PreconditionFailed
from tests.engine.conftest import CTX

SYS = "urn:test:conditional"


def patient(value: str) -> dict:
    return {"resourceType": "Patient", "identifier": [{"system": SYS, "value": value}]}


@pytest.fixture
def stored(runtime):
    """Patient A (one), B twice, and p1 that matches neither; their ids by name."""
    ids = {}
    with runtime.work(CTX, write=True) as work:
        for name, value in (("a", "A"), ("b1", "B2"), ("b2", "B2"), ("p1", "P")):
            ids[name] = create(work, "Patient", patient(value)).version.id
    return ids


def resolve(runtime, method, **kwargs):
    with runtime.work(CTX, write=False) as work:
        return resolve_target(work, method, "Patient", **kwargs)


def test_post_without_criteria_creates_under_a_new_id(runtime):
    target = resolve(runtime, "POST")
    assert target.action == "create" and target.id and not target.conditional


def test_post_if_none_exist(runtime, stored):
    target = resolve(runtime, "POST", if_none_exist=f"identifier={SYS}|A")
    assert (target.action, target.id) == ("existing", stored["a"])
    assert resolve(runtime, "POST", if_none_exist=f"identifier={SYS}|none").action == "create"
    with pytest.raises(PreconditionFailed):
        resolve(runtime, "POST", if_none_exist=f"identifier={SYS}|B2")


@pytest.mark.parametrize("method, action", [("PUT", "update"), ("PATCH", "patch"), ("DELETE", "delete")])
def test_an_id_is_the_target(runtime, method, action):
    target = resolve(runtime, method, id="x1")
    assert (target.action, target.id, target.conditional) == (action, "x1", False)


def test_conditional_update_one_match(runtime, stored):
    target = resolve(runtime, "PUT", query=f"identifier={SYS}|A")
    assert (target.action, target.id, target.conditional) == ("update", stored["a"], True)
    assert resolve(runtime, "PUT", query=f"identifier={SYS}|A", body_id=stored["a"]).id == stored["a"]


def test_conditional_update_body_id_of_another_resource_than_the_match_is_400(runtime, stored):
    with pytest.raises(BadRequest, match="differs"):
        resolve(runtime, "PUT", query=f"identifier={SYS}|A", body_id=stored["p1"])


def test_conditional_update_no_match(runtime, stored):
    assert resolve(runtime, "PUT", query=f"identifier={SYS}|none").action == "create"
    target = resolve(runtime, "PUT", query=f"identifier={SYS}|none", body_id="fresh-id")
    assert (target.action, target.id) == ("update", "fresh-id")


def test_conditional_update_never_overwrites_an_existing_resource_it_did_not_match(runtime, stored):
    with pytest.raises(Conflict, match=f"Patient/{stored['p1']} exists but does not match"):
        resolve(runtime, "PUT", query=f"identifier={SYS}|none", body_id=stored["p1"])


def test_conditional_update_several_matches_is_412(runtime, stored):
    with pytest.raises(PreconditionFailed):
        resolve(runtime, "PUT", query=f"identifier={SYS}|B2")


@pytest.mark.parametrize("body_id", [5, "no spaces allowed", {"id": "x"}])
def test_conditional_update_with_an_invalid_body_id_is_400(runtime, stored, body_id):
    with pytest.raises(BadRequest, match="Invalid id"):
        resolve(runtime, "PUT", query=f"identifier={SYS}|A", body_id=body_id)


def test_conditional_patch_and_delete(runtime, stored):
    assert resolve(runtime, "PATCH", query=f"identifier={SYS}|A").id == stored["a"]
    with pytest.raises(NotFound):
        resolve(runtime, "PATCH", query=f"identifier={SYS}|none")
    assert resolve(runtime, "DELETE", query=f"identifier={SYS}|none").action == "none"
    assert resolve(runtime, "DELETE", query=f"identifier={SYS}|A").id == stored["a"]
    with pytest.raises(PreconditionFailed):
        resolve(runtime, "DELETE", query=f"identifier={SYS}|B2")
