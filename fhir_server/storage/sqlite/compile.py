"""SearchPlan -> SQL. Every client value travels as a bound parameter; only names
from fixed tables (index tables, columns, aliases made here) are spliced into the
SQL text. A clause this backend cannot compile raises ``UnsupportedClause``.
What a value of each parameter type compiles to is registered by type in ``values.py``.

Each filter becomes ``<alias>.id IN (SELECT x.id FROM idx_<kind> x WHERE x.type = ?
AND x.param = ? AND (<value> OR <value>))`` so SQLite drives the query from the
(type, param, value) index; chains and ``_has`` nest the same form.
"""

from __future__ import annotations

from fhir_server.search.params.reference import IDENTIFIER_SUFFIX
from fhir_server.search.params.token import OF_TYPE_SUFFIX
from fhir_server.search.plan import AnyOf, TypeIn, Clause, CompartmentClause, HasClause, SearchPlan, SortKey
from fhir_server.storage.sqlite.values import Kind, Sql, UnsupportedClause, kind

__all__ = ["compile_where", "compile_order", "UnsupportedClause"]

_COLUMNS = {"id": "id", "last_updated": "last_updated"}


def compile_where(plan: SearchPlan) -> tuple[str, list]:
    sql = Sql()
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


def _merged(sql: Sql, clauses: list, rtype: str | None) -> str:
    first = clauses[0]
    compiler = kind(first.param.type)
    left, type_condition = _owner(sql, "r", rtype)
    where = f"{type_condition} AND x.param = {sql.bind(first.param.code)}"
    conditions = [
        "(" + " OR ".join(compiler.value(sql, v, None) for v in clause.values) + ")" for clause in clauses
    ]
    return f"{left} IN (SELECT {_select(rtype)} FROM {compiler.table} x WHERE {where} AND {' AND '.join(conditions)})"


def compile_order(plan: SearchPlan) -> tuple[str, list]:
    sql = Sql()
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


def _owner(sql: Sql, alias: str, rtype: str | None) -> tuple[str, str]:
    """(left side, type condition) tying index rows x to the resource ``alias``."""
    if rtype is None:
        return f"({alias}.type, {alias}.id)", f"x.type = {alias}.type"
    return f"{alias}.id", f"x.type = {sql.bind(rtype)}"


def _filter(sql: Sql, f, rtype: str | None, alias: str) -> str:
    if isinstance(f, AnyOf):
        groups = ["(" + " AND ".join(_filter(sql, g, rtype, alias) for g in group) + ")" if group else "1"
                  for group in f.groups]
        return "(" + " OR ".join(groups) + ")" if groups else "0"
    if isinstance(f, TypeIn):
        if not f.types:
            return "1" if f.exclude else "0"
        return f"{alias}.type {'NOT IN' if f.exclude else 'IN'} ({sql.bind(*f.types)})"
    if isinstance(f, HasClause):
        return _has(sql, f, rtype, alias)
    if isinstance(f, CompartmentClause):
        return _compartment(sql, f, rtype, alias)
    return _clause(sql, f, rtype, alias)


def _select(rtype: str | None) -> str:
    return "x.type, x.id" if rtype is None else "x.id"


def _clause(sql: Sql, clause: Clause, rtype: str | None, alias: str) -> str:
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
        return _chain(sql, clause, rtype, alias)
    if clause.modifier == "missing":
        return _missing(sql, clause, compiler, param, rtype, alias)
    left, type_condition = _owner(sql, alias, rtype)  # binds: nothing may be bound before it
    where = f"{type_condition} AND x.param = {sql.bind(param)}"
    predicate = " OR ".join(compiler.value(sql, v, clause.modifier) for v in clause.values)
    sub = f"{left} IN (SELECT {_select(rtype)} FROM {compiler.table} x WHERE {where} AND ({predicate}))"
    return f"NOT {sub}" if clause.modifier in ("not", "not-in") else sub


def _missing(sql: Sql, clause: Clause, compiler: Kind, param: str, rtype: str | None, alias: str) -> str:
    left, type_condition = _owner(sql, alias, rtype)  # binds: nothing may be bound before it
    sub = f"{left} IN (SELECT {_select(rtype)} FROM {compiler.table} x WHERE {type_condition} AND x.param = {sql.bind(param)})"
    if compiler.missing_also is not None:
        table, suffix = compiler.missing_also
        sub = (
            f"({sub} OR {left} IN (SELECT {_select(rtype)} FROM {table} x WHERE "
            f"{_owner(sql, alias, rtype)[1]} AND x.param = {sql.bind(param + suffix)}))"
        )
    return f"NOT {sub}" if clause.values[0] else sub


def _column_clause(sql: Sql, clause: Clause, alias: str) -> str:
    column = f"{alias}.{_COLUMNS[clause.param.column]}"
    if clause.modifier == "missing":  # id and lastUpdated are never missing
        return "0" if clause.values[0] else "1"
    compiler = kind(clause.param.type)
    if compiler.column is None:
        raise UnsupportedClause(f"column parameter {clause.param.code}")
    return compiler.column(sql, clause.values, column, clause.modifier == "not")


def _chain(sql: Sql, clause: Clause, rtype: str | None, alias: str) -> str:
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


def _has(sql: Sql, f: HasClause, rtype: str | None, alias: str) -> str:
    """The sources that match come first (CROSS JOIN keeps that order), then their
    references through the owner index (type, id, param): SQLite, left to choose, scanned
    every reference to the target type instead (7 policy ``_has`` terms on 25,000
    Patients took 300-800 ms; driven from the sources, milliseconds)."""
    a = sql.alias()
    left = f"({alias}.type, {alias}.id)" if rtype is None else f"{alias}.id"
    select = "x.target_type, x.target_id" if rtype is None else "x.target_id"
    # bind in the order the placeholders appear: the sources' filter, then the reference
    sources = (
        f"SELECT {a}.id AS id FROM resource {a} WHERE {a}.type = {sql.bind(f.source_type)} AND {a}.deleted = 0 AND "
        + _filter(sql, f.inner, f.source_type, a)
    )
    head = (
        f"{left} IN (SELECT {select} FROM ({sources}) AS s{a} CROSS JOIN idx_reference x "
        f"WHERE x.type = {sql.bind(f.source_type)} AND x.id = s{a}.id AND x.param = {sql.bind(f.reference.code)} AND "
    )
    head += f"x.target_type = {alias}.type" if rtype is None else f"x.target_type = {sql.bind(rtype)}"
    return head + " AND x.url IS NULL)"


def _compartment(sql: Sql, f: CompartmentClause, rtype: str | None, alias: str) -> str:
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


# -- sorting -------------------------------------------------------------------------

def _sort_expression(sql: Sql, key: SortKey) -> str:
    d = key.param
    if d.column:
        return f"r.{_COLUMNS[d.column]}"
    compiler = kind(d.type)
    if compiler.sort is None:
        raise UnsupportedClause(f"sorting by {d.type}")
    column = compiler.sort[1] if key.descending else compiler.sort[0]
    # ascending sorts by the smallest value a resource has, descending by the largest
    aggregate = "MAX" if key.descending else "MIN"
    expression = (
        f"(SELECT {aggregate}({column}) FROM {compiler.table} x "
        f"WHERE x.type = r.type AND x.id = r.id AND x.param = {sql.bind(d.code)}"
    )
    if compiler.sort_rows is not None:
        expression += compiler.sort_rows(sql)
    return expression + ")"
