"""Tabulation -> one SQL query: the plan's resources, a correlated subquery per column, and
``GROUP BY`` over the columns with ``COUNT(*)`` (``storage/tabulation.py``).

Every column reads index rows through their owner index (type, id, param, ...), so the
cost is a few index probes per counted resource, whatever the size of the store::

    SELECT c0, c1, COUNT(*) FROM (
      SELECT (SELECT MIN(x1.code) FROM idx_token x1
               WHERE x1.type = r.type AND x1.id = r.id AND x1.param = ?) AS c0,
             (SELECT MIN((SELECT MIN(x3.code) FROM idx_token x3 WHERE x3.type = t2.type
                          AND x3.id = t2.id AND x3.param = ?))
               FROM idx_reference a2 JOIN resource t2 ON t2.type = a2.target_type
                    AND t2.id = a2.target_id AND t2.deleted = 0
               WHERE a2.type = r.type AND a2.id = r.id AND a2.param = ? AND a2.target_type = ?
                 AND a2.url IS NULL) AS c1
      FROM resource r WHERE <the plan, as a search compiles it>)
    GROUP BY c0, c1

Values are bound parameters in the order their placeholders appear; only aliases made
here and fixed table and column names are spliced into the text.
"""

from __future__ import annotations

from fhir_server.storage.sqlite.compile import compile_where
from fhir_server.storage.sqlite.values import Sql
from fhir_server.storage.tabulation import (
    Coalesce,
    Follow,
    Id,
    NotAfter,
    Referrers,
    Tabulation,
    TokenIs,
    Updated,
    Value,
    check_tabulation,
)

__all__ = ["compile_tabulation"]

_VALUE_SQL = {
    "code": ("idx_token", "x.code"),
    "low": ("idx_date", "x.low"),
    "high": ("idx_date", "x.high"),
    "target": ("idx_reference", "x.target_type || '/' || x.target_id"),
}


class _Aliases:
    def __init__(self) -> None:
        self._n = 0

    def __call__(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n}"


def compile_tabulation(tabulation: Tabulation) -> tuple[str, list]:
    """(SQL, arguments): rows of the column values followed by their count."""
    check_tabulation(tabulation)
    sql, aliases = Sql(), _Aliases()
    columns = [_expression(sql, aliases, e, "r") for e in tabulation.columns]
    where, where_args = compile_where(tabulation.plan)
    if not columns:
        return f"SELECT COUNT(*) FROM resource r WHERE {where} HAVING COUNT(*) > 0", [*sql.args, *where_args]
    names = [f"c{i}" for i in range(len(columns))]
    inner = ", ".join(f"{c} AS {n}" for c, n in zip(columns, names))
    grouped = ", ".join(names)
    text = f"SELECT {grouped}, COUNT(*) FROM (SELECT {inner} FROM resource r WHERE {where}) GROUP BY {grouped}"
    return text, [*sql.args, *where_args]


def _expression(sql: Sql, aliases: _Aliases, expression, row: str) -> str:
    if isinstance(expression, Coalesce):
        return "COALESCE(" + ", ".join(_column(sql, aliases, c, row) for c in expression.columns) + ")"
    if isinstance(expression, NotAfter):
        # a comparison with NULL is NULL, which CASE takes as false: 0 unless both are set
        left = _column(sql, aliases, expression.left, row)
        right = _column(sql, aliases, expression.right, row)
        return f"(CASE WHEN ({left}) <= ({right}) THEN 1 ELSE 0 END)"
    return _column(sql, aliases, expression, row)


def _column(sql: Sql, aliases: _Aliases, column, row: str) -> str:
    """SQL for ``column`` of the resource row ``row`` (an alias of ``resource``)."""
    if isinstance(column, Id):
        return f"{row}.id"
    if isinstance(column, Updated):
        return f"{row}.last_updated"
    if isinstance(column, Value):
        return _value(sql, aliases, column, row)
    if isinstance(column, Follow):
        a, t = aliases("a"), aliases("t")
        inner = _column(sql, aliases, column.column, t)
        return (
            f"(SELECT MIN({inner}) FROM idx_reference {a} JOIN resource {t} ON {t}.type = {a}.target_type "
            f"AND {t}.id = {a}.target_id AND {t}.deleted = 0 WHERE {a}.type = {row}.type AND {a}.id = {row}.id "
            f"AND {a}.param = {sql.bind(column.param)} AND {a}.target_type = {sql.bind(column.target_type)} "
            f"AND {a}.url IS NULL)"
        )
    if isinstance(column, Referrers):
        return _referrers(sql, aliases, column, row)
    raise TypeError(f"not a column: {column!r}")


def _value(sql: Sql, aliases: _Aliases, value: Value, row: str) -> str:
    table, selected = _VALUE_SQL[value.field]
    x = aliases("x")
    selected = selected.replace("x.", f"{x}.")
    text = (
        f"(SELECT MIN({selected}) FROM {table} {x} WHERE {x}.type = {row}.type AND {x}.id = {row}.id "
        f"AND {x}.param = {sql.bind(value.param)}"
    )
    if value.kind == "token" and value.system is not None:
        text += f" AND {x}.system = {sql.bind(value.system)}"
    if value.kind == "reference":
        text += f" AND {x}.url IS NULL AND {x}.target_type IS NOT NULL"
        if value.target_type is not None:
            text += f" AND {x}.target_type = {sql.bind(value.target_type)}"
    return text + ")"


def _referrers(sql: Sql, aliases: _Aliases, column: Referrers, row: str) -> str:
    b, s = aliases("b"), aliases("s")
    inner = _column(sql, aliases, column.column, s)
    text = (
        f"(SELECT MIN({inner}) FROM idx_reference {b} JOIN resource {s} ON {s}.type = {b}.type AND {s}.id = {b}.id "
        f"AND {s}.deleted = 0 WHERE {b}.target_type = {row}.type AND {b}.target_id = {row}.id "
        f"AND {b}.param = {sql.bind(column.param)} AND {b}.type = {sql.bind(column.source_type)} AND {b}.url IS NULL"
    )
    for condition in column.where:
        text += " AND " + _token_is(sql, aliases, condition, s)
    return text + ")"


def _token_is(sql: Sql, aliases: _Aliases, condition: TokenIs, row: str) -> str:
    k = aliases("k")
    text = (
        f"EXISTS (SELECT 1 FROM idx_token {k} WHERE {k}.type = {row}.type AND {k}.id = {row}.id "
        f"AND {k}.param = {sql.bind(condition.param)} AND {k}.code IN ({sql.bind(*condition.codes)})"
    )
    if condition.system is not None:
        text += f" AND {k}.system = {sql.bind(condition.system)}"
    text += ")"
    return f"NOT {text}" if condition.negate else text
