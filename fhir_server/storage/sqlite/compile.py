"""SearchPlan -> SQL. Every client value travels as a bound parameter; only
names from the fixed tables below are ever spliced into the SQL text."""

from __future__ import annotations

from fhir_server.search.params.date import DateValue, approximate_bounds
from fhir_server.search.params.token import TokenValue
from fhir_server.search.plan import Clause, SearchPlan
from fhir_server.storage.sqlite.schema import INDEX_TABLES

__all__ = ["compile_where", "compile_order", "UnsupportedClause"]

_COLUMNS = {"id": "r.id", "last_updated": "r.last_updated"}


class UnsupportedClause(Exception):
    """A clause this backend cannot compile: never dropped silently."""


def compile_where(plan: SearchPlan) -> tuple[str, list]:
    sql = ["r.type = ?", "r.deleted = 0"]
    args: list = [plan.resource_type]
    for clause in plan.clauses:
        fragment, fragment_args = _clause(plan.resource_type, clause)
        sql.append(fragment)
        args.extend(fragment_args)
    return " AND ".join(sql), args


def compile_order(plan: SearchPlan) -> str:
    keys = [f"{_COLUMNS[k.param.column]} {'DESC' if k.descending else 'ASC'}" for k in plan.sort]
    # a stable tie-break: the primary key
    if not any(k.param.column == "id" for k in plan.sort):
        keys.append("r.id ASC")
    return ", ".join(keys)


def _clause(resource_type: str, clause: Clause) -> tuple[str, list]:
    d = clause.param
    if clause.modifier == "missing":
        if d.column:  # id and lastUpdated are never missing
            return ("0" if clause.values[0] else "1"), []
        table = INDEX_TABLES[d.type]
        sub = f"r.id IN (SELECT x.id FROM {table} x WHERE x.type = ? AND x.param = ?)"
        return (f"NOT {sub}" if clause.values[0] else sub), [resource_type, d.code]
    if d.column:
        column = _COLUMNS[d.column]
        if d.type == "token":
            marks = ", ".join("?" for _ in clause.values)
            op = "NOT IN" if clause.modifier == "not" else "IN"
            return f"{column} {op} ({marks})", [v.code for v in clause.values]
        if d.type == "date":
            parts, args = [], []
            for v in clause.values:
                p, a = _date_predicate(v, column, column)
                parts.append(p)
                args.extend(a)
            return "(" + " OR ".join(parts) + ")", args
        raise UnsupportedClause(f"column parameter {d.code} of type {d.type}")
    if d.type == "token":
        parts, args = [], []
        for v in clause.values:
            p, a = _token_predicate(v)
            parts.append(p)
            args.extend(a)
        sub = f"r.id IN (SELECT x.id FROM idx_token x WHERE x.type = ? AND x.param = ? AND ({' OR '.join(parts)}))"
        if clause.modifier == "not":
            sub = "NOT " + sub
        return sub, [resource_type, d.code, *args]
    if d.type == "date":
        parts, args = [], []
        for v in clause.values:
            p, a = _date_predicate(v, "x.low", "x.high")
            parts.append(p)
            args.extend(a)
        sub = f"r.id IN (SELECT x.id FROM idx_date x WHERE x.type = ? AND x.param = ? AND ({' OR '.join(parts)}))"
        return sub, [resource_type, d.code, *args]
    raise UnsupportedClause(f"parameter type {d.type}")


def _token_predicate(v: TokenValue) -> tuple[str, list]:
    if not v.system_given:
        return "x.code = ?", [v.code]
    if v.system is None:  # |code: the code without a system
        return "(x.system IS NULL AND x.code = ?)", [v.code]
    if v.code is None:  # system|: any code in the system
        return "x.system = ?", [v.system]
    return "(x.system = ? AND x.code = ?)", [v.system, v.code]


def _date_predicate(v: DateValue, low: str, high: str) -> tuple[str, list]:
    """Mirror of ``search.params.date.matches`` (R4 search.html#prefix)."""
    p = v.prefix
    if p == "eq":
        return f"({low} >= ? AND {high} <= ?)", [v.low, v.high]
    if p == "ne":
        return f"NOT ({low} >= ? AND {high} <= ?)", [v.low, v.high]
    if p == "gt":
        return f"{high} > ?", [v.high]
    if p == "lt":
        return f"{low} < ?", [v.low]
    if p == "ge":
        return f"({high} > ? OR ({low} >= ? AND {high} <= ?))", [v.high, v.low, v.high]
    if p == "le":
        return f"({low} < ? OR ({low} >= ? AND {high} <= ?))", [v.low, v.low, v.high]
    if p == "sa":
        return f"{low} > ?", [v.high]
    if p == "eb":
        return f"{high} < ?", [v.low]
    a_low, a_high = approximate_bounds(v)
    return f"({low} <= ? AND {high} >= ?)", [a_high, a_low]
