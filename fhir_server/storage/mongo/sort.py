"""``_sort`` on MongoDB: a plain ``find`` sort when every key is a column (``_id``,
``_lastUpdated``: served by the (t, i) and (t, lu, i) indexes), else an
aggregation pipeline that computes, per resource, the smallest (ascending) or
largest (descending) value of the parameter, like SQLite's MIN/MAX subquery.
Resources without a value come last in either direction; (type, id) breaks ties.

Parameter codes enter the expressions through ``$literal``: in an aggregation
expression a string that starts with ``$`` would be read as a field path.
"""

from __future__ import annotations

from fhir_server.search.plan import SearchPlan, SortKey
from fhir_server.storage.mongo.compile import COLUMNS
from fhir_server.storage.mongo.values import UnsupportedClause, kind

__all__ = ["compile_sort", "sort_pipeline"]


def compile_sort(plan: SearchPlan) -> list[tuple[str, int]] | None:
    """A plain ``find`` sort when every key is a column, else None (use ``sort_pipeline``)."""
    if any(not k.param.column for k in plan.sort):
        return None
    keys = [(COLUMNS[k.param.column], -1 if k.descending else 1) for k in plan.sort]
    return _tie_break(plan.sort, keys)


def _tie_break(sort: tuple[SortKey, ...], keys: list) -> list:
    fields = {f for f, _ in keys}
    if not any(k.param.column == "id" for k in sort):
        keys += [(f, 1) for f in ("t", "i") if f not in fields]  # the primary key breaks ties
    elif "t" not in fields:
        keys.append(("t", 1))
    return keys


def sort_pipeline(plan: SearchPlan, match: dict, skip: int, limit: int, after: dict | None = None) -> list[dict]:
    """``$match``, then per parameter key the smallest (ascending) or largest
    (descending) value of that parameter; resources without one come last. ``after``:
    a condition on the computed ``_s0``/``_n0`` (keyset.py), applied before the sort;
    rows come with those fields."""
    computed: dict = {}
    keys: list = []
    for n, key in enumerate(plan.sort):
        d = key.param
        direction = -1 if key.descending else 1
        if d.column:
            keys.append((COLUMNS[d.column], direction))
            continue
        compiler = kind(d.type)
        if compiler.sort is None:
            raise UnsupportedClause(f"sorting by {d.type}")
        value = compiler.sort_value(compiler.sort[1] if key.descending else compiler.sort[0])
        cond = {"$eq": ["$$e.p", {"$literal": d.code}]}
        if compiler.sort_rows is not None:
            cond = {"$and": [cond, compiler.sort_rows]}
        entries = {"$filter": {"input": {"$ifNull": [f"$_idx.{d.type}", []]}, "as": "e", "cond": cond}}
        computed[f"_s{n}"] = {"$map": {"input": entries, "as": "e", "in": value}}
        keys += [(f"_n{n}", 1), (f"_s{n}", direction)]
    stages: list[dict] = [{"$match": match}]
    if computed:
        aggregate = {f"_s{n}": {"$max" if plan.sort[n].descending else "$min": f"$_s{n}"}
                     for n in range(len(plan.sort)) if f"_s{n}" in computed}
        missing = {f"_n{n}": {"$eq": [{"$ifNull": [f"$_s{n}", None]}, None]} for n in range(len(plan.sort))
                   if f"_s{n}" in computed}
        stages += [{"$addFields": computed}, {"$addFields": aggregate}, {"$addFields": missing}]
    if after is not None:
        stages.append({"$match": after})
    shown = {"_id": 0, "t": 1, "i": 1, **{f: 1 for n in range(len(plan.sort)) for f in (f"_s{n}", f"_n{n}")
                                          if f"_s{n}" in computed}}
    stages += [
        {"$sort": dict(_tie_break(plan.sort, keys))},
        {"$skip": skip},
        {"$limit": limit},
        {"$project": shown},
    ]
    return stages
