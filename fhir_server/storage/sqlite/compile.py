"""SearchPlan -> SQL. Every client value travels as a bound parameter; only names
from fixed tables (index tables, columns, aliases made here) are spliced into the
SQL text. A clause this backend cannot compile raises ``UnsupportedClause``.
What a value of each parameter type compiles to is registered by type in ``values.py``.

Each filter becomes ``<alias>.rid IN (SELECT x.rid FROM idx_<kind> x WHERE x.pid = ?
AND (<value> OR <value>))``: the index table's primary key starts with (pid, value),
so SQLite drives the query from it; chains and ``_has`` nest the same form, joined
through the reference hash (``htarget`` = the target's ``resource.hkey``). A parameter
that has never been indexed has no ``pid``: its clause matches nothing (``-1``).
"""

from __future__ import annotations

import re

from dataclasses import dataclass, field

from fhir_server.search.params.reference import IDENTIFIER_SUFFIX, ReferenceValue
from fhir_server.search.params.token import TokenValue
from fhir_server.storage.sqlite import combos
from fhir_server.search.params.token import OF_TYPE_SUFFIX
from fhir_server.search.plan import AnyOf, Clause, CompartmentClause, HasClause, SearchPlan, SortKey, TypeIn
from fhir_server.storage.sqlite.schema import OPEN_HIGH, OPEN_LOW
from fhir_server.storage.sqlite.values import Kind, Sql, UnsupportedClause, kind, micro_date

__all__ = ["compile_where", "compile_order", "compile_parts", "Part", "Sql", "UnsupportedClause"]

_COLUMNS = {"id": "id", "last_updated": "last_updated"}
_NONE = -1  # the pid of a parameter nothing was ever indexed for


def compile_where(plan: SearchPlan, sql: Sql) -> str:
    """The condition on ``resource r``; its arguments are appended to ``sql.args``."""
    parts = ["r.deleted = 0"]
    if plan.resource_type is not None:
        parts.insert(0, f"r.type = {sql.bind(plan.resource_type)}")
    elif plan.types:
        parts.insert(0, f"r.type IN ({sql.bind(*plan.types)})")
    for group in _merge_single_valued(plan.clauses):
        if isinstance(group, list):
            parts.append(_merged(sql, group, plan.resource_type, _types(plan)))
        else:
            parts.append(_filter(sql, group, plan.resource_type, "r", _types(plan)))
    return " AND ".join(parts)


@dataclass
class Part:
    """One AND-ed condition of a search, in the forms the planner chooses between:
    ``probe`` tests one resource ``r`` (an EXISTS through the owner index where the clause
    is on an index table); ``driver``, where there is one, lists the matching rids from
    the table's lookup order (possibly repeating a rid), so the query can start from it."""

    probe: str
    probe_args: list
    driver: str | None = None
    driver_args: list = field(default_factory=list)
    #: how sure the planner may be that the driver is small before counting: lower first
    rank: int = 9
    #: the probe reads columns of ``resource r`` other than ``rid``
    needs_resource: bool = True
    #: a combined index (combos.py): (cid, [values of k1, k2, k3], sort parameter)
    combo: tuple | None = None


def compile_parts(plan: SearchPlan, sql: Sql) -> tuple[str, list, list[Part]]:
    """The type condition (and its arguments) and the plan's clauses as ``Part``s."""
    base = sql.child()
    where = ["r.deleted = 0"]
    if plan.resource_type is not None:
        where.insert(0, f"r.type = {base.bind(plan.resource_type)}")
    elif plan.types:
        where.insert(0, f"r.type IN ({base.bind(*plan.types)})")
    sql.adopt(base)
    parts = []
    combo, implied = _combo_part(plan, sql)
    if combo is not None:
        parts.append(combo)
    for group in _merge_single_valued(plan.clauses):
        if group in implied:
            continue
        parts.append(_part(sql, group, plan.resource_type, _types(plan)))
    return " AND ".join(where), base.args, parts


def _combo_key(sql: Sql, clause, key_kind: str) -> tuple[list | None, bool]:
    """The combined-index keys of a clause's values (None: it cannot use one) and whether
    the keys imply the clause (a system-qualified code still needs the token row)."""
    if not isinstance(clause, Clause) or clause.modifier is not None or clause.chain is not None:
        return None, False
    keys, implied = [], True
    for v in clause.values:
        if key_kind == "token" and isinstance(v, TokenValue) and v.code is not None:
            keys.append(sql.keys(v.code))
            implied = implied and not v.system_given
        elif key_kind == "reference" and isinstance(v, ReferenceValue) and (v.url or v.target_type):
            keys.append(sql.keys.target(v.target_type, v.target_id, None) if v.url is None
                        else sql.keys.target(None, None, v.url))
        else:
            return None, False
    return (keys or None), implied


def _combo_high(sql: Sql, plan: SearchPlan, sort: str) -> str:
    """Bounds on a combined row's ``high`` from a clause on its (single-valued) sort
    parameter: ``Appointment?actor=…&date=2025-03-05`` reads one day of one actor. The
    clause itself still probes each row; these only narrow the range."""
    found = [c for c in plan.clauses if isinstance(c, Clause) and c.param.code == sort]
    if len(found) != 1 or not found[0].single_valued or found[0].modifier is not None:
        return ""
    lows, highs = [], []
    for v in found[0].values:
        v = micro_date(v)
        lows.append({"eq": v.low, "ge": v.low, "gt": v.low, "sa": v.high}.get(v.prefix))
        highs.append({"eq": v.high, "eb": v.low}.get(v.prefix))
    out = ""
    if lows and None not in lows:
        out += f" AND c.high >= {sql.bind(min(lows))}"
    if highs and None not in highs:
        out += f" AND c.high <= {sql.bind(max(highs))}"
    return out


def _combo_part(plan: SearchPlan, sql: Sql) -> tuple[Part | None, list]:
    """A combined index (combos.py) that serves the plan's clauses, as a driver part, and
    the clauses it implies (left out of the probes)."""
    for cid, combo in combos.for_type(plan.resource_type):
        values, implied = [], []
        for code, key_kind in combo.keys:
            found = [c for c in plan.clauses if isinstance(c, Clause) and c.param.code == code]
            keys, exact = _combo_key(sql, found[0], key_kind) if len(found) == 1 else (None, False)
            if keys is None:
                break
            values.append(keys)
            if exact:
                implied.append(found[0])
        else:
            values += [[0]] * (3 - len(values))
            d = sql.child()
            where = f"c.cid = {d.bind(cid)} AND " + " AND ".join(
                f"c.k{n + 1} IN ({d.bind(*ks)})" for n, ks in enumerate(values)
            )
            where += _combo_high(d, plan, combo.sort)
            sql.adopt(d)
            part = Part("1", [], f"SELECT c.rid FROM idx_combo c WHERE {where}", d.args, 0, False,
                        (cid, values, combo.sort))
            return part, implied
    return None, []


def _part(sql: Sql, group, rtype: str | None, types) -> Part:
    clauses = group if isinstance(group, list) else [group]
    first = clauses[0]
    indexed = all(
        isinstance(c, Clause) and not c.param.column and c.chain is None
        and c.modifier not in ("missing", "not", "not-in", "identifier", "of-type")
        for c in clauses
    )
    if indexed:
        probe, driver = sql.child(), sql.child()
        table, rows_p = _rows(probe, clauses, rtype, types)
        sql.adopt(probe)
        if first.param.type == "date" and rtype is not None and _date_lower(clauses) is not None:
            driven = _date_driver(sql, clauses, rtype, types, driver)
        else:
            driven = f"SELECT x.rid FROM {table} x WHERE {_rows(driver, clauses, rtype, types)[1]}"
        sql.adopt(driver)
        return Part(
            # the owner index, named: with a range in the condition SQLite chose the lookup
            # index instead and read half of a date index for every resource (1M: 30 s)
            f"EXISTS (SELECT 1 FROM {table} x INDEXED BY {table}_owner WHERE x.rid = r.rid AND {rows_p})", probe.args,
            driven, driver.args, _rank(first), False,
        )
    if isinstance(first, Clause) and first.chain is not None and first.modifier is None and len(clauses) == 1:
        # a chain's inner query is its own driver: usually few targets, few referrers
        probe, driver = sql.child(), sql.child()
        rids_p = _chain_rids(probe, first, rtype, types)
        rids_d = _chain_rids(driver, first, rtype, types)
        for child in (probe, driver):
            sql.adopt(child)
        return Part(f"r.rid IN ({rids_p})", probe.args, rids_d, driver.args, 5, False)
    child = sql.child()
    if isinstance(group, list):
        text = _merged(child, group, rtype, types)
    else:
        text = _filter(child, group, rtype, "r", types)
    sql.adopt(child)
    return Part(text, child.args)


def _rows(sql: Sql, clauses: list, rtype: str | None, types) -> tuple[str, str]:
    """The index table and the condition on its rows that every clause of the group holds."""
    first = clauses[0]
    compiler = kind(first.param.type)
    where = _param_condition(sql, rtype, first.param.code, types)
    conditions = [
        "(" + " OR ".join(compiler.value(sql, v, c.modifier) for v in c.values) + ")" for c in clauses
    ]
    return compiler.table, f"{where} AND {' AND '.join(conditions)}"


def _date_lower(clauses: list) -> list | None:
    """Lower bounds a date group's rows' ``low`` must meet, one list of OR-ed choices per
    AND-ed clause: ``("at", t)`` is ``low >= t``; ``("span", t)`` is ``high >= t``, so
    ``low >= t - span`` for the parameter's longest closed period (schema ``date_span``).
    None: no clause bounds ``low`` from below (ranges read from the start anyway)."""
    groups = []
    for clause in clauses:
        choices = []
        for v in clause.values:
            v = micro_date(v)
            p = v.prefix
            if p == "eq":
                choices.append(("at", v.low))
            elif p == "sa":
                choices.append(("at", v.high))
            elif p in ("ge", "gt"):
                choices.append(("span", v.low))
            else:  # ne, lt, le, eb, ap: nothing from below (ap: rarely used on ranges)
                choices = None
                break
        if choices:
            groups.append(choices)
    return groups or None


_NOT_INDEXED_LOW = re.compile(r"(?<![+\w.])x\.low\b")


def _date_driver(sql: Sql, clauses: list, rtype: str, types, driver: Sql) -> str:
    """Rows of a date group read from a range of the (pid, low) index bounded on both
    sides (``_date_lower``), plus the open-ended rows, which no span bounds. The old form
    read the index from one end: the recent weeks users ask for read every older row."""
    pid = sql.pid(rtype, clauses[0].param.code) or -1
    branches = []
    for branch in ("closed", "open-low", "open-high"):
        _, rows = _rows(driver, clauses, rtype, types)
        if branch == "closed":
            bounds = []
            for choices in _date_lower(clauses):
                terms = [
                    driver.bind(t) if how == "at"
                    else f"({driver.bind(t)} - (SELECT span FROM date_span WHERE pid = {driver.bind(pid)}))"
                    for how, t in choices
                ]
                bounds.append(terms[0] if len(terms) == 1 else f"MIN({', '.join(terms)})")
            lower = bounds[0] if len(bounds) == 1 else f"MAX({', '.join(bounds)})"
            branches.append(f"SELECT x.rid FROM idx_date x INDEXED BY idx_date_low WHERE {rows} AND x.low >= {lower}")
        elif branch == "open-low":
            # the clause's own terms on ``low`` (``low < t``) kept out of the index (``+``):
            # SQLite 3.40 took such a range over the equality and read every older row
            rows = _NOT_INDEXED_LOW.sub("+x.low", rows)
            branches.append(f"SELECT x.rid FROM idx_date x INDEXED BY idx_date_low WHERE {rows} AND x.low = {driver.bind(OPEN_LOW)}")
        else:
            branches.append(f"SELECT x.rid FROM idx_date x WHERE {rows} AND x.high = {driver.bind(OPEN_HIGH)}")
    return " UNION ALL ".join(branches)


def _rank(clause: Clause) -> int:
    """A prior for drivers the bounded count cannot tell apart: equality on one target or
    one system-qualified code lists few rows; a date range or a bare code many."""
    ptype = clause.param.type
    return {"reference": 1, "token": 2, "uri": 2, "string": 3, "number": 4, "quantity": 4, "date": 6}.get(ptype, 7)


def _types(plan: SearchPlan) -> tuple[str, ...] | None:
    """The types a system search covers (None: every type)."""
    return plan.types or None


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


def _merged(sql: Sql, clauses: list, rtype: str | None, types) -> str:
    first = clauses[0]
    compiler = kind(first.param.type)
    where = _param_condition(sql, rtype, first.param.code, types)
    conditions = [
        "(" + " OR ".join(compiler.value(sql, v, None) for v in clause.values) + ")" for clause in clauses
    ]
    return f"r.rid IN (SELECT x.rid FROM {compiler.table} x WHERE {where} AND {' AND '.join(conditions)})"


def compile_order(plan: SearchPlan, sql: Sql) -> str:
    keys = []
    for key in plan.sort:
        direction = "DESC" if key.descending else "ASC"
        # resources without a value come last in either direction; the expression
        # appears twice, so it is built (and its parameter bound) twice
        keys.append(f"({_sort_expression(sql, key, plan)}) IS NULL, {_sort_expression(sql, key, plan)} {direction}")
    keys.append("r.type ASC, r.id ASC")  # a stable tie-break: the key (as on MongoDB)
    return ", ".join(keys)


# -- filters -------------------------------------------------------------------------


def _param_condition(sql: Sql, rtype: str | None, code: str, types) -> str:
    """Index rows of parameter ``code`` of ``rtype`` (or of every type that has it)."""
    if rtype is not None:
        return f"x.pid = {sql.bind(sql.pid(rtype, code) or _NONE)}"
    found = sql.pids_of(code, types)
    return f"x.pid IN ({sql.bind(*found)})" if found else "0"


def _filter(sql: Sql, f, rtype: str | None, alias: str, types=None) -> str:
    if isinstance(f, AnyOf):
        groups = ["(" + " AND ".join(_filter(sql, g, rtype, alias, types) for g in group) + ")" if group else "1"
                  for group in f.groups]
        return "(" + " OR ".join(groups) + ")" if groups else "0"
    if isinstance(f, TypeIn):
        if not f.types:
            return "1" if f.exclude else "0"
        return f"{alias}.type {'NOT IN' if f.exclude else 'IN'} ({sql.bind(*f.types)})"
    if isinstance(f, HasClause):
        return _has(sql, f, rtype, alias, types)
    if isinstance(f, CompartmentClause):
        return _compartment(sql, f, rtype, alias)
    return _clause(sql, f, rtype, alias, types)


def _clause(sql: Sql, clause: Clause, rtype: str | None, alias: str, types=None) -> str:
    d = clause.param
    if d.column:
        return _column_clause(sql, clause, alias)
    param_type, param = d.type, d.code
    if clause.modifier == "identifier":
        param_type, param = "token", d.code + IDENTIFIER_SUFFIX
    elif clause.modifier == "of-type":
        param = d.code + OF_TYPE_SUFFIX
    compiler = kind(param_type)
    if clause.chain is not None:
        return _chain(sql, clause, rtype, alias, types)
    if clause.modifier == "missing":
        return _missing(sql, clause, compiler, param, rtype, alias, types)
    where = _param_condition(sql, rtype, param, types)
    predicate = " OR ".join(compiler.value(sql, v, clause.modifier) for v in clause.values)
    sub = f"{alias}.rid IN (SELECT x.rid FROM {compiler.table} x WHERE {where} AND ({predicate}))"
    return f"NOT {sub}" if clause.modifier in ("not", "not-in") else sub


def _missing(sql: Sql, clause: Clause, compiler: Kind, param: str, rtype, alias: str, types) -> str:
    sub = f"{alias}.rid IN (SELECT x.rid FROM {compiler.table} x WHERE {_param_condition(sql, rtype, param, types)})"
    if compiler.missing_also is not None:
        table, suffix = compiler.missing_also
        also = _param_condition(sql, rtype, param + suffix, types)
        sub = f"({sub} OR {alias}.rid IN (SELECT x.rid FROM {table} x WHERE {also}))"
    return f"NOT {sub}" if clause.values[0] else sub


def _column_clause(sql: Sql, clause: Clause, alias: str) -> str:
    column = f"{alias}.{_COLUMNS[clause.param.column]}"
    if clause.modifier == "missing":  # id and lastUpdated are never missing
        return "0" if clause.values[0] else "1"
    compiler = kind(clause.param.type)
    if compiler.column is None:
        raise UnsupportedClause(f"column parameter {clause.param.code}")
    return compiler.column(sql, clause.values, column, clause.modifier == "not")


def _chain(sql: Sql, clause: Clause, rtype: str | None, alias: str, types) -> str:
    return f"{alias}.rid IN ({_chain_rids(sql, clause, rtype, types)})"


def _chain_rids(sql: Sql, clause: Clause, rtype: str | None, types) -> str:
    """References (through ``htarget``) to the targets that match the inner filter, one
    UNION ALL branch per target type (an OR across types scanned every reference row)."""
    branches = []
    for target_type, inner in clause.chain.by_type:
        a = sql.alias()
        # bind in the order the placeholders appear: the head first, then the inner filter
        head = (
            f"SELECT x.rid FROM idx_reference x WHERE {_param_condition(sql, rtype, clause.param.code, types)} "
            f"AND x.htarget IN (SELECT {a}.hkey FROM resource {a} "
            # "+": not the type's index (SQLite scanned every Patient for one identifier);
            # the inner filter's rid list drives
            f"WHERE +{a}.type = {sql.bind(target_type)} AND {a}.deleted = 0 AND "
        )
        branches.append(head + _filter(sql, inner, target_type, a) + ")")
    return " UNION ALL ".join(branches)


def _has(sql: Sql, f: HasClause, rtype: str | None, alias: str, types=None) -> str:
    """The sources that match come first (CROSS JOIN keeps that order), then their
    references through the owner index (rid, pid): SQLite, left to choose, scanned every
    reference to the target type instead (7 policy ``_has`` terms on 25,000 Patients took
    300-800 ms; driven from the sources, milliseconds)."""
    a = sql.alias()
    # bind in the order the placeholders appear: the sources' filter, then the reference
    sources = (
        f"SELECT {a}.rid AS rid FROM resource {a} WHERE {a}.type = {sql.bind(f.source_type)} AND {a}.deleted = 0 AND "
        + _filter(sql, f.inner, f.source_type, a)
    )
    pid = sql.pid(f.source_type, f.reference.code) or _NONE
    targets = (
        f"SELECT x.htarget FROM ({sources}) AS s{a} CROSS JOIN idx_reference x "
        f"WHERE x.rid = s{a}.rid AND x.pid = {sql.bind(pid)} AND x.url IS NULL"
    )
    if rtype is not None:
        targets += f" AND x.target_type = {sql.bind(rtype)}"
    return f"{alias}.hkey IN ({targets})"


def _compartment(sql: Sql, f: CompartmentClause, rtype: str | None, alias: str) -> str:
    parts = []
    owner = sql.keys.resource(f.compartment_type, f.compartment_id)
    types = [rtype] if rtype is not None else [t for t, _ in f.params_by_type]
    for t in types:
        pids = [p for p in (sql.pid(t, code) for code in f.params_for(t)) if p is not None]
        if not pids:
            continue
        parts.append(
            f"({alias}.type = {sql.bind(t)} AND {alias}.rid IN (SELECT x.rid FROM idx_reference x "
            f"WHERE x.pid IN ({sql.bind(*pids)}) AND x.htarget = {sql.bind(owner)}))"
        )
    if f.include_owner:
        parts.append(f"({alias}.type = {sql.bind(f.compartment_type)} AND {alias}.id = {sql.bind(f.compartment_id)})")
    return "(" + (" OR ".join(parts) or "0") + ")"


# -- sorting -------------------------------------------------------------------------


def _sort_expression(sql: Sql, key: SortKey, plan: SearchPlan) -> str:
    d = key.param
    if d.column:
        return f"r.{_COLUMNS[d.column]}"
    compiler = kind(d.type)
    if compiler.sort is None:
        raise UnsupportedClause(f"sorting by {d.type}")
    column = compiler.sort[1] if key.descending else compiler.sort[0]
    # ascending sorts by the smallest value a resource has, descending by the largest
    aggregate = "MAX" if key.descending else "MIN"
    # ``+x.pid``: the value lookup goes by the owner index (rid, pid), a few rows per
    # resource; left to itself SQLite took the (pid, value) index and read every value of
    # the parameter for each resource sorted (26 s for 4,800 open Tasks at 100,000
    # resources, benchmarks/ui.py)
    if plan.resource_type is not None:
        where = f"+x.pid = {sql.bind(sql.pid(plan.resource_type, d.code) or _NONE)}"
    else:
        found = sql.pids_of(d.code, plan.types or None)
        where = f"+x.pid IN ({sql.bind(*found)})" if found else "0"
    expression = f"(SELECT {aggregate}({column}) FROM {compiler.table} x WHERE x.rid = r.rid AND {where}"
    if compiler.sort_rows is not None:
        expression += compiler.sort_rows(sql)
    return expression + ")"
