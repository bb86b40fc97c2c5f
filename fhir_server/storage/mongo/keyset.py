"""Keyset paging on MongoDB: each row's position, and "after this position" as a filter.

A position is ``[phase, value, type, id]`` as on SQLite (storage/sqlite/planner.py):
phase 0 for a row with a sort value (or a search without ``_sort``: value None), 1 for
one without (those come last, by type and id). A later page adds "after the cursor"
to the filter, so it reads from the cursor on instead of skipping the rows before.

``order_for`` decides how a plan's rows come in order, from the plan alone (so the
pages of one search always agree):

- ``find`` on a field of the document, walked in an index: the default order (t, i),
  ``_id``, ``_lastUpdated``, and the type's sort date (``_sh``/``_sl``, combos.py);
- the ``sort.py`` pipeline for one other parameter key (its computed ``_s0``/``_n0``);
- several keys: no positions (``None``): later pages count an offset, as on SQLite.

``high_water``: resources whose number ``n`` (their first write's sequence number,
``layout.py``) is above the mark were created after the search started and are left
out; documents without ``n`` (written before it existed) count as old.
"""

from __future__ import annotations

from dataclasses import dataclass

from fhir_server.search.plan import SearchPlan
from fhir_server.storage.mongo.combos import NO_LOW, sort_date
from fhir_server.storage.mongo.compile import COLUMNS
from fhir_server.storage.mongo.values import kind

__all__ = ["Order", "order_for", "after_find", "after_pipeline", "position", "visible_at"]


@dataclass(frozen=True)
class Order:
    #: True: a ``find`` with ``sort``; False: the ``sort.py`` pipeline (``_s0``/``_n0``)
    find: bool
    sort: tuple[tuple[str, int], ...] = ()
    #: the document field holding the position value (None: the order is type, id)
    field: str | None = None
    descending: bool = False
    #: what ``field`` holds for a resource without a value (``_NEVER_MISSING``: always has one)
    missing: object = None
    #: the plan may return several types (type breaks ties before id)
    typed: bool = True
    #: a derived field: the filter names ``{field: {$exists: true}}`` so that its partial
    #: index (layout.py) qualifies
    derived: bool = False


_NEVER_MISSING = object()


def order_for(plan: SearchPlan) -> Order | None:
    """How the rows of ``plan`` come in order, or None when they have no positions."""
    typed = plan.resource_type is None
    tie = (("t", 1), ("i", 1)) if typed else (("i", 1),)
    if not plan.sort:
        return Order(True, (("t", 1), ("i", 1)), typed=typed)
    if len(plan.sort) != 1:
        return None
    key = plan.sort[0]
    direction = -1 if key.descending else 1
    if key.param.column:
        field = COLUMNS[key.param.column]
        sort = ((field, direction), ("t", 1)) if field == "i" else ((field, direction), *tie)
        return Order(True, sort, field, key.descending, _NEVER_MISSING, typed)
    date = sort_date(plan)
    if date is not None:
        field, descending = date
        return Order(True, ((field, direction), ("i", 1)), field, descending, None if descending else NO_LOW, False, True)
    if kind(key.param.type).sort is None:
        return None
    return Order(False, (), "_s0", key.descending, None, True)


def position(order: Order, doc: dict) -> list:
    """The position ``[phase, value, type, id]`` of one returned document."""
    t, i = doc["t"], doc["i"]
    if order.field is None:
        return [0, None, t, i]
    if not order.find:
        return [1, None, t, i] if doc.get("_n0") else [0, doc["_s0"], t, i]
    value = doc.get(order.field)
    if order.missing is not _NEVER_MISSING and value == order.missing:
        return [1, None, t, i]
    return [0, value, t, i]


def _past(t: str, i: str, typed: bool) -> dict:
    """(type, id) after (t, i)."""
    if typed:
        return {"$or": [{"t": {"$gt": t}}, {"t": t, "i": {"$gt": i}}]}
    return {"i": {"$gt": i}}


def after_find(order: Order, cursor: list) -> dict:
    """The ``find`` filter condition of the rows after ``cursor``."""
    phase, value, t, i = cursor
    if order.field is None:
        return _past(t, i, order.typed)
    field, op = order.field, "$lt" if order.descending else "$gt"
    if phase == 1:
        return {"$and": [{field: order.missing}, _past(t, i, order.typed)]}
    branches = [{field: {op: value}}, {"$and": [{field: value}, _past(t, i, order.typed)]}]
    if order.descending and order.missing is None:  # null sorts below every value
        branches.append({field: None})
    return {"$or": branches}


def after_pipeline(cursor: list, descending: bool) -> dict:
    """The pipeline condition (on the computed ``_s0``, ``_n0``) of the rows after ``cursor``."""
    phase, value, t, i = cursor
    past = _past(t, i, True)
    if phase == 1:
        return {"$and": [{"_n0": True}, past]}
    op = "$lt" if descending else "$gt"
    return {"$or": [{"_n0": True}, {"_s0": {op: value}}, {"$and": [{"_s0": value}, past]}]}


def visible_at(high_water: int) -> dict:
    """Resources created by the time ``high_water`` was read (documents without a number too)."""
    return {"n": {"$not": {"$gt": high_water}}}
