"""Conditions on one ``_idx`` entry, one compiler per search-parameter type, registered by type.

``compile.py`` builds the filter around a clause (``$elemMatch``, ``$or``, chains,
``_has``) and ``sort.py`` the sort stages; both ask ``kind(param_type)`` for the rest:
the condition one parsed value puts on an entry, the condition on a composite's
component, the column parameters (``_id``, ``_lastUpdated``) and the entry field a
sort reads. Adding a type is one ``_register`` call; nothing else switches on the type.

Client text only lands in value positions: field names and operators are constants of
this module, ``:contains`` escapes its text into a literal regular expression.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from fhir_server.search.params.composite import CompositeValue
from fhir_server.search.params.date import DateValue, approximate_bounds
from fhir_server.search.params.number import NumberValue
from fhir_server.search.params.quantity import CANONICAL_SYSTEM, QuantityValue
from fhir_server.search.params.reference import ReferenceValue
from fhir_server.search.params.string import StringValue
from fhir_server.search.params.token import TextValue, TokenValue, ValueSetValue
from fhir_server.search.params.uri import UriValue

__all__ = ["Kind", "Component", "UnsupportedClause", "kind", "component_kind", "literal_regex", "any_of", "NEVER"]

_TOP = "\U0010ffff"  # above every character: [prefix, prefix + _TOP) is "starts with"
#: matches no document (an empty ``$in``)
NEVER: dict = {"_id": {"$in": []}}
_NEVER_ENTRY: dict = {"p": {"$in": []}}


class UnsupportedClause(Exception):
    """A clause this backend cannot compile: never dropped silently."""


@dataclass(frozen=True)
class Component:
    """The fields of one composite component: ``c{n}.a``, ``.b``, ``.lo``, ``.hi``."""

    a: str
    b: str
    low: str
    high: str

    @classmethod
    def number(cls, n: int) -> "Component":
        return cls(f"c{n}.a", f"c{n}.b", f"c{n}.lo", f"c{n}.hi")


@dataclass(frozen=True)
class Kind:
    """How one search-parameter type compiles (fields of one entry under ``_idx.<type>``)."""

    #: (value, modifier) -> condition on one entry
    value: Callable[[object, str | None], dict]
    #: parsed value classes this type compiles as a composite component, and how
    parts: tuple[type, ...] = ()
    part: Callable[[object, Component], dict] | None = None
    #: (values, field, negated) -> condition on a resource field (``_id``, ``_lastUpdated``)
    column: Callable[[tuple, str, bool], dict] | None = None
    #: the entry fields ascending / descending sorts read, the value expression per entry
    #: (``$$e`` is the entry), and a further condition on the entries that count
    sort: tuple[str, str] | None = None
    sort_value: Callable[[str], object] = lambda field: f"$$e.{field}"
    sort_rows: dict | None = None


_KINDS: dict[str, Kind] = {}


def _register(name: str, **fields) -> None:
    _KINDS[name] = Kind(**fields)


def kind(param_type: str) -> Kind:
    found = _KINDS.get(param_type)
    if found is None:
        raise UnsupportedClause(f"parameter type {param_type}")
    return found


def component_kind(value) -> Kind:
    for k in _KINDS.values():
        if isinstance(value, k.parts) and k.part is not None:
            return k
    raise UnsupportedClause(f"composite part {value!r}")


def any_of(alternatives: list[dict]) -> dict:
    return alternatives[0] if len(alternatives) == 1 else {"$or": alternatives}


def _all(*terms: tuple[str, str, object]) -> dict:
    """AND of (field, operator, value) terms, merged per field when no operator repeats."""
    out: dict[str, dict] = {}
    for field, op, value in terms:
        ops = out.setdefault(field, {})
        if op in ops:
            return {"$and": [{f: {o: v}} for f, o, v in terms]}
        ops[op] = value
    return {f: (ops["$eq"] if list(ops) == ["$eq"] else ops) for f, ops in out.items()}


# -- token ---------------------------------------------------------------------------


def _token(v, system: str = "s", code: str = "c") -> dict:
    if isinstance(v, TextValue):
        return _all(("t", "$gte", v.text), ("t", "$lt", v.text + _TOP))
    if isinstance(v, ValueSetValue):
        if not v.codes:
            return _NEVER_ENTRY
        return any_of([_token(c, system, code) for c in v.codes])
    if not isinstance(v, TokenValue):
        raise UnsupportedClause(f"token value {v!r}")
    if not v.system_given:
        return {code: v.code}
    if v.system is None:  # |code: the code without a system
        return {system: None, code: v.code}
    if v.code is None:  # system|: any code in the system
        return {system: v.system}
    return {system: v.system, code: v.code}


_register(
    "token", value=lambda v, modifier: _token(v), parts=(TokenValue,), part=lambda v, c: _token(v, c.a, c.b),
    column=lambda values, field, negated: {field: {"$nin" if negated else "$in": [v.code for v in values]}},
    sort=("c", "c"),
)


# -- string --------------------------------------------------------------------------


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


_register(
    "string", value=_string, parts=(StringValue,), part=lambda v, c: _string(v, None, c.b, c.b), sort=("n", "n"),
)


# -- date ----------------------------------------------------------------------------


def _date(v: DateValue, low: str = "lo", high: str = "hi") -> dict:
    """Mirror of ``search.params.date.matches`` (R4 search.html#prefix)."""
    p = v.prefix
    eq = ((low, "$gte", v.low), (high, "$lte", v.high))
    if p == "eq":
        # low <= high in every entry, so low <= v.high too: said, it bounds the index on
        # both sides of low (a day costs the same in any year)
        return _all(*eq, (low, "$lte", v.high))
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


_register(
    "date", value=lambda v, modifier: _date(v), parts=(DateValue,), part=lambda v, c: _date(v, c.low, c.high),
    column=lambda values, field, negated: any_of([_date(v, field, field) for v in values]), sort=("lo", "hi"),
)


# -- number and quantity ---------------------------------------------------------------


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


_register(
    "number", value=lambda v, modifier: _number(v), parts=(NumberValue,),
    part=lambda v, c: _number(v, c.low, c.high), sort=("lo", "hi"),
)


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


_register(
    "quantity", value=lambda v, modifier: _quantity(v), parts=(QuantityValue,),
    part=lambda v, c: _quantity(v, c.a, c.b, c.low, c.high), sort=("lo", "hi"),
    # the base-unit copies of UCUM values are for searching only
    sort_rows={"$ne": ["$$e.s", {"$literal": CANONICAL_SYSTEM}]},
)


# -- uri and reference -----------------------------------------------------------------


def _uri(v: UriValue, modifier: str | None, field: str = "u") -> dict:
    if modifier == "below":
        return _all((field, "$gte", v.uri), (field, "$lt", v.uri + _TOP))
    if modifier == "above":  # the stored uri is a prefix of the value
        return {field: {"$in": [v.uri[:n] for n in range(1, len(v.uri) + 1)]}}
    return {field: v.uri}


_register("uri", value=_uri, parts=(UriValue,), part=lambda v, c: {c.b: v.uri}, sort=("u", "u"))


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


_register(
    "reference", value=_reference, parts=(ReferenceValue,), part=lambda v, c: {c.b: v.target_id or v.url},
    sort=("ti", "ti"), sort_value=lambda field: {"$ifNull": ["$$e.ti", "$$e.url"]},  # ti, else url (as SQLite)
)


# -- composite -------------------------------------------------------------------------


def _composite(v: CompositeValue, modifier: str | None) -> dict:
    return {"$and": [component_kind(part).part(part, Component.number(n)) for n, part in enumerate(v.parts)]}


_register("composite", value=_composite)
