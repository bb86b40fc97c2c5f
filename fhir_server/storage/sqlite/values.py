"""SQL conditions on index rows, one compiler per search-parameter type, registered by type.

``compile.py`` builds the query around a clause (subqueries, chains, ``_has``) and asks
``kind(param_type)`` for the rest: the index table, the condition one parsed value puts
on a row, the condition on a composite's component columns, the column parameters
(``_id``, ``_lastUpdated``), what sorting reads and what ``:missing`` also counts.
Adding a type is one ``_register`` call; nothing else switches on the type.

Every client value travels as a bound parameter (``Sql.bind``); only names from the
fixed tables of this module and ``schema.py`` are spliced into the SQL text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from fhir_server.search.params.composite import CompositeValue
from fhir_server.search.params.date import DateValue, approximate_bounds
from fhir_server.search.params.number import NumberValue
from fhir_server.search.params.quantity import CANONICAL_SYSTEM, QuantityValue
from fhir_server.search.params.reference import IDENTIFIER_SUFFIX, ReferenceValue
from fhir_server.search.params.string import StringValue
from fhir_server.search.params.token import TextValue, TokenValue, ValueSetValue
from fhir_server.search.params.uri import UriValue
from fhir_server.storage.sqlite.schema import INDEX_TABLES, NO_HASH, micros

__all__ = ["Sql", "Kind", "Component", "UnsupportedClause", "kind", "component_kind", "micro_date"]

TOP = "\U0010ffff"  # above every character: [prefix, prefix + TOP) is "starts with"


class UnsupportedClause(Exception):
    """A clause this backend cannot compile: never dropped silently."""


class Sql:
    """Collects SQL fragments and their bound arguments in order. ``pids`` resolves the
    interned ids of parameters (``storage.sqlite.params.ParamIds``), ``keys`` hashes token
    and reference values (``schema.Keys``); ``missed`` records that a parameter had no id
    (the store may have been told of it by another process since: ``ParamIds.refresh``)."""

    def __init__(self, pids=None, keys=None) -> None:
        self.args: list = []
        self._aliases = 0
        self.pids = pids
        self.keys = keys
        self.missed = False

    def pid(self, resource_type: str, code: str) -> int | None:
        found = self.pids.get(resource_type, code)
        if found is None:
            self.missed = True
        return found

    def pids_of(self, code: str, types) -> list[int]:
        found = self.pids.of_code(code, types)
        if not found:
            self.missed = True
        return found

    def child(self) -> "Sql":
        """A fragment with its own arguments (the planner orders fragments itself);
        aliases stay unique across fragments. Fold it back with ``adopt``."""
        child = Sql(self.pids, self.keys)
        child._aliases = self._aliases
        return child

    def adopt(self, child: "Sql") -> None:
        self._aliases = max(self._aliases, child._aliases)
        self.missed = self.missed or child.missed

    def alias(self) -> str:
        self._aliases += 1
        return f"r{self._aliases}"

    def bind(self, *values) -> str:
        self.args.extend(values)
        return ", ".join("?" for _ in values)


@dataclass(frozen=True)
class Component:
    """The idx_composite columns of one component: ``c{n}_a``, ``_b``, ``_low``, ``_high``."""

    a: str
    b: str
    low: str
    high: str

    @classmethod
    def number(cls, n: int) -> "Component":
        return cls(f"x.c{n}_a", f"x.c{n}_b", f"x.c{n}_low", f"x.c{n}_high")


@dataclass(frozen=True)
class Kind:
    """How one search-parameter type compiles (the fields are SQL over index row ``x``)."""

    table: str
    #: (sql, value, modifier) -> condition on a row of ``table``
    value: Callable[[Sql, object, str | None], str]
    #: parsed value classes this type compiles as a composite component, and how
    parts: tuple[type, ...] = ()
    part: Callable[[Sql, object, Component], str] | None = None
    #: (sql, values, column, negated) -> condition on a resource column (``_id``, ``_lastUpdated``)
    column: Callable[[Sql, tuple, str, bool], str] | None = None
    #: what ascending / descending sorts take the MIN / MAX of, and which rows count
    sort: tuple[str, str] | None = None
    sort_rows: Callable[[Sql], str] | None = None
    #: a parameter suffix whose rows in another table also make the parameter present
    missing_also: tuple[str, str] | None = None


_KINDS: dict[str, Kind] = {}


def _register(name: str, **fields) -> None:
    _KINDS[name] = Kind(INDEX_TABLES[name], **fields)


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


# -- token ---------------------------------------------------------------------------


def token(sql: Sql, v) -> str:
    """A token value on idx_token's hashes (``hcode``, ``hsys``)."""
    if isinstance(v, TextValue):
        return f"(x.text >= {sql.bind(v.text)} AND x.text < {sql.bind(v.text + TOP)})"
    if isinstance(v, ValueSetValue):
        if not v.codes:
            return "0"
        return "(" + " OR ".join(token(sql, c) for c in v.codes) + ")"
    if not isinstance(v, TokenValue):
        raise UnsupportedClause(f"token value {v!r}")
    if not v.system_given:
        return f"x.hcode = {sql.bind(sql.keys(v.code))}"
    if v.system is None:  # |code: the code without a system
        return f"(x.hcode = {sql.bind(sql.keys(v.code))} AND x.hsys = {sql.bind(NO_HASH)})"
    if v.code is None:  # system|: any code in the system
        return f"x.hsys = {sql.bind(sql.keys(v.system))}"
    return f"(x.hcode = {sql.bind(sql.keys(v.code))} AND x.hsys = {sql.bind(sql.keys(v.system))})"


def component_token(sql: Sql, v, system: str, code: str) -> str:
    """A token value on a composite's text columns."""
    if not isinstance(v, TokenValue):
        raise UnsupportedClause(f"token value {v!r}")
    if not v.system_given:
        return f"{code} = {sql.bind(v.code)}"
    if v.system is None:
        return f"({system} IS NULL AND {code} = {sql.bind(v.code)})"
    if v.code is None:
        return f"{system} = {sql.bind(v.system)}"
    return f"({system} = {sql.bind(v.system)} AND {code} = {sql.bind(v.code)})"


def _token_column(sql: Sql, values: tuple, column: str, negated: bool) -> str:
    return f"{column} {'NOT IN' if negated else 'IN'} ({sql.bind(*[v.code for v in values])})"


_register(
    "token", value=lambda sql, v, modifier: token(sql, v), parts=(TokenValue,),
    part=lambda sql, v, c: component_token(sql, v, c.a, c.b), column=_token_column, sort=("x.code", "x.code"),
)


# -- string --------------------------------------------------------------------------


def _string(sql: Sql, v: StringValue, modifier: str | None, normalized: str, exact: str) -> str:
    if modifier == "exact":
        return f"{exact} = {sql.bind(v.exact)}"
    if modifier == "contains":
        return f"instr({normalized}, {sql.bind(v.normalized)}) > 0"
    return f"({normalized} >= {sql.bind(v.normalized)} AND {normalized} < {sql.bind(v.normalized + TOP)})"


_register(
    "string", value=lambda sql, v, modifier: _string(sql, v, modifier, "x.normalized", "x.exact"),
    parts=(StringValue,), part=lambda sql, v, c: _string(sql, v, None, c.b, c.b),
    sort=("x.normalized", "x.normalized"),
)


# -- date ----------------------------------------------------------------------------


def date(sql: Sql, v: DateValue, low: str = "x.low", high: str = "x.high", as_micros: bool = True) -> str:
    """Mirror of ``search.params.date.matches`` (R4 search.html#prefix). idx_date holds
    integer microseconds (``as_micros``); the resource's ``last_updated`` column and a
    composite's date components hold the instant text."""
    if as_micros:
        v = _micro_value(v)
    p = v.prefix
    if p == "eq":
        return f"({low} >= {sql.bind(v.low)} AND {high} <= {sql.bind(v.high)})"
    if p == "ne":
        return f"NOT ({low} >= {sql.bind(v.low)} AND {high} <= {sql.bind(v.high)})"
    if p == "gt":
        return f"{high} > {sql.bind(v.high)}"
    if p == "lt":
        return f"{low} < {sql.bind(v.low)}"
    if p == "ge":
        return f"({high} > {sql.bind(v.high)} OR ({low} >= {sql.bind(v.low)} AND {high} <= {sql.bind(v.high)}))"
    if p == "le":
        return f"({low} < {sql.bind(v.low)} OR ({low} >= {sql.bind(v.low)} AND {high} <= {sql.bind(v.high)}))"
    if p == "sa":
        return f"{low} > {sql.bind(v.high)}"
    if p == "eb":
        return f"{high} < {sql.bind(v.low)}"
    if as_micros:
        a_low, a_high = approximate_bounds(v.original)
        a_low, a_high = micros(a_low), micros(a_high)
    else:
        a_low, a_high = approximate_bounds(v)
    return f"({low} <= {sql.bind(a_high)} AND {high} >= {sql.bind(a_low)})"


class _MicroDate:
    """A DateValue with its bounds in microseconds (what idx_date holds)."""

    __slots__ = ("prefix", "low", "high", "original")

    def __init__(self, v: DateValue):
        self.prefix, self.low, self.high, self.original = v.prefix, micros(v.low), micros(v.high), v


def micro_date(v):
    """A date search value with its bounds in microseconds (as idx_date holds them)."""
    return v if isinstance(v, _MicroDate) else _MicroDate(v)


_micro_value = micro_date


def _date_column(sql: Sql, values: tuple, column: str, negated: bool) -> str:
    return "(" + " OR ".join(date(sql, v, column, column, as_micros=False) for v in values) + ")"


_register(
    "date", value=lambda sql, v, modifier: date(sql, v), parts=(DateValue,),
    part=lambda sql, v, c: date(sql, v, c.low, c.high, as_micros=False), column=_date_column, sort=("x.low", "x.high"),
)


# -- number and quantity ---------------------------------------------------------------


def _number(sql: Sql, v: NumberValue, low: str = "x.low", high: str = "x.high") -> str:
    """Mirror of ``search.params.number.matches``."""
    p = v.prefix
    if p == "eq":
        return f"({low} >= {sql.bind(v.low)} AND {high} < {sql.bind(v.high)})"
    if p == "ne":
        return f"NOT ({low} >= {sql.bind(v.low)} AND {high} < {sql.bind(v.high)})"
    if p == "gt":
        return f"{high} > {sql.bind(v.value)}"
    if p == "sa":
        return f"{low} > {sql.bind(v.value)}"
    if p == "lt":
        return f"{low} < {sql.bind(v.value)}"
    if p == "eb":
        return f"{high} < {sql.bind(v.value)}"
    if p == "ge":
        return f"{high} >= {sql.bind(v.value)}"
    if p == "le":
        return f"{low} <= {sql.bind(v.value)}"
    gap = abs(v.value) * 0.1
    return f"({low} <= {sql.bind(v.value + gap)} AND {high} >= {sql.bind(v.value - gap)})"


_register(
    "number", value=lambda sql, v, modifier: _number(sql, v), parts=(NumberValue,),
    part=lambda sql, v, c: _number(sql, v, c.low, c.high), sort=("x.low", "x.high"),
)


def _quantity(sql: Sql, v: QuantityValue, system: str = "x.system", code: str = "x.code",
              low: str = "x.low", high: str = "x.high") -> str:
    parts = [_number(sql, v.number, low, high)]
    if v.canonical:  # a UCUM unit: compare in base units, on the canonical rows only
        parts.append(f"{system} = {sql.bind(CANONICAL_SYSTEM)} AND {code} = {sql.bind(v.code)}")
        return "(" + " AND ".join(parts) + ")"
    parts.append(f"{system} IS NOT {sql.bind(CANONICAL_SYSTEM)}")
    if v.system is not None:
        parts.append(f"{system} = {sql.bind(v.system)}")
    if v.code is not None:
        parts.append(f"{code} = {sql.bind(v.code)}")
    return "(" + " AND ".join(parts) + ")"


_register(
    "quantity", value=lambda sql, v, modifier: _quantity(sql, v), parts=(QuantityValue,),
    part=lambda sql, v, c: _quantity(sql, v, c.a, c.b, c.low, c.high), sort=("x.low", "x.high"),
    # the base-unit copies of UCUM quantities are for searching only
    sort_rows=lambda sql: f" AND x.system IS NOT {sql.bind(CANONICAL_SYSTEM)}",
)


# -- uri and reference -----------------------------------------------------------------


def _uri(sql: Sql, v: UriValue, modifier: str | None, column: str = "x.uri") -> str:
    if modifier == "below":
        return f"({column} >= {sql.bind(v.uri)} AND {column} < {sql.bind(v.uri + TOP)})"
    if modifier == "above":
        return f"substr({sql.bind(v.uri)}, 1, length({column})) = {column}"
    return f"{column} = {sql.bind(v.uri)}"


_register(
    "uri", value=_uri, parts=(UriValue,), part=lambda sql, v, c: f"{c.b} = {sql.bind(v.uri)}",
    sort=("x.uri", "x.uri"),
)


def _reference(sql: Sql, v, modifier: str | None) -> str:
    if isinstance(v, TokenValue):  # :identifier, searched in the token table
        return token(sql, v)
    if not isinstance(v, ReferenceValue):
        raise UnsupportedClause(f"reference value {v!r}")
    if v.url is not None:
        return f"x.htarget = {sql.bind(sql.keys.target(None, None, v.url))}"
    wanted_type = v.target_type or (modifier if modifier not in (None, "missing") else None)
    if wanted_type:
        return f"x.htarget = {sql.bind(sql.keys.target(wanted_type, v.target_id, None))}"
    # an id without a type: the target's type is unknown, so is its hash
    return f"(x.target_id = {sql.bind(v.target_id)} AND x.url IS NULL)"


_register(
    "reference", value=_reference, parts=(ReferenceValue,),
    part=lambda sql, v, c: f"({c.b} = {sql.bind(v.target_id or v.url)})",
    sort=("COALESCE(x.target_id, x.url)", "COALESCE(x.target_id, x.url)"),
    # a Reference with only an identifier is present too (indexed as a token)
    missing_also=(INDEX_TABLES["token"], IDENTIFIER_SUFFIX),
)


# -- composite -------------------------------------------------------------------------


def _composite(sql: Sql, v: CompositeValue, modifier: str | None) -> str:
    parts = [component_kind(part).part(sql, part, Component.number(n)) for n, part in enumerate(v.parts)]
    return "(" + " AND ".join(parts) + ")"


_register("composite", value=_composite)
