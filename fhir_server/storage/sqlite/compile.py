"""SearchPlan -> SQL. Every client value travels as a bound parameter; only names
from fixed tables (index tables, columns, aliases made here) are spliced into the
SQL text. A clause this backend cannot compile raises ``UnsupportedClause``.

Each filter becomes ``<alias>.id IN (SELECT x.id FROM idx_<kind> x WHERE x.type = ?
AND x.param = ? AND (<value> OR <value>))`` so SQLite drives the query from the
(type, param, value) index; chains and ``_has`` nest the same form.
"""

from __future__ import annotations

from fhir_server.search.params.composite import CompositeValue
from fhir_server.search.params.date import DateValue, approximate_bounds
from fhir_server.search.params.number import NumberValue
from fhir_server.search.params.quantity import CANONICAL_SYSTEM, QuantityValue
from fhir_server.search.params.reference import IDENTIFIER_SUFFIX, ReferenceValue
from fhir_server.search.params.string import StringValue
from fhir_server.search.params.token import OF_TYPE_SUFFIX, TextValue, TokenValue, ValueSetValue
from fhir_server.search.params.uri import UriValue
from fhir_server.search.plan import Clause, CompartmentClause, HasClause, SearchPlan, SortKey
from fhir_server.storage.sqlite.schema import INDEX_TABLES

__all__ = ["compile_where", "compile_order", "UnsupportedClause"]

_COLUMNS = {"id": "id", "last_updated": "last_updated"}
_TOP = "\U0010ffff"  # above every character: [prefix, prefix + _TOP) is "starts with"


class UnsupportedClause(Exception):
    """A clause this backend cannot compile: never dropped silently."""


class _Sql:
    """Collects SQL fragments and their bound arguments in order."""

    def __init__(self) -> None:
        self.args: list = []
        self._aliases = 0

    def alias(self) -> str:
        self._aliases += 1
        return f"r{self._aliases}"

    def bind(self, *values) -> str:
        self.args.extend(values)
        return ", ".join("?" for _ in values)


def compile_where(plan: SearchPlan) -> tuple[str, list]:
    sql = _Sql()
    parts = ["r.deleted = 0"]
    if plan.resource_type is not None:
        parts.insert(0, f"r.type = {sql.bind(plan.resource_type)}")
    elif plan.types:
        parts.insert(0, f"r.type IN ({sql.bind(*plan.types)})")
    for group in _merge_single_valued(plan.clauses):
        if isinstance(group, list):
            parts.append(_merged(sql, group, plan.resource_type))
        else:
            parts.append(_filter(sql, group, plan.resource_type, "r"))
    return " AND ".join(parts), sql.args


def _merge_single_valued(clauses) -> list:
    """AND-ed range clauses on one single-valued parameter go into one subquery:
    ``authored=ge…&authored=lt…`` as two IN-lists made SQLite intersect two halves
    of the index (benchmarks/search.py); on one value both conditions must hold anyway."""
    out: list = []
    groups: dict[str, list] = {}
    for f in clauses:
        if isinstance(f, Clause) and f.single_valued:
            if f.param.code in groups:
                groups[f.param.code].append(f)
                continue
            groups[f.param.code] = [f]
            out.append(groups[f.param.code])
        else:
            out.append(f)
    return [g[0] if isinstance(g, list) and len(g) == 1 else g for g in out]


def _merged(sql: _Sql, clauses: list, rtype: str | None) -> str:
    first = clauses[0]
    kind = first.param.type
    left, type_condition = _owner(sql, "r", rtype)
    where = f"{type_condition} AND x.param = {sql.bind(first.param.code)}"
    conditions = [
        "(" + " OR ".join(_value(sql, kind, v, None) for v in clause.values) + ")" for clause in clauses
    ]
    return f"{left} IN (SELECT {_select(rtype)} FROM {INDEX_TABLES[kind]} x WHERE {where} AND {' AND '.join(conditions)})"


def compile_order(plan: SearchPlan) -> tuple[str, list]:
    sql = _Sql()
    keys = []
    for key in plan.sort:
        direction = "DESC" if key.descending else "ASC"
        # resources without a value come last in either direction; the expression
        # appears twice, so it is built (and its parameter bound) twice
        keys.append(f"({_sort_expression(sql, key)}) IS NULL, {_sort_expression(sql, key)} {direction}")
    if not any(k.param.column == "id" for k in plan.sort):
        keys.append("r.type ASC, r.id ASC")  # a stable tie-break: the primary key
    return ", ".join(keys), sql.args


# -- filters -------------------------------------------------------------------------


def _owner(sql: _Sql, alias: str, rtype: str | None) -> tuple[str, str]:
    """(left side, type condition) tying index rows x to the resource ``alias``."""
    if rtype is None:
        return f"({alias}.type, {alias}.id)", f"x.type = {alias}.type"
    return f"{alias}.id", f"x.type = {sql.bind(rtype)}"


def _filter(sql: _Sql, f, rtype: str | None, alias: str) -> str:
    if isinstance(f, HasClause):
        return _has(sql, f, rtype, alias)
    if isinstance(f, CompartmentClause):
        return _compartment(sql, f, rtype, alias)
    return _clause(sql, f, rtype, alias)


def _select(rtype: str | None) -> str:
    return "x.type, x.id" if rtype is None else "x.id"


def _clause(sql: _Sql, clause: Clause, rtype: str | None, alias: str) -> str:
    d = clause.param
    if d.column:
        return _column_clause(sql, clause, alias)
    kind, param = d.type, d.code
    if clause.modifier == "identifier":
        kind, param = "token", d.code + IDENTIFIER_SUFFIX
    elif clause.modifier == "of-type":
        param = d.code + OF_TYPE_SUFFIX
    table = INDEX_TABLES.get(kind)
    if table is None:
        raise UnsupportedClause(f"parameter type {kind}")
    if clause.chain is not None:
        return _chain(sql, clause, rtype, alias)
    left, type_condition = _owner(sql, alias, rtype)  # binds: nothing may be bound before it
    if clause.modifier == "missing":
        sub = f"{left} IN (SELECT {_select(rtype)} FROM {table} x WHERE {type_condition} AND x.param = {sql.bind(param)})"
        if kind == "reference":  # a Reference with only an identifier is present too
            sub = (
                f"({sub} OR {left} IN (SELECT {_select(rtype)} FROM idx_token x WHERE "
                f"{_owner(sql, alias, rtype)[1]} AND x.param = {sql.bind(param + IDENTIFIER_SUFFIX)}))"
            )
        return f"NOT {sub}" if clause.values[0] else sub
    where = f"{type_condition} AND x.param = {sql.bind(param)}"
    predicate = " OR ".join(_value(sql, kind, v, clause.modifier) for v in clause.values)
    sub = f"{left} IN (SELECT {_select(rtype)} FROM {table} x WHERE {where} AND ({predicate}))"
    return f"NOT {sub}" if clause.modifier in ("not", "not-in") else sub


def _column_clause(sql: _Sql, clause: Clause, alias: str) -> str:
    column = f"{alias}.{_COLUMNS[clause.param.column]}"
    if clause.modifier == "missing":  # id and lastUpdated are never missing
        return "0" if clause.values[0] else "1"
    if clause.param.type == "token":
        op = "NOT IN" if clause.modifier == "not" else "IN"
        return f"{column} {op} ({sql.bind(*[v.code for v in clause.values])})"
    if clause.param.type == "date":
        return "(" + " OR ".join(_date(sql, v, column, column) for v in clause.values) + ")"
    raise UnsupportedClause(f"column parameter {clause.param.code}")


def _chain(sql: _Sql, clause: Clause, rtype: str | None, alias: str) -> str:
    """One UNION ALL branch per target type: an OR across types made SQLite scan
    every reference row of the parameter (benchmarks/search.py)."""
    left = f"({alias}.type, {alias}.id)" if rtype is None else f"{alias}.id"
    branches = []
    for target_type, inner in clause.chain.by_type:
        a = sql.alias()
        # bind in the order the placeholders appear: the head first, then the inner filter
        type_condition = f"x.type = {alias}.type" if rtype is None else f"x.type = {sql.bind(rtype)}"
        head = (
            f"SELECT {_select(rtype)} FROM idx_reference x WHERE {type_condition} "
            f"AND x.param = {sql.bind(clause.param.code)} AND x.target_type = {sql.bind(target_type)} "
            f"AND x.url IS NULL AND x.target_id IN (SELECT {a}.id FROM resource {a} "
            f"WHERE {a}.type = {sql.bind(target_type)} AND {a}.deleted = 0 AND "
        )
        branches.append(head + _filter(sql, inner, target_type, a) + ")")
    return f"{left} IN (" + " UNION ALL ".join(branches) + ")"


def _has(sql: _Sql, f: HasClause, rtype: str | None, alias: str) -> str:
    a = sql.alias()
    left = f"({alias}.type, {alias}.id)" if rtype is None else f"{alias}.id"
    select = "x.target_type, x.target_id" if rtype is None else "x.target_id"
    # bind in the order the placeholders appear (source, param, target type, source, inner)
    head = f"{left} IN (SELECT {select} FROM idx_reference x WHERE x.type = {sql.bind(f.source_type)} "
    head += f"AND x.param = {sql.bind(f.reference.code)} AND "
    head += f"x.target_type = {alias}.type" if rtype is None else f"x.target_type = {sql.bind(rtype)}"
    head += (
        f" AND x.url IS NULL AND x.id IN (SELECT {a}.id FROM resource {a} "
        f"WHERE {a}.type = {sql.bind(f.source_type)} AND {a}.deleted = 0 AND "
    )
    return head + _filter(sql, f.inner, f.source_type, a) + "))"


def _compartment(sql: _Sql, f: CompartmentClause, rtype: str | None, alias: str) -> str:
    parts = []
    types = [rtype] if rtype is not None else [t for t, _ in f.params_by_type]
    for t in types:
        codes = f.params_for(t)
        if not codes:
            continue
        parts.append(
            f"({alias}.type = {sql.bind(t)} AND {alias}.id IN (SELECT x.id FROM idx_reference x WHERE x.type = {sql.bind(t)} "
            f"AND x.param IN ({sql.bind(*codes)}) AND x.target_type = {sql.bind(f.compartment_type)} "
            f"AND x.target_id = {sql.bind(f.compartment_id)} AND x.url IS NULL))"
        )
    if f.include_owner:
        parts.append(f"({alias}.type = {sql.bind(f.compartment_type)} AND {alias}.id = {sql.bind(f.compartment_id)})")
    return "(" + (" OR ".join(parts) or "0") + ")"


# -- values --------------------------------------------------------------------------


def _value(sql: _Sql, kind: str, v, modifier: str | None) -> str:
    if kind == "token":
        return _token(sql, v, "x.system", "x.code")
    if kind == "string":
        return _string(sql, v, modifier, "x.normalized", "x.exact")
    if kind == "date":
        return _date(sql, v, "x.low", "x.high")
    if kind == "number":
        return _number(sql, v, "x.low", "x.high")
    if kind == "quantity":
        return _quantity(sql, v, "x.system", "x.code", "x.low", "x.high")
    if kind == "uri":
        return _uri(sql, v, modifier, "x.uri")
    if kind == "reference":
        return _reference(sql, v, modifier, "x.target_type", "x.target_id", "x.url")
    if kind == "composite":
        return _composite(sql, v)
    raise UnsupportedClause(f"parameter type {kind}")


def _token(sql: _Sql, v, system: str, code: str) -> str:
    if isinstance(v, TextValue):
        return f"(x.text >= {sql.bind(v.text)} AND x.text < {sql.bind(v.text + _TOP)})"
    if isinstance(v, ValueSetValue):
        if not v.codes:
            return "0"
        return "(" + " OR ".join(_token(sql, c, system, code) for c in v.codes) + ")"
    if not isinstance(v, TokenValue):
        raise UnsupportedClause(f"token value {v!r}")
    if not v.system_given:
        return f"{code} = {sql.bind(v.code)}"
    if v.system is None:  # |code: the code without a system
        return f"({system} IS NULL AND {code} = {sql.bind(v.code)})"
    if v.code is None:  # system|: any code in the system
        return f"{system} = {sql.bind(v.system)}"
    return f"({system} = {sql.bind(v.system)} AND {code} = {sql.bind(v.code)})"


def _string(sql: _Sql, v: StringValue, modifier: str | None, normalized: str, exact: str) -> str:
    if modifier == "exact":
        return f"{exact} = {sql.bind(v.exact)}"
    if modifier == "contains":
        return f"instr({normalized}, {sql.bind(v.normalized)}) > 0"
    return f"({normalized} >= {sql.bind(v.normalized)} AND {normalized} < {sql.bind(v.normalized + _TOP)})"


def _date(sql: _Sql, v: DateValue, low: str, high: str) -> str:
    """Mirror of ``search.params.date.matches`` (R4 search.html#prefix)."""
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
    a_low, a_high = approximate_bounds(v)
    return f"({low} <= {sql.bind(a_high)} AND {high} >= {sql.bind(a_low)})"


def _number(sql: _Sql, v: NumberValue, low: str, high: str) -> str:
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


def _quantity(sql: _Sql, v: QuantityValue, system: str, code: str, low: str, high: str) -> str:
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


def _uri(sql: _Sql, v: UriValue, modifier: str | None, column: str) -> str:
    if modifier == "below":
        return f"({column} >= {sql.bind(v.uri)} AND {column} < {sql.bind(v.uri + _TOP)})"
    if modifier == "above":
        return f"substr({sql.bind(v.uri)}, 1, length({column})) = {column}"
    return f"{column} = {sql.bind(v.uri)}"


def _reference(sql: _Sql, v, modifier: str | None, ttype: str, tid: str, url: str) -> str:
    if isinstance(v, TokenValue):  # :identifier, searched in the token table
        return _token(sql, v, "x.system", "x.code")
    if not isinstance(v, ReferenceValue):
        raise UnsupportedClause(f"reference value {v!r}")
    if v.url is not None:
        return f"{url} = {sql.bind(v.url)}"
    parts = [f"{tid} = {sql.bind(v.target_id)}", f"{url} IS NULL"]
    wanted_type = v.target_type or (modifier if modifier not in (None, "missing") else None)
    if wanted_type:
        parts.append(f"{ttype} = {sql.bind(wanted_type)}")
    return "(" + " AND ".join(parts) + ")"


def _composite(sql: _Sql, v: CompositeValue) -> str:
    parts = []
    for i, part in enumerate(v.parts):
        a, b, low, high = (f"x.c{i}_a", f"x.c{i}_b", f"x.c{i}_low", f"x.c{i}_high")
        if isinstance(part, TokenValue):
            parts.append(_token(sql, part, a, b))
        elif isinstance(part, QuantityValue):
            parts.append(_quantity(sql, part, a, b, low, high))
        elif isinstance(part, NumberValue):
            parts.append(_number(sql, part, low, high))
        elif isinstance(part, DateValue):
            parts.append(_date(sql, part, low, high))
        elif isinstance(part, StringValue):
            parts.append(_string(sql, part, None, b, b))
        elif isinstance(part, ReferenceValue):
            parts.append(f"({b} = {sql.bind(part.target_id or part.url)})")
        elif isinstance(part, UriValue):
            parts.append(f"{b} = {sql.bind(part.uri)}")
        else:
            raise UnsupportedClause(f"composite part {part!r}")
    return "(" + " AND ".join(parts) + ")"


# -- sorting -------------------------------------------------------------------------

_SORT_COLUMNS = {
    "token": ("code", "code"),
    "string": ("normalized", "normalized"),
    "date": ("low", "high"),
    "number": ("low", "high"),
    "quantity": ("low", "high"),
    "uri": ("uri", "uri"),
    "reference": ("COALESCE(x.target_id, x.url)", "COALESCE(x.target_id, x.url)"),
}


def _sort_expression(sql: _Sql, key: SortKey) -> str:
    d = key.param
    if d.column:
        return f"r.{_COLUMNS[d.column]}"
    columns = _SORT_COLUMNS.get(d.type)
    if columns is None:
        raise UnsupportedClause(f"sorting by {d.type}")
    column = columns[1] if key.descending else columns[0]
    column = column if column.startswith("COALESCE") else f"x.{column}"
    # ascending sorts by the smallest value a resource has, descending by the largest
    aggregate = "MAX" if key.descending else "MIN"
    expression = (
        f"(SELECT {aggregate}({column}) FROM {INDEX_TABLES[d.type]} x "
        f"WHERE x.type = r.type AND x.id = r.id AND x.param = {sql.bind(d.code)}"
    )
    if d.type == "quantity":  # the base-unit copies of UCUM quantities are for searching only
        expression += f" AND x.system IS NOT {sql.bind(CANONICAL_SYSTEM)}"
    return expression + ")"
