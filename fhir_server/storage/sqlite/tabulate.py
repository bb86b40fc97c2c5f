"""Tabulation -> one SQL query: the plan's resources, a correlated subquery per column, and
``GROUP BY`` over the columns with ``COUNT(*)`` (``storage/tabulation.py``).

Every column reads index rows through their owner index (``rid``, ``pid``; named with
``INDEXED BY``: left to itself SQLite reads ``MIN(x.code)`` by walking the primary key of
every row of the parameter, thousands of times slower on a large store) or, for
``Referrers``, through the lookup key (``pid``, ``htarget``), so the cost is a few index
probes per counted resource, whatever the size of the store::

    WITH t AS MATERIALIZED (
      SELECT (SELECT MIN(x1.code) FROM idx_token x1 WHERE x1.rid = r.rid AND x1.pid = ?) AS c0,
             (SELECT MIN((SELECT MIN(x3.code) FROM idx_token x3 WHERE x3.rid = t2.rid AND x3.pid = ?))
               FROM idx_reference a2 JOIN resource t2 ON t2.type = a2.target_type
                    AND t2.id = a2.target_id AND t2.deleted = 0
               WHERE a2.rid = r.rid AND a2.pid = ? AND a2.target_type = ? AND a2.url IS NULL) AS c1
      FROM <the plan's driver> CROSS JOIN resource r WHERE <its other parts, probed>)
    SELECT c0, c1, COUNT(*) FROM t GROUP BY c0, c1

The resources come from the most selective condition's index rows (a date range read
between its bounds, one reference target, one code; ``choose_driver``), probing the
others per row, as a search's do (``planner.py``). Left to SQLite, the plan became ``IN`` lists checked against
every resource of the type: a month's SKR read every milestone Encounter, and a batch of
a hundred referrals' Appointments read all of them, once per batch.

Parameters are the interned ``pid`` of (type, code) -- the type of each row is known
from the tabulation -- and a parameter never indexed is ``-1`` (nothing matches). Dates
are stored as microseconds; a date column is formatted back into the fixed-width UTC
instant the tabulation promises after ``MIN`` (so order is time order either way).
Values are bound parameters; only aliases made here and fixed names enter the text.
"""

from __future__ import annotations

from fhir_server.storage.sqlite.compile import Part
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

__all__ = ["assemble", "choose_driver", "compile_columns"]

_NONE = -1

_VALUE_SQL = {
    "code": ("idx_token", "{x}.code"),
    "low": ("idx_date", "{x}.low"),
    "high": ("idx_date", "{x}.high"),
    "target": ("idx_reference", "{x}.target_type || '/' || {x}.target_id"),
}


def _instant(subquery: str) -> str:
    """The integer microseconds (possibly before 1970) ``subquery`` selects as
    ``YYYY-MM-DDTHH:MM:SS.ffffffZ``; the subquery runs once (a derived table)."""
    frac = "((v % 1000000 + 1000000) % 1000000)"
    return (f"(SELECT strftime('%Y-%m-%dT%H:%M:%S', (v - {frac}) / 1000000, 'unixepoch') || '.' "
            f"|| printf('%06d', {frac}) || 'Z' FROM ({subquery}))")


class _Aliases:
    def __init__(self) -> None:
        self._n = 0

    def __call__(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n}"


def compile_columns(tabulation: Tabulation, sql: Sql) -> list[str]:
    """The SQL of each column on ``resource r`` (arguments appended to ``sql.args``)."""
    check_tabulation(tabulation)
    aliases = _Aliases()
    rtype = tabulation.plan.resource_type
    return [_expression(sql, aliases, e, "r", rtype) for e in tabulation.columns]


#: a candidate driver is counted up to this many rows, then (while every candidate
#: reaches it) eight times as many, up to ``_LAST_CAP``
_FIRST_CAP = 5000
_LAST_CAP = 5000 * 8 ** 5


def choose_driver(conn, parts: list[Part]) -> Part | None:
    """The part whose index rows list the fewest resources (None: scan the type). A
    search's planner stops counting at 5,000 (it wants a page); a tabulation reads every
    match, so a tie at that cap is counted further: at 1,000,000 resources a month's
    8,000 intake Tasks (the ``authored-on`` range) tied with all 200,000 of them (the
    ``code``), and the code drove."""
    for part in parts:
        if part.combo is not None:  # a combined index: one range holds the matches
            return part
    candidates = [p for p in parts if p.driver is not None]
    cap = _FIRST_CAP
    while len(candidates) > 1:
        counted = [(conn.execute(f"SELECT COUNT(*) FROM ({p.driver} LIMIT {cap})", p.driver_args).fetchone()[0],
                    p.rank, n, p) for n, p in enumerate(candidates)]
        best = min(counted, key=lambda c: c[:3])
        if best[0] < cap or cap >= _LAST_CAP:
            return best[3]
        cap *= 8
    return candidates[0] if candidates else None


def assemble(columns: list[str], base: str, base_args: list, parts: list[Part],
             driver: Part | None) -> tuple[str, list]:
    """The query and the arguments after the columns': the plan's resources read from
    ``driver`` (the part the search planner chose; None: every resource of the type),
    the other parts probed per resource, as a search counts them."""
    source, args = "resource r", []
    if driver is not None:
        source = f"(SELECT DISTINCT rid FROM ({driver.driver})) d CROSS JOIN resource r ON r.rid = d.rid"
        args = list(driver.driver_args)
    where, args = [base], [*args, *base_args]
    for part in parts:
        if part is not driver:
            where.append(part.probe)
            args.extend(part.probe_args)
    condition = " AND ".join(where)
    if not columns:
        return f"SELECT COUNT(*) FROM {source} WHERE {condition} HAVING COUNT(*) > 0", args
    names = [f"c{i}" for i in range(len(columns))]
    inner = ", ".join(f"{c} AS {n}" for c, n in zip(columns, names))
    grouped = ", ".join(names)
    # materialized: flattened into the GROUP BY, SQLite would run every column's subquery twice
    return (f"WITH t AS MATERIALIZED (SELECT {inner} FROM {source} WHERE {condition}) "
            f"SELECT {grouped}, COUNT(*) FROM t GROUP BY {grouped}"), args


def _expression(sql: Sql, aliases: _Aliases, expression, row: str, rtype: str) -> str:
    if isinstance(expression, Coalesce):
        return "COALESCE(" + ", ".join(_column(sql, aliases, c, row, rtype) for c in expression.columns) + ")"
    if isinstance(expression, NotAfter):
        # a comparison with NULL is NULL, which CASE takes as false: 0 unless both are set
        left = _column(sql, aliases, expression.left, row, rtype)
        right = _column(sql, aliases, expression.right, row, rtype)
        return f"(CASE WHEN ({left}) <= ({right}) THEN 1 ELSE 0 END)"
    return _column(sql, aliases, expression, row, rtype)


def _pid(sql: Sql, rtype: str, code: str) -> str:
    return sql.bind(sql.pid(rtype, code) or _NONE)


def _column(sql: Sql, aliases: _Aliases, column, row: str, rtype: str) -> str:
    """SQL for ``column`` of the resource row ``row`` (an alias of ``resource`` of ``rtype``)."""
    if isinstance(column, Id):
        return f"{row}.id"
    if isinstance(column, Updated):
        return f"{row}.last_updated"
    if isinstance(column, Value):
        return _value(sql, aliases, column, row, rtype)
    if isinstance(column, Follow):
        a, t = aliases("a"), aliases("t")
        inner = _column(sql, aliases, column.column, t, column.target_type)
        return (
            f"(SELECT MIN({inner}) FROM idx_reference {a} INDEXED BY idx_reference_owner "
            f"JOIN resource {t} ON {t}.type = {a}.target_type "
            f"AND {t}.id = {a}.target_id AND {t}.deleted = 0 WHERE {a}.rid = {row}.rid "
            f"AND {a}.pid = {_pid(sql, rtype, column.param)} AND {a}.target_type = {sql.bind(column.target_type)} "
            f"AND {a}.url IS NULL)"
        )
    if isinstance(column, Referrers):
        return _referrers(sql, aliases, column, row)
    raise TypeError(f"not a column: {column!r}")


def _value(sql: Sql, aliases: _Aliases, value: Value, row: str, rtype: str) -> str:
    table, selected = _VALUE_SQL[value.field]
    x = aliases("x")
    text = (f"SELECT MIN({selected.format(x=x)}) AS v FROM {table} {x} INDEXED BY {table}_owner WHERE {x}.rid = {row}.rid "
            f"AND {x}.pid = {_pid(sql, rtype, value.param)}")
    if value.kind == "token" and value.system is not None:
        text += f" AND {x}.hsys = {sql.bind(sql.keys(value.system))}"
    if value.kind == "reference":
        text += f" AND {x}.url IS NULL AND {x}.target_type IS NOT NULL"
        if value.target_type is not None:
            text += f" AND {x}.target_type = {sql.bind(value.target_type)}"
    return _instant(text) if value.kind == "date" else f"({text})"


def _referrers(sql: Sql, aliases: _Aliases, column: Referrers, row: str) -> str:
    b, s = aliases("b"), aliases("s")
    # bound in placeholder order: the selected column's values, then the referrer's pid
    # (its type and parameter; with htarget, the lookup key (pid, htarget, rid))
    inner = _column(sql, aliases, column.column, s, column.source_type)
    pid = _pid(sql, column.source_type, column.param)
    text = (
        f"(SELECT MIN({inner}) FROM idx_reference {b} JOIN resource {s} ON {s}.rid = {b}.rid "
        f"AND {s}.deleted = 0 WHERE {b}.pid = {pid} AND {b}.htarget = {row}.hkey "
        f"AND {b}.target_type = {row}.type AND {b}.target_id = {row}.id AND {b}.url IS NULL"
    )
    for condition in column.where:
        text += " AND " + _token_is(sql, aliases, condition, s, column.source_type)
    return text + ")"


def _token_is(sql: Sql, aliases: _Aliases, condition: TokenIs, row: str, rtype: str) -> str:
    k = aliases("k")
    text = (
        f"EXISTS (SELECT 1 FROM idx_token {k} INDEXED BY idx_token_owner WHERE {k}.rid = {row}.rid "
        f"AND {k}.pid = {_pid(sql, rtype, condition.param)} AND {k}.code IN ({sql.bind(*condition.codes)})"
    )
    if condition.system is not None:
        text += f" AND {k}.hsys = {sql.bind(sql.keys(condition.system))}"
    text += ")"
    return f"NOT {text}" if condition.negate else text
