"""A subscription's filter criteria (``backport-filter-criteria``): ``Task?owner=Organization/x``.

Each criterion is ``[Type?]param=value[&param=value...]`` over the topic's resource type;
a subscriber may use only the parameters its topic allows (``topics.py``), without
modifiers, and a reference parameter's values must be literal ``Type/id`` references.
All criteria of a subscription must hold (AND); comma-separated values OR, as in a search.

A criterion is compiled once into the search filters of ``search.plan``; an event is
recorded when the store finds its focus with ``_id`` AND those filters AND the owner's
access policy (``events.py``), so filters mean exactly what the same search would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from fhir_server.errors import FhirError, Unprocessable
from fhir_server.notify.topics import Topic
from fhir_server.search import SearchRegistry, parse_search
from fhir_server.search.escaping import split_unescaped, unescape
from fhir_server.search.plan import Filter

__all__ = ["Criterion", "parse_criterion", "compile_criteria", "named_references", "MAX_CRITERIA"]

#: filter criteria one subscription may carry (each one more AND in a query per event)
MAX_CRITERIA = 10
_LITERAL = re.compile(r"^[A-Z][A-Za-z]{1,63}/[A-Za-z0-9\-.]{1,64}$")


@dataclass(frozen=True)
class Criterion:
    """One criterion: as the client wrote it, and its (param, value) pairs."""

    text: str
    pairs: tuple[tuple[str, str], ...]


def _refuse(text: str, why: str) -> Unprocessable:
    return Unprocessable(f"Filter criterion {text!r}: {why}",
                         expression="Subscription.criteria.extension")


def parse_criterion(topic: Topic, text: object) -> Criterion:
    """The (param, value) pairs of one criterion, checked against the topic (422 otherwise)."""
    if not isinstance(text, str) or not text.strip():
        raise _refuse(str(text), "a filter criterion is a non-empty string such as Task?owner=Organization/x")
    query = text.strip()
    if "?" in query:
        rtype, query = query.split("?", 1)
        if rtype != topic.resource_type:
            raise _refuse(text, f"topic {topic.code} is about {topic.resource_type}, not {rtype or '(none)'}")
    pairs = parse_qsl(query, keep_blank_values=True)
    if not pairs:
        raise _refuse(text, "it names no parameter")
    allowed = ", ".join(f.name for f in topic.filters)
    for name, value in pairs:
        param = topic.filter_param(name)
        if param is None:
            raise _refuse(text, f"topic {topic.code} can be filtered by {allowed} only (no modifiers)")
        if not value:
            raise _refuse(text, f"{name} has no value")
        if param.kind == "reference":
            bad = [v for v in _values(value) if not _LITERAL.match(v)]
            if bad:
                raise _refuse(text, f"{name} takes literal references such as Organization/x, not {bad[0]!r}")
    return Criterion(text, tuple(pairs))


def _values(raw: str) -> list[str]:
    return [unescape(v) for v in split_unescaped(raw, ",")]


def compile_criteria(topic: Topic, criteria: tuple[Criterion, ...], registry: SearchRegistry) -> tuple[Filter, ...]:
    """The search filters the criteria mean (all of them, AND-ed); 422 when the server cannot run one."""
    clauses: list[Filter] = []
    for criterion in criteria:
        try:
            plan = parse_search(topic.resource_type, list(criterion.pairs), registry)
        except FhirError as exc:
            raise _refuse(criterion.text, exc.message) from None
        if plan.unknown:
            raise _refuse(criterion.text, "; ".join(f"{n}: {w}" for n, w in plan.unknown))
        clauses.extend(plan.clauses)
    return tuple(clauses)


def named_references(topic: Topic, criteria: tuple[Criterion, ...]) -> list[tuple[str, str]]:
    """(type, id) of every resource the criteria name (the values of reference parameters)."""
    found: list[tuple[str, str]] = []
    for criterion in criteria:
        for name, raw in criterion.pairs:
            if topic.filter_param(name).kind == "reference":
                found.extend(tuple(v.split("/", 1)) for v in _values(raw))
    return list(dict.fromkeys(found))
