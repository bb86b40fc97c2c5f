"""SearchPlan -> a MongoDB filter document on ``resources`` (sorting: ``sort.py``).

Client text only ever lands in a *value* position of a query filter: every field
name and operator below is a constant of this module, parameter codes are stored
and matched as the value of ``p``, and ``:contains`` escapes its text into a
literal regular expression. No ``$where``, no ``$expr``, no JavaScript.

One clause on an indexed parameter becomes ``{"_idx.<kind>": {"$elemMatch": {p:
code, <value>}}}`` so that the code, system and value match in the same entry;
OR-ed values become ``$or`` of such ``$elemMatch`` (each branch can use the
compound multikey index). Chains and ``_has`` run their inner search first
through the ``FollowUp`` the unit of work supplies (one batched query per
target type, in the same session) and match the referencing entries with ``$in``.
"""

from __future__ import annotations

from typing import Protocol

from fhir_server.errors import FhirError
from fhir_server.search.params.composite import CompositeValue
from fhir_server.search.params.date import DateValue, approximate_bounds
from fhir_server.search.params.number import NumberValue
from fhir_server.search.params.quantity import CANONICAL_SYSTEM, QuantityValue
from fhir_server.search.params.reference import IDENTIFIER_SUFFIX, ReferenceValue
from fhir_server.search.params.string import StringValue
from fhir_server.search.params.token import OF_TYPE_SUFFIX, TextValue, TokenValue, ValueSetValue
from fhir_server.search.params.uri import UriValue
from fhir_server.search.plan import Clause, CompartmentClause, HasClause, SearchPlan
from fhir_server.storage.base import group_by_type

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

_TOP = "\U0010ffff"  # above every character: [prefix, prefix + _TOP) is "starts with"
#: matches no document (an empty ``$in``)
NEVER: dict = {"_id": {"$in": []}}
_NEVER_ENTRY: dict = {"p": {"$in": []}}
#: the resource fields behind the column parameters (_id, _lastUpdated)
COLUMNS = {"id": "i", "last_updated": "lu"}
#: most ids one chain / _has step may hand to the outer query (a 16 MiB command holds ~300,000)
MAX_FOLLOW_UP = 100_000


class UnsupportedClause(Exception):
    """A clause this backend cannot compile: never dropped silently."""


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
    kind, param = d.type, d.code
    if clause.modifier == "identifier":
        kind, param = "token", d.code + IDENTIFIER_SUFFIX
    elif clause.modifier == "of-type":
        param = d.code + OF_TYPE_SUFFIX
    if kind not in _VALUES:
        raise UnsupportedClause(f"parameter type {kind}")
    if clause.modifier == "missing":
        field = "_idx.present"
        return {field: {"$ne": d.code}} if clause.values[0] else {field: d.code}
    if clause.chain is not None:
        return _chain(clause, follow)
    values = [_value(kind, v, clause.modifier) for v in clause.values]
    matched = _elem(kind, param, values)
    return {"$nor": [matched]} if clause.modifier in ("not", "not-in") else matched


def _column_clause(clause: Clause) -> dict:
    field = COLUMNS[clause.param.column]
    if clause.modifier == "missing":  # id and lastUpdated are never missing
        return NEVER if clause.values[0] else {}
    if clause.param.type == "token":
        op = "$nin" if clause.modifier == "not" else "$in"
        return {field: {op: [v.code for v in clause.values]}}
    if clause.param.type == "date":
        return _any([_date(v, field, field) for v in clause.values])
    raise UnsupportedClause(f"column parameter {clause.param.code}")


def _any(alternatives: list[dict]) -> dict:
    return alternatives[0] if len(alternatives) == 1 else {"$or": alternatives}


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
    return _any(branches) if branches else NEVER


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
    return _any(branches) if branches else NEVER


# -- values: conditions on the fields of one entry ---------------------------------


def _all(*terms: tuple[str, str, object]) -> dict:
    """AND of (field, operator, value) terms, merged per field when no operator repeats."""
    out: dict[str, dict] = {}
    for field, op, value in terms:
        ops = out.setdefault(field, {})
        if op in ops:
            return {"$and": [{f: {o: v}} for f, o, v in terms]}
        ops[op] = value
    return {f: (ops["$eq"] if list(ops) == ["$eq"] else ops) for f, ops in out.items()}


def _value(kind: str, v, modifier: str | None) -> dict:
    return _VALUES[kind](v, modifier)


def _token(v, modifier: str | None = None, system: str = "s", code: str = "c") -> dict:
    if isinstance(v, TextValue):
        return _all(("t", "$gte", v.text), ("t", "$lt", v.text + _TOP))
    if isinstance(v, ValueSetValue):
        if not v.codes:
            return _NEVER_ENTRY
        return _any([_token(c, None, system, code) for c in v.codes])
    if not isinstance(v, TokenValue):
        raise UnsupportedClause(f"token value {v!r}")
    if not v.system_given:
        return {code: v.code}
    if v.system is None:  # |code: the code without a system
        return {system: None, code: v.code}
    if v.code is None:  # system|: any code in the system
        return {system: v.system}
    return {system: v.system, code: v.code}


def _string(v: StringValue, modifier: str | None, normalized: str = "n", exact: str = "e") -> dict:
    if modifier == "exact":
        return {exact: v.exact}
    if modifier == "contains":
        return {normalized: {"$regex": literal_regex(v.normalized)}}
    return _all((normalized, "$gte", v.normalized), (normalized, "$lt", v.normalized + _TOP))


def literal_regex(text: str) -> str:
    """A regular expression that matches ``text`` literally, anywhere (PCRE and Python re).

    ASCII punctuation is escaped with a backslash, control characters as ``\\xhh``;
    letters, digits and non-ASCII characters stand for themselves.
    """
    out = []
    for ch in text:
        if ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x80 and not ch.isalnum():
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def _date(v: DateValue, low: str = "lo", high: str = "hi") -> dict:
    """Mirror of ``search.params.date.matches`` (R4 search.html#prefix)."""
    p = v.prefix
    eq = ((low, "$gte", v.low), (high, "$lte", v.high))
    if p == "eq":
        return _all(*eq)
    if p == "ne":
        return {"$or": [{low: {"$lt": v.low}}, {high: {"$gt": v.high}}]}
    if p == "gt":
        return {high: {"$gt": v.high}}
    if p == "lt":
        return {low: {"$lt": v.low}}
    if p == "ge":
        return {"$or": [{high: {"$gt": v.high}}, _all(*eq)]}
    if p == "le":
        return {"$or": [{low: {"$lt": v.low}}, _all(*eq)]}
    if p == "sa":
        return {low: {"$gt": v.high}}
    if p == "eb":
        return {high: {"$lt": v.low}}
    a_low, a_high = approximate_bounds(v)
    return _all((low, "$lte", a_high), (high, "$gte", a_low))


def _number(v: NumberValue, low: str = "lo", high: str = "hi") -> dict:
    """Mirror of ``search.params.number.matches``."""
    p = v.prefix
    if p == "eq":
        return _all((low, "$gte", v.low), (high, "$lt", v.high))
    if p == "ne":
        return {"$or": [{low: {"$lt": v.low}}, {high: {"$gte": v.high}}]}
    if p == "gt":
        return {high: {"$gt": v.value}}
    if p == "sa":
        return {low: {"$gt": v.value}}
    if p == "lt":
        return {low: {"$lt": v.value}}
    if p == "eb":
        return {high: {"$lt": v.value}}
    if p == "ge":
        return {high: {"$gte": v.value}}
    if p == "le":
        return {low: {"$lte": v.value}}
    gap = abs(v.value) * 0.1
    return _all((low, "$lte", v.value + gap), (high, "$gte", v.value - gap))


def _quantity(v: QuantityValue, system: str = "s", code: str = "c", low: str = "lo", high: str = "hi") -> dict:
    parts = [_number(v.number, low, high)]
    if v.canonical:  # a UCUM unit: compare in base units, on the canonical entries only
        return {"$and": [*parts, {system: CANONICAL_SYSTEM, code: v.code}]}
    parts.append({system: {"$ne": CANONICAL_SYSTEM}})
    if v.system is not None:
        parts.append({system: v.system})
    if v.code is not None:
        parts.append({code: v.code})
    return parts[0] if len(parts) == 1 else {"$and": parts}


def _uri(v: UriValue, modifier: str | None, field: str = "u") -> dict:
    if modifier == "below":
        return _all((field, "$gte", v.uri), (field, "$lt", v.uri + _TOP))
    if modifier == "above":  # the stored uri is a prefix of the value
        return {field: {"$in": [v.uri[:n] for n in range(1, len(v.uri) + 1)]}}
    return {field: v.uri}


def _reference(v, modifier: str | None) -> dict:
    if isinstance(v, TokenValue):  # :identifier, searched among the tokens
        return _token(v)
    if not isinstance(v, ReferenceValue):
        raise UnsupportedClause(f"reference value {v!r}")
    if v.url is not None:
        return {"url": v.url}
    out = {"ti": v.target_id, "url": None}
    wanted_type = v.target_type or (modifier if modifier not in (None, "missing") else None)
    if wanted_type:
        out["tt"] = wanted_type
    return out


def _composite(v: CompositeValue, modifier: str | None) -> dict:
    parts = []
    for n, part in enumerate(v.parts):
        a, b, low, high = (f"c{n}.a", f"c{n}.b", f"c{n}.lo", f"c{n}.hi")
        if isinstance(part, TokenValue):
            parts.append(_token(part, None, a, b))
        elif isinstance(part, QuantityValue):
            parts.append(_quantity(part, a, b, low, high))
        elif isinstance(part, NumberValue):
            parts.append(_number(part, low, high))
        elif isinstance(part, DateValue):
            parts.append(_date(part, low, high))
        elif isinstance(part, StringValue):
            parts.append(_string(part, None, b, b))
        elif isinstance(part, ReferenceValue):
            parts.append({b: part.target_id or part.url})
        elif isinstance(part, UriValue):
            parts.append({b: part.uri})
        else:
            raise UnsupportedClause(f"composite part {part!r}")
    return {"$and": parts}


_VALUES = {
    "token": _token,
    "string": _string,
    "date": lambda v, m: _date(v),
    "number": lambda v, m: _number(v),
    "quantity": lambda v, m: _quantity(v),
    "uri": _uri,
    "reference": _reference,
    "composite": _composite,
}
