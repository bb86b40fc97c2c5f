"""SearchPlan -> a MongoDB filter document on ``resources`` (sorting: ``sort.py``).

Client text only ever lands in a *value* position of a query filter: every field
name and operator below is a constant of this module, parameter codes are stored
and matched as the value of ``p``, and ``:contains`` escapes its text into a
literal regular expression. No ``$where``, no ``$expr``, no JavaScript.

One clause on an indexed parameter becomes ``{"_idx.<kind>": {"$elemMatch": {p:
code, <value>}}}`` so that the code, system and value match in the same entry;
OR-ed values become ``$or`` of such ``$elemMatch`` (each branch can use the
compound multikey index); the condition a value of each parameter type puts on an
entry is registered by type in ``values.py``. Chains and ``_has`` run their inner search first
through the ``FollowUp`` the unit of work supplies (one batched query per
target type, in the same session) and match the referencing entries with ``$in``.
"""

from __future__ import annotations

from typing import Protocol

from fhir_server.errors import FhirError
from fhir_server.search.params.reference import IDENTIFIER_SUFFIX
from fhir_server.search.params.token import OF_TYPE_SUFFIX
from fhir_server.search.plan import AnyOf, Clause, CompartmentClause, HasClause, SearchPlan, TypeIn
from fhir_server.storage.base import group_by_type
from fhir_server.storage.mongo.combos import narrowing
from fhir_server.storage.mongo.values import NEVER, UnsupportedClause, any_of, kind, literal_regex

__all__ = [
    "FollowUp",
    "UnsupportedClause",
    "FollowUpTooBroad",
    "MAX_FOLLOW_UP",
    "compile_filter",
    "COLUMNS",
    "NEVER",
    "literal_regex",
]

#: the resource fields behind the column parameters (_id, _lastUpdated)
COLUMNS = {"id": "i", "last_updated": "lu"}
#: most ids one chain / _has step may hand to the outer query (a 16 MiB command holds ~300,000)
MAX_FOLLOW_UP = 100_000


class FollowUpTooBroad(FhirError):
    """A chain or ``_has`` whose inner search matches too many resources to pass on."""

    status = 422
    code = "too-costly"


class FollowUp(Protocol):
    """The queries a chain or ``_has`` needs, run by the unit of work (same session)."""

    def ids(self, resource_type: str, filter: dict) -> list[str]:
        """Ids of current resources of ``resource_type`` matching ``filter``."""

    def referenced(self, source_type: str, filter: dict, param: str, target_type: str | None) -> list[tuple[str, str]]:
        """Distinct local (type, id) targets of ``param`` in the matching ``source_type`` resources."""


# -- filters -------------------------------------------------------------------------


def compile_filter(plan: SearchPlan, follow: FollowUp) -> dict:
    """The filter document on ``resources`` that selects the plan's matches."""
    base = _type_filter(plan.resource_type, plan.types)
    conditions = [_filter(f, plan.resource_type, follow) for f in plan.clauses]
    # what every match also meets on the derived fields (combos.py): the combination's
    # key, a bound on the sort date, so that their indexes can bound the search
    conditions += narrowing(plan)
    return _with(base, conditions)


def _type_filter(resource_type: str | None, types: tuple[str, ...] = ()) -> dict:
    out: dict = {}
    if resource_type is not None:
        out["t"] = resource_type
    elif types:
        out["t"] = {"$in": list(types)}
    out["del"] = False
    return out


def _with(base: dict, conditions: list[dict]) -> dict:
    if conditions:
        return {**base, "$and": conditions}
    return base


def _filter(f, rtype: str | None, follow: FollowUp) -> dict:
    if isinstance(f, AnyOf):
        groups = [_with({}, [_filter(g, rtype, follow) for g in group]) for group in f.groups]
        return any_of(groups) if groups else NEVER
    if isinstance(f, TypeIn):
        return {"t": {"$nin" if f.exclude else "$in": list(f.types)}}
    if isinstance(f, HasClause):
        return _has(f, rtype, follow)
    if isinstance(f, CompartmentClause):
        return _compartment(f, rtype)
    return _clause(f, follow)


def _elem(kind: str, param: str, values: list[dict]) -> dict:
    """Some entry of ``kind`` with parameter ``param`` matches one of ``values``."""
    field = f"_idx.{kind}"
    if len(values) == 1:
        return {field: {"$elemMatch": {"p": param, **values[0]}}}
    return {"$or": [{field: {"$elemMatch": {"p": param, **v}}} for v in values]}


def _clause(clause: Clause, follow: FollowUp) -> dict:
    d = clause.param
    if d.column:
        return _column_clause(clause)
    param_type, param = d.type, d.code
    if clause.modifier == "identifier":
        param_type, param = "token", d.code + IDENTIFIER_SUFFIX
    elif clause.modifier == "of-type":
        param = d.code + OF_TYPE_SUFFIX
    compiler = kind(param_type)
    if clause.modifier == "missing":
        field = "_idx.present"
        return {field: {"$ne": d.code}} if clause.values[0] else {field: d.code}
    if clause.chain is not None:
        return _chain(clause, follow)
    values = [compiler.value(v, clause.modifier) for v in clause.values]
    matched = _elem(param_type, param, values)
    return {"$nor": [matched]} if clause.modifier in ("not", "not-in") else matched


def _column_clause(clause: Clause) -> dict:
    field = COLUMNS[clause.param.column]
    if clause.modifier == "missing":  # id and lastUpdated are never missing
        return NEVER if clause.values[0] else {}
    compiler = kind(clause.param.type)
    if compiler.column is None:
        raise UnsupportedClause(f"column parameter {clause.param.code}")
    return compiler.column(clause.values, field, clause.modifier == "not")


def _chain(clause: Clause, follow: FollowUp) -> dict:
    branches = []
    for target_type, inner in clause.chain.by_type:
        inner_filter = _with(_type_filter(target_type), [_filter(inner, target_type, follow)])
        ids = follow.ids(target_type, inner_filter)
        _check_size(ids, clause.param.code)
        if ids:
            branches.append({"tt": target_type, "ti": {"$in": ids}, "url": None})
    if not branches:
        return NEVER
    return _elem("reference", clause.param.code, branches)


def _has(f: HasClause, rtype: str | None, follow: FollowUp) -> dict:
    inner_filter = _with(_type_filter(f.source_type), [_filter(f.inner, f.source_type, follow)])
    targets = follow.referenced(f.source_type, inner_filter, f.reference.code, rtype)
    _check_size(targets, f"_has:{f.source_type}:{f.reference.code}")
    by_type = group_by_type(targets)
    if rtype is not None:
        ids = by_type.get(rtype)
        return {"i": {"$in": ids}} if ids else NEVER
    branches = [{"t": t, "i": {"$in": ids}} for t, ids in by_type.items()]
    return any_of(branches) if branches else NEVER


def _check_size(found: list, name: str) -> None:
    if len(found) > MAX_FOLLOW_UP:
        raise FollowUpTooBroad(
            f"The inner search of '{name}' matches more than {MAX_FOLLOW_UP} resources; "
            "add criteria that narrow it"
        )


def _compartment(f: CompartmentClause, rtype: str | None) -> dict:
    branches = []
    types = [rtype] if rtype is not None else [t for t, _ in f.params_by_type]
    for t in types:
        codes = f.params_for(t)
        if not codes:
            continue
        entry = {"p": {"$in": list(codes)}, "tt": f.compartment_type, "ti": f.compartment_id, "url": None}
        branches.append({"t": t, "_idx.reference": {"$elemMatch": entry}})
    if f.include_owner:
        branches.append({"t": f.compartment_type, "i": f.compartment_id})
    return any_of(branches) if branches else NEVER
