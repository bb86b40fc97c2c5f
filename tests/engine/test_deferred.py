"""engine/deferred.py + Work.defer: deferred rule runs, their de-duplication and order."""

from dataclasses import dataclass

from fhir_server.engine import DeferredRule
from tests.engine.conftest import CTX


@dataclass(frozen=True)
class Refresh(DeferredRule):
    subject: str


@dataclass(frozen=True)
class Once(DeferredRule):
    once = True
    subject: str


def test_runs_are_in_order_and_an_equal_pending_name_is_ignored(runtime):
    ran = []
    with runtime.work(CTX, write=True) as work:
        assert work.defer(Refresh("a"), lambda: ran.append("a1"))
        assert work.defer(Refresh("b"), lambda: ran.append("b"))
        assert not work.defer(Refresh("a"), lambda: ran.append("a2"))  # pending: the first one stands
    assert ran == ["a1", "b"]


def test_a_started_run_may_be_deferred_again_unless_once(runtime):
    ran = []
    with runtime.work(CTX, write=True) as work:

        def first():
            ran.append("refresh")
            assert work.defer(Refresh("a"), lambda: ran.append("refresh again"))  # started: allowed
            assert not work.defer(Once("a"), lambda: ran.append("once again"))  # already ran

        work.defer(Once("a"), lambda: ran.append("once"))
        work.defer(Refresh("a"), first)
    assert ran == ["once", "refresh", "refresh again"]


def test_names_of_different_rules_never_collide(runtime):
    ran = []
    with runtime.work(CTX, write=True) as work:
        work.defer(Refresh("x"), lambda: ran.append("refresh"))
        work.defer(Once("x"), lambda: ran.append("once"))
    assert ran == ["refresh", "once"]


def test_runs_end_with_their_unit_of_work(runtime):
    ran = []
    with runtime.work(CTX, write=True) as work:
        work.defer(Once("a"), lambda: ran.append(1))
    with runtime.work(CTX, write=True) as work:
        assert work.defer(Once("a"), lambda: ran.append(2))
    assert ran == [1, 2]
