"""Filter criteria judged on the focus itself mean what the same search means."""

from __future__ import annotations

import pytest

from fhir_server.notify.criteria import parse_criterion
from fhir_server.notify.matching import criteria_hold
from fhir_server.notify.topics import topic_by_code
from fhir_server.search import SearchRegistry

BASE = "http://evi.example/fhir"
REGISTRY = SearchRegistry.from_spec()
TASKS = topic_by_code("task-assigned")
TYPE = "https://evi-fhir.org/fhir/CodeSystem/evi-task-type"
TASK = {"resourceType": "Task", "id": "t", "status": "requested", "intent": "order",
        "owner": {"reference": f"{BASE}/Organization/a"},
        "code": {"coding": [{"system": TYPE, "code": "intake"}, {"code": "bare"}]}}


def _hold(*texts: str, resource: dict = TASK, topic=TASKS):
    return criteria_hold(REGISTRY, topic, tuple(parse_criterion(topic, t) for t in texts), resource, BASE)


@pytest.mark.parametrize("texts,expected", [
    (("Task?owner=Organization/a",), True),  # an absolute url to this server is local
    (("Task?owner=Organization/b",), False),
    (("Task?owner=Organization/b,Organization/a",), True),  # values OR
    (("Task?owner=Organization/a", "Task?owner=Organization/b"), False),  # criteria AND
    ((f"Task?code={TYPE}|intake",), True),
    (("Task?code=intake",), True),  # any system
    (("Task?code=other|intake",), False),
    ((f"Task?code={TYPE}|",), True),  # any code of the system
    (("Task?code=|bare",), True),  # no system
    (("Task?code=|intake",), False),
    ((f"Task?owner=Organization/a&code={TYPE}|transfer-care-responsibility",), False),
])
def test_reference_and_token_criteria(texts, expected):
    assert _hold(*texts) is expected


def test_a_reference_to_another_server_is_not_local():
    foreign = {**TASK, "owner": {"reference": "https://elsewhere.example/fhir/Organization/a"}}
    assert _hold("Task?owner=Organization/a", resource=foreign) is False


def test_a_chain_is_left_to_the_store():
    sip = topic_by_code("sip-changed")
    plan = {"resourceType": "CarePlan", "id": "c", "status": "active", "intent": "plan"}
    assert _hold("CarePlan?care-team.participant=Organization/a", resource=plan, topic=sip) is None


def test_no_criteria_hold():
    assert _hold() is True
