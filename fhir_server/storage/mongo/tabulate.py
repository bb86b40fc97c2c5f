"""Tabulation on MongoDB (``storage/tabulation.py``): aggregation pipelines on ``resources``.

One pipeline reads the columns of the counted resources themselves; each column that
follows references (``Follow``, ``Referrers``) gets a pipeline of its own, which walks
them with ``$lookup`` and ``$unwind`` and ends in ``{$group: {_id: "$i", v: {$min: …}}}``:
one small document per counted resource. The store then puts each resource's values
together and counts the combinations (``Coalesce`` and ``NotAfter`` are evaluated there,
on the values the pipelines computed). Pipelines per column keep every ``$unwind`` to
the documents of one reference path, so their rows never multiply across columns.

``Follow`` looks targets up by ``_id`` (``Type/id``); ``Referrers`` by the referencing
entries' ``_idx.reference.ti`` (index ``idx_reference_id``), and keeps only the sources
whose entry names this resource's type and id under the parameter. Client text only
appears as values, as in ``compile.py``. The stages used are those mongomock runs too
(no ``$reduce``, no ``$lookup`` sub-pipelines, ``$min`` over a field path only).
"""

from __future__ import annotations

from collections import Counter

from fhir_server.storage.mongo.compile import compile_filter
from fhir_server.storage.mongo.layout import RESOURCES
from fhir_server.storage.tabulation import (
    Coalesce,
    Follow,
    Id,
    NotAfter,
    Referrers,
    Tabulation,
    Updated,
    Value,
    check_tabulation,
)

__all__ = ["tabulate"]

#: what a Value reads of one ``_idx`` entry
_FIELD = {"code": "c", "low": "lo", "high": "hi"}


def tabulate(uow, tabulation: Tabulation) -> list[tuple]:
    check_tabulation(tabulation)
    plan = tabulation.plan
    match = {"$match": compile_filter(plan, uow)}
    columns = _columns_of(tabulation.columns)
    simple = [c for c in columns if isinstance(c, (Id, Updated, Value))]
    values: dict[str, dict] = {}
    named = {f"_a{n}": c for n, c in enumerate(simple)}
    project = {f"c{n}": _leaf(c, "", f"_a{n}") for n, c in enumerate(simple)}
    for doc in _aggregate(uow, [match, *_value_stages(named, ""), {"$project": {"_id": 0, "i": 1, **project}}]):
        values[doc["i"]] = {c: doc.get(f"c{n}") for n, c in enumerate(simple)}
    for column in columns:
        if column in simple:
            continue
        for doc in _aggregate(uow, [match, *_path(column, plan.resource_type, ""),
                                    {"$group": {"_id": "$i", "v": {"$min": "$_v"}}}]):
            if doc["_id"] in values:
                values[doc["_id"]][column] = doc.get("v")
    counts = Counter(tuple(_evaluate(e, row) for e in tabulation.columns) for row in values.values())
    return [(*key, n) for key, n in counts.items()]


def _aggregate(uow, pipeline: list) -> list[dict]:
    return uow.aggregate(pipeline)


def _columns_of(expressions) -> list:
    """The distinct columns the expressions read, in order."""
    out: list = []
    for e in expressions:
        parts = e.columns if isinstance(e, Coalesce) else (e.left, e.right) if isinstance(e, NotAfter) else (e,)
        for column in parts:
            if column not in out:
                out.append(column)
    return out


def _evaluate(expression, row: dict):
    if isinstance(expression, Coalesce):
        return next((v for c in expression.columns if (v := row.get(c)) is not None), None)
    if isinstance(expression, NotAfter):
        left, right = row.get(expression.left), row.get(expression.right)
        return 1 if left is not None and right is not None and left <= right else 0
    return row.get(expression)


# -- one pipeline per column that follows references ----------------------------------


def _path(column, current_type: str, at: str, depth: int = 0) -> list[dict]:
    """Stages that leave the column's value of each reached document in ``_v``."""
    if isinstance(column, Follow):
        here = f"_f{depth}"
        keys = _entries(f"{at}_idx.reference", _reference_condition(column.param, column.target_type))
        return [
            {"$addFields": {f"_k{depth}": {"$map": {"input": keys, "as": "e",
                                                     "in": {"$concat": ["$$e.tt", "/", "$$e.ti"]}}}}},
            {"$lookup": {"from": RESOURCES, "localField": f"_k{depth}", "foreignField": "_id", "as": here}},
            {"$unwind": f"${here}"},
            {"$match": {f"{here}.del": False}},
            *_path(column.column, column.target_type, f"{here}.", depth + 1),
        ]
    if isinstance(column, Referrers):
        here = f"_f{depth}"
        condition = {"$and": [*_reference_condition(column.param, current_type)["$and"],
                              {"$eq": ["$$e.ti", f"${at}i"]}]}
        match: dict = {f"{here}.t": column.source_type, f"{here}.del": False, f"_ok{depth}": True}
        tokens = [_token_match(here, w) for w in column.where]
        return [
            {"$lookup": {"from": RESOURCES, "localField": f"{at}i", "foreignField": "_idx.reference.ti", "as": here}},
            {"$unwind": f"${here}"},
            {"$addFields": {f"_ok{depth}": {"$gt": [{"$size": _entries(f"{here}._idx.reference", condition)}, 0]}}},
            {"$match": {"$and": [match, *tokens]} if tokens else match},
            *_path(column.column, column.source_type, f"{here}.", depth + 1),
        ]
    return [*_value_stages({"_a": column}, at), {"$addFields": {"_v": _leaf(column, at, "_a")}}]


def _token_match(here: str, condition) -> dict:
    entry: dict = {"p": condition.param, "c": {"$in": list(condition.codes)}}
    if condition.system is not None:
        entry["s"] = condition.system
    found = {f"{here}._idx.token": {"$elemMatch": entry}}
    return {f"{here}._idx.token": {"$not": {"$elemMatch": entry}}} if condition.negate else found


# -- values of one document -----------------------------------------------------------


def _reference_condition(param: str, target_type: str | None) -> dict:
    conditions = [{"$eq": ["$$e.p", param]}, {"$eq": ["$$e.url", None]}, {"$ne": ["$$e.tt", None]}]
    if target_type is not None:
        conditions.append({"$eq": ["$$e.tt", target_type]})
    return {"$and": conditions}


def _entries(path: str, condition: dict) -> dict:
    return {"$filter": {"input": {"$ifNull": [f"${path}", []]}, "as": "e", "cond": condition}}


def _value_stages(named: dict, at: str) -> list[dict]:
    """``Value`` columns become arrays first (``named``: field name -> column): ``$min`` reads
    an array only from a field."""
    fields = {name: _values(column, at) for name, column in named.items() if isinstance(column, Value)}
    return [{"$addFields": fields}] if fields else []


def _values(value: Value, at: str) -> dict:
    if value.kind == "reference":
        condition = _reference_condition(value.param, value.target_type)
        return {"$map": {"input": _entries(f"{at}_idx.reference", condition), "as": "e",
                         "in": {"$concat": ["$$e.tt", "/", "$$e.ti"]}}}
    conditions = [{"$eq": ["$$e.p", value.param]}]
    if value.kind == "token" and value.system is not None:
        conditions.append({"$eq": ["$$e.s", value.system]})
    field = _FIELD[value.field]
    return {"$map": {"input": _entries(f"{at}_idx.{value.kind}", {"$and": conditions}), "as": "e",
                     "in": f"$$e.{field}"}}


def _leaf(column, at: str, array: str):
    """The value of an Id, Updated or Value (whose entries ``_value_stages`` put in ``array``)."""
    if isinstance(column, Id):
        return f"${at}i"
    if isinstance(column, Updated):
        return f"${at}lu"
    return {"$min": f"${array}"}
