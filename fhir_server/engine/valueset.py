"""``:in`` / ``:not-in``: expand a ValueSet held in this server into token values.

A local ValueSet is found by its url among the stored ValueSet resources and
those of the implementation guide (profiles/); its
``compose.include`` lists concepts or whole CodeSystems (also stored here).
Anything else is a clear error rather than a silently empty match.
"""

from __future__ import annotations

import dataclasses

import orjson

from fhir_server.conformance.ig import ig_directory, ig_resources
from fhir_server.engine.work import Work
from fhir_server.errors import InvalidSearch
from fhir_server.search.params.token import TokenValue, ValueSetValue
from fhir_server.search.plan import Chain, Clause, HasClause, SearchPlan, parse_search

__all__ = ["expand_value_sets"]


def _find(work: Work, resource_type: str, url: str) -> dict | None:
    """A ValueSet or CodeSystem by url: stored ones first, then the implementation guide's."""
    plan = parse_search(resource_type, [("url", url)], work.runtime.registry)
    result = work.uow.search(plan, with_total=False, limit=1)
    versions = work.uow.load(resource_type, result.ids)
    if versions:
        return orjson.loads(versions[0].body)
    for resource in ig_resources(ig_directory(work.runtime.profiles_dir)):
        if resource.get("resourceType") == resource_type and resource.get("url") == url:
            return resource
    return None


def _concepts(concepts: list) -> list[str]:
    out = []
    for c in concepts or ():
        if isinstance(c, dict) and c.get("code"):
            out.append(c["code"])
            out.extend(_concepts(c.get("concept")))
    return out


def _expand(work: Work, url: str, seen: frozenset[str] = frozenset()) -> tuple[TokenValue, ...]:
    if url in seen:
        raise InvalidSearch(f"ValueSet {url} includes itself")
    vs = _find(work, "ValueSet", url.split("|", 1)[0])
    if vs is None:
        raise InvalidSearch(f"Unknown ValueSet {url!r}: :in and :not-in work with ValueSets held by this server")
    values: list[TokenValue] = []
    expansion = (vs.get("expansion") or {}).get("contains")
    if expansion:
        return tuple(TokenValue(c.get("system"), c["code"], True) for c in expansion if c.get("code"))
    for include in (vs.get("compose") or {}).get("include") or ():
        system = include.get("system")
        if include.get("concept"):
            values.extend(TokenValue(system, c["code"], True) for c in include["concept"] if c.get("code"))
        elif system:
            cs = _find(work, "CodeSystem", system)
            if cs is None:
                raise InvalidSearch(f"ValueSet {url} includes CodeSystem {system}, which this server does not hold")
            values.extend(TokenValue(system, code, True) for code in _concepts(cs.get("concept")))
        for nested in include.get("valueSet") or ():
            values.extend(_expand(work, nested, seen | {url}))
    excluded = {
        (x.get("system"), c.get("code"))
        for x in (vs.get("compose") or {}).get("exclude") or ()
        for c in x.get("concept") or ()
    }
    return tuple(v for v in values if (v.system, v.code) not in excluded)


def _rewrite(work: Work, f):
    if isinstance(f, HasClause):
        return dataclasses.replace(f, inner=_rewrite(work, f.inner))
    if not isinstance(f, Clause):
        return f
    if f.chain is not None:
        return dataclasses.replace(f, chain=Chain(tuple((t, _rewrite(work, inner)) for t, inner in f.chain.by_type)))
    if f.modifier in ("in", "not-in"):
        return dataclasses.replace(
            f, values=tuple(ValueSetValue(v.url, _expand(work, v.url)) for v in f.values)
        )
    return f


def expand_value_sets(work: Work, plan: SearchPlan) -> SearchPlan:
    return dataclasses.replace(plan, clauses=tuple(_rewrite(work, f) for f in plan.clauses))
