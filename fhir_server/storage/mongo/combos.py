"""Fields derived at write time for the searches users run all day (issue 16), declared as data.

MongoDB sorts a ``find`` by walking an index only on a field that holds one value per
document, and a compound index may hold at most one array. The ``_idx`` arrays hold
every parameter's values together, so neither "the newest ``authored-on`` of a Task"
nor "this owner's requested intake Tasks" is an index key there. Each current
document of a declared type therefore also carries (computed from its ``_idx`` in
``derived``, so a migration can recompute them from stored documents alone):

- ``_sh`` / ``_sl``: the type's sort date (``SORT_DATES``) as R4 search.html#_sort reads
  it: the largest ``high`` (descending sorts), the smallest ``low`` (ascending sorts).
  Without a value: ``_sh`` null (MongoDB puts null after every date when descending) and
  ``_sl`` ``NO_LOW`` (after every date when ascending): resources without a value come
  last in either direction, as on SQLite.
- ``_cb``: the combination keys (``COMBOS``): one string per combination of the key
  parameters' values (a Task with two codes has two). The worklist's filter names one
  key, and the index ``(t, _cb, _sh, i)`` holds its Tasks newest first: a page is one
  index range. ``_cb`` is the only array of that index, so MongoDB's rule against
  indexing two parallel arrays is kept.

Token keys hold the code alone (a system-qualified value is still checked through
``_idx``), reference keys ``Type/id`` (or the url). A combination serves a search only
when each of its parameters has one plain clause with one value (``combo_key``).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import orjson

from fhir_server.search.params.date import DateValue
from fhir_server.search.params.reference import ReferenceValue
from fhir_server.search.params.token import TokenValue
from fhir_server.search.plan import Clause, SearchPlan

__all__ = [
    "Combo", "COMBOS", "SORT_DATES", "NO_LOW", "DERIVED", "derived", "combo_key", "sort_date", "narrowing",
    "fingerprint",
]


@dataclass(frozen=True)
class Combo:
    resource_type: str
    #: (parameter code, "token" | "reference") keys, in key order
    keys: tuple[tuple[str, str], ...]


#: one combination per type at most (its documents carry one ``_cb``)
COMBOS: MappingProxyType[str, Combo] = MappingProxyType({
    # the intake worklist (domain.md §3): an EVI unit's requested intake Tasks, newest first
    "Task": Combo("Task", (("owner", "reference"), ("status", "token"), ("code", "token"))),
    # a service's (or a practitioner's) appointments of a day
    "Appointment": Combo("Appointment", (("actor", "reference"),)),
})

#: the date parameter of a type whose sort value is kept on the document (``_sh``, ``_sl``)
#: (every type of ``COMBOS`` has one: the combination's index is sorted by it)
SORT_DATES: MappingProxyType[str, str] = MappingProxyType({
    "ServiceRequest": "authored",
    "Task": "authored-on",
    "Appointment": "date",
    "Slot": "start",
})

#: ``_sl`` of a resource without a value: above every instant ("9999-..."), so last ascending
NO_LOW = "~"
#: the derived fields (unset on a deleted resource)
DERIVED = ("_sh", "_sl", "_cb")


def fingerprint() -> str:
    """Changes when the declarations do: stored documents then need their fields again."""
    return repr((sorted(COMBOS.items()), sorted(SORT_DATES.items()), NO_LOW))


def _entry_key(kind: str, e: dict) -> str | None:
    if kind == "token":
        return e.get("c")
    if e.get("ti") is not None and e.get("tt") is not None:
        return f"{e['tt']}/{e['ti']}"
    return e.get("url")


def derived(resource_type: str, idx: dict) -> dict:
    """The derived fields of a current document whose ``_idx`` is ``idx`` ({} for other types)."""
    code = SORT_DATES.get(resource_type)
    if code is None:
        return {}
    dates = [e for e in idx.get("date", ()) if e["p"] == code]
    highs = [e["hi"] for e in dates if e.get("hi") is not None]
    lows = [e["lo"] for e in dates if e.get("lo") is not None]
    out = {"_sh": max(highs) if highs else None, "_sl": min(lows) if lows else NO_LOW}
    combo = COMBOS.get(resource_type)
    if combo is not None:
        lists = []
        for param, kind in combo.keys:
            found = {_entry_key(kind, e) for e in idx.get(kind, ()) if e["p"] == param}
            lists.append(sorted(k for k in found if k is not None))
        out["_cb"] = [_key(ks) for ks in _product(lists)]
    return out


def _product(lists: list[list[str]]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = [()]
    for values in lists:
        out = [(*head, v) for head in out for v in values]
    return out


def _key(values: tuple[str, ...]) -> str:
    # JSON: unambiguous whatever the codes and ids contain
    return orjson.dumps(list(values)).decode()


def _plain(plan: SearchPlan, code: str) -> Clause | None:
    """The plan's one plain clause on ``code`` with one value, if it has exactly one."""
    found = [c for c in plan.clauses if isinstance(c, Clause) and c.param.code == code and not c.param.column]
    if len(found) != 1 or found[0].modifier is not None or found[0].chain is not None or len(found[0].values) != 1:
        return None
    return found[0]


def _value_key(kind: str, v) -> str | None:
    if kind == "token":
        return v.code if isinstance(v, TokenValue) else None
    if not isinstance(v, ReferenceValue):
        return None
    if v.url is not None:
        return v.url
    return f"{v.target_type}/{v.target_id}" if v.target_type and v.target_id else None


def combo_key(plan: SearchPlan) -> str | None:
    """The ``_cb`` key every match of ``plan`` carries, when its type's combination serves it."""
    combo = COMBOS.get(plan.resource_type or "")
    if combo is None:
        return None
    values = []
    for param, kind in combo.keys:
        clause = _plain(plan, param)
        value = _value_key(kind, clause.values[0]) if clause is not None else None
        if value is None:
            return None
        values.append(value)
    return _key(tuple(values))


def sort_date(plan: SearchPlan) -> tuple[str, bool] | None:
    """(field, descending) when ``plan`` sorts by its type's sort date alone."""
    if len(plan.sort) != 1 or plan.sort[0].param.code != SORT_DATES.get(plan.resource_type or ""):
        return None
    descending = plan.sort[0].descending
    return ("_sh" if descending else "_sl"), descending


def narrowing(plan: SearchPlan) -> list[dict]:
    """Conditions on the derived fields that every match of ``plan`` meets (so that an
    index on them can bound the search); the clauses themselves still decide."""
    out: list[dict] = []
    key = combo_key(plan)
    if key is not None:
        out.append({"_cb": key})
    code = SORT_DATES.get(plan.resource_type or "")
    for clause in plan.clauses:
        if not isinstance(clause, Clause) or clause.param.code != code or clause.modifier or clause.chain:
            continue
        bounds = [_lowest_high(v) for v in clause.values]
        if bounds and None not in bounds:
            out.append({"_sh": {"$gte": min(bounds)}})
    return out


def _lowest_high(v) -> str | None:
    """A bound the largest ``high`` of a match reaches: ``eq``/``ge`` need an entry with
    ``high >= low`` of the value (``low >= v.low`` and ``low <= high``), ``gt``/``sa`` one
    with ``high > v.high``; other prefixes give none."""
    if not isinstance(v, DateValue):
        return None
    if v.prefix in ("eq", "ge"):
        return v.low
    if v.prefix in ("gt", "sa"):
        return v.high
    return None
