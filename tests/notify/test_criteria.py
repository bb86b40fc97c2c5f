"""Filter criteria (backport-filter-criteria): only the topic's parameters, literal
references, compiled into the same filters a search would use."""

from __future__ import annotations

import pytest

from fhir_server.errors import Unprocessable
from fhir_server.notify.criteria import compile_criteria, named_references, parse_criterion
from fhir_server.notify.topics import topic_by_code
from fhir_server.search import SearchRegistry

TASKS = topic_by_code("task-assigned")
TRIAGE = topic_by_code("triage-completed")


def test_with_and_without_the_type():
    assert parse_criterion(TASKS, "Task?owner=Organization/a").pairs == (("owner", "Organization/a"),)
    assert parse_criterion(TASKS, "owner=Organization/a,Organization/b&code=s|c").pairs == (
        ("owner", "Organization/a,Organization/b"), ("code", "s|c"))


@pytest.mark.parametrize("text,why", [
    ("", "non-empty"),
    (None, "non-empty"),
    ("Communication?recipient=Organization/a", "is about Task"),
    ("Task?status=requested", "can be filtered by owner, code only"),
    ("Task?owner:missing=true", "no modifiers"),
    ("Task?owner=", "has no value"),
    ("Task?owner=https://elsewhere.example/Organization/a", "literal references"),
    ("Task?", "names no parameter"),
])
def test_refused(text, why):
    with pytest.raises(Unprocessable) as caught:
        parse_criterion(TASKS, text)
    assert why in caught.value.message


def test_compiled_and_named():
    registry = SearchRegistry.from_spec()
    criteria = (parse_criterion(TASKS, "owner=Organization/a,Organization/b"),
                parse_criterion(TASKS, "owner=Organization/a"))
    assert len(compile_criteria(TASKS, criteria, registry)) == 2  # AND of the two
    assert named_references(TASKS, criteria) == [("Organization", "a"), ("Organization", "b")]
    outcome = parse_criterion(TRIAGE, "triage-outcome=https://evi-fhir.org/fhir/CodeSystem/evi-triage-outcome|advice")
    assert named_references(TRIAGE, (outcome,)) == []  # a token names nothing


def test_a_parameter_the_server_does_not_know_is_422():
    # triage-outcome is a parameter of the guide: without it, the registry cannot run it
    outcome = parse_criterion(TRIAGE, "triage-outcome=s|c")
    with pytest.raises(Unprocessable):
        compile_criteria(TRIAGE, (outcome,), SearchRegistry.from_spec())
