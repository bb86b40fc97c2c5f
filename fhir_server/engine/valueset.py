"""``:in`` / ``:not-in``: expand a ValueSet held by this server into token values.

The ValueSet is found by its url among the stored ValueSets, then the implementation
guide's, and expanded by the server's one expansion
(``conformance.terminology.value_set_concepts``, as ``$expand`` does): filters,
nested ``include.valueSet`` (intersected with the include's system part), ``exclude``,
stored and guide CodeSystems. A ValueSet this server does not hold, or one whose
expansion needs something it does not hold, is a 400 rather than a silently empty
match (R4 search.html#modifiers: the value set "must be resolvable by the server").
"""

from __future__ import annotations

import dataclasses

from fhir_server.conformance.terminology import Resolve, value_set_concepts
from fhir_server.engine.terminology import resolver
from fhir_server.engine.work import Work
from fhir_server.errors import InvalidSearch, Unprocessable
from fhir_server.search.params.token import TokenValue, ValueSetValue
from fhir_server.search.plan import Chain, Clause, HasClause, SearchPlan

__all__ = ["expand_value_sets"]


def _expand(resolve: Resolve, canonical: str) -> tuple[TokenValue, ...]:
    url, _, version = canonical.partition("|")
    vs = resolve("ValueSet", url, version or None)
    if vs is None:
        raise InvalidSearch(f"Unknown ValueSet {canonical!r}: :in and :not-in work with ValueSets held by this server")
    try:
        concepts = value_set_concepts(vs, resolve)
    except Unprocessable as exc:
        raise InvalidSearch(f"ValueSet {canonical!r} cannot be expanded here: {exc.message}") from None
    return tuple(TokenValue(c.system, c.code, True) for c in concepts)


def _rewrite(resolve: Resolve, f):
    if isinstance(f, HasClause):
        return dataclasses.replace(f, inner=_rewrite(resolve, f.inner))
    if not isinstance(f, Clause):
        return f
    if f.chain is not None:
        by_type = tuple((t, _rewrite(resolve, inner)) for t, inner in f.chain.by_type)
        return dataclasses.replace(f, chain=Chain(by_type))
    if f.modifier in ("in", "not-in"):
        return dataclasses.replace(f, values=tuple(ValueSetValue(v.url, _expand(resolve, v.url)) for v in f.values))
    return f


def expand_value_sets(work: Work, plan: SearchPlan) -> SearchPlan:
    resolve = resolver(work)
    return dataclasses.replace(plan, clauses=tuple(_rewrite(resolve, f) for f in plan.clauses))
