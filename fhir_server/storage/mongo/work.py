"""One MongoDB unit of work: the Store protocol's reads, writes, history and search.

A write unit of work has a session with an open multi-document transaction, and
every operation carries it, so what it stores becomes visible at commit, all of it,
or not at all (``transactions.py``). A read unit of work has no session.
"""

from __future__ import annotations

from contextlib import contextmanager

from pymongo.errors import DuplicateKeyError, OperationFailure

from fhir_server.search.index import IndexSet
from fhir_server.search.plan import SearchPlan
from fhir_server.storage.base import HistoryPage, HistoryQuery, ResourceVersion, SearchResult, VersionConflict, group_by_type
from fhir_server.storage.mongo.compile import MAX_FOLLOW_UP, FollowUpTooBroad, compile_filter
from fhir_server.storage.mongo.combos import derived
from fhir_server.storage.mongo.keyset import after_find, after_pipeline, order_for, position, visible_at
from fhir_server.storage.mongo.layout import (
    BODY_ONLY,
    GUARDS,
    current_update,
    history_document,
    index_document,
    key,
    to_version,
)
from fhir_server.storage.mongo.outbox import MongoOutbox
from fhir_server.storage.mongo.sort import compile_sort, sort_pipeline
from fhir_server.storage.mongo.tabulate import tabulate
from fhir_server.storage.tabulation import Tabulation
from fhir_server.storage.mongo.transactions import is_write_conflict

__all__ = ["MongoUnitOfWork"]

_CHUNK = 1000  # ids per $in when loading


class MongoUnitOfWork:
    def __init__(self, store, *, session):
        """``session``: the transaction's session (a write unit of work), or None (a read one)."""
        self._store = store
        self._resources = store.resources
        self._history = store.history
        self._session = session
        self._kw = {"session": session} if session is not None else {}

    @property
    def outbox(self) -> MongoOutbox:
        """The notification outbox, in this unit of work's transaction (if it writes)."""
        return MongoOutbox(self._store.db, self._session)

    # -- reads -------------------------------------------------------------------------
    def current(self, resource_type: str, id: str) -> ResourceVersion | None:
        doc = self._resources.find_one({"t": resource_type, "i": id}, BODY_ONLY, **self._kw)
        return to_version(doc) if doc is not None else None

    def version(self, resource_type: str, id: str, version_id: int) -> ResourceVersion | None:
        doc = self._history.find_one({"t": resource_type, "i": id, "v": version_id}, **self._kw)
        if doc is None:
            # data an earlier evi-fhir wrote on a standalone server, without transactions: a
            # process that died between its two writes left no history copy
            doc = self._resources.find_one({"t": resource_type, "i": id, "v": version_id}, BODY_ONLY, **self._kw)
        return to_version(doc) if doc else None

    def load(self, resource_type: str, ids: list[str]) -> list[ResourceVersion]:
        found: dict[str, ResourceVersion] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            for doc in self._resources.find({"t": resource_type, "i": {"$in": chunk}}, BODY_ONLY, **self._kw):
                found[doc["i"]] = to_version(doc)
        return [found[i] for i in ids if i in found and not found[i].deleted]

    def load_refs(self, refs: list[tuple[str, str]]) -> list[ResourceVersion]:
        by_type = group_by_type(refs)
        found = {(v.resource_type, v.id): v for t, ids in by_type.items() for v in self.load(t, ids)}
        return [found[r] for r in refs if r in found]

    def current_ids(self, resource_type: str, after: str | None, limit: int) -> list[str]:
        if limit <= 0:
            return []
        docs = self._resources.find(
            {"t": resource_type, "del": False, "i": {"$gt": after or ""}},
            {"_id": 0, "i": 1}, sort=[("i", 1)], limit=limit, **self._kw,
        )
        return [d["i"] for d in docs]

    def deleted_ids(self, resource_type: str, since: str, after: str | None, limit: int) -> list[str]:
        if limit <= 0:
            return []
        docs = self._resources.find(
            {"t": resource_type, "del": True, "lu": {"$gt": since}, "i": {"$gt": after or ""}},
            {"_id": 0, "i": 1}, sort=[("i", 1)], limit=limit, **self._kw,
        )
        return [d["i"] for d in docs]

    def guard(self, key: str) -> None:
        """Write the key's guard document in the transaction: two transactions that both
        write it conflict (WriteConflict), so only one commits. A read unit of work
        writes nothing, so there is nothing to serialize."""
        if self._session is not None:
            self._store.db[GUARDS].update_one({"_id": key}, {"$inc": {"n": 1}}, upsert=True, session=self._session)

    def generation(self, name: str) -> int:
        doc = self._store.counters.find_one({"_id": f"generation:{name}"}, **self._kw)
        return int(doc["n"]) if doc else 0

    def bump(self, name: str) -> None:
        self._store.counters.update_one({"_id": f"generation:{name}"}, {"$inc": {"n": 1}}, upsert=True, **self._kw)

    def newest_instant(self) -> str | None:
        doc = self._history.find_one({}, {"_id": 0, "lu": 1}, sort=[("lu", -1)], **self._kw)
        return doc["lu"] if doc else None

    # -- writes ------------------------------------------------------------------------
    def _writing(self, what: str) -> None:
        if self._session is None:
            raise RuntimeError(f"{what} in a read-only unit of work")

    def write(self, version: ResourceVersion, index: IndexSet | None) -> None:
        """Make ``version`` current (the race is decided here), then keep its copy in history."""
        self._writing("write")
        t, i, n = version.resource_type, version.id, version.version_id
        seq = self._store.next_seq()
        with _conflicts_as_version_conflict(t, i, n):
            # the shard key (t, i) in the filter: a sharded cluster routes the upsert to one shard
            self._resources.update_one(
                {"_id": key(t, i), "t": t, "i": i, "v": {"$lt": n}},
                current_update(version, seq, index), upsert=True, **self._kw,
            )
        with _conflicts_as_version_conflict(t, i, n):
            self._history.insert_one(history_document(version, seq), **self._kw)
        if n > 1:  # the previous version stopped being current now (for _at)
            self._history.update_one({"t": t, "i": i, "v": n - 1}, {"$min": {"end": version.last_updated}}, **self._kw)

    def reindex(self, resource_type: str, id: str, index: IndexSet) -> None:
        self._writing("reindex")
        selector = {"t": resource_type, "i": id, "del": False}
        # a version a concurrent transaction writes meanwhile conflicts (WriteConflict): 409, try again
        with _conflicts_as_version_conflict(resource_type, id, None):
            idx = index_document(index)
            self._resources.update_one(selector, {"$set": {"_idx": idx, **derived(resource_type, idx)}}, **self._kw)

    # -- history -----------------------------------------------------------------------
    def history(self, query: HistoryQuery) -> HistoryPage:
        selector: dict = {}
        if query.resource_type is not None:
            selector["t"] = query.resource_type
        if query.id is not None:
            selector["i"] = query.id
        bounds: dict = {}
        if query.since is not None:
            bounds["$gte"] = query.since
        if query.at is not None:
            # current during [low, high]: written by high, and not replaced by low
            low, high = query.at
            bounds["$lte"] = high
            selector["$or"] = [{"end": None}, {"end": {"$gt": low}}]
        if bounds:
            selector["lu"] = bounds
        if query.visible is not None:
            selector = {"$and": [selector, self._visible_keys(query.visible)]}
        total = self._history.count_documents(selector, **self._kw)
        if query.before_cursor is not None:
            selector["_id"] = {"$lt": query.before_cursor}
        docs = list(self._history.find(selector, sort=[("_id", -1)], limit=query.count + 1, **self._kw))
        more = len(docs) > query.count
        docs = docs[: query.count]
        return HistoryPage([to_version(d) for d in docs], total, docs[-1]["_id"] if more and docs else None)

    def _visible_keys(self, plan: SearchPlan) -> dict:
        """The history documents of resources ``plan`` finds: by type alone when that is all it
        asks, else by their (type, id), no more than MAX_FOLLOW_UP of them."""
        docs = self._resources.find(compile_filter(plan, self), {"_id": 0, "t": 1, "i": 1},
                                    limit=MAX_FOLLOW_UP + 1, **self._kw)
        keys = group_by_type((d["t"], d["i"]) for d in docs)
        if sum(len(ids) for ids in keys.values()) > MAX_FOLLOW_UP:
            raise FollowUpTooBroad("This history covers too many resources to filter by the access policy; "
                                   "ask for one type or one resource")
        branches = [{"t": t, "i": {"$in": ids}} for t, ids in keys.items()]
        return {"$or": branches} if branches else {"_id": {"$in": []}}

    def versions_since(self, after: int | None, limit: int) -> list[tuple[int, ResourceVersion]]:
        if limit <= 0:
            return []
        docs = self._history.find({"_id": {"$gt": after or 0}}, sort=[("_id", 1)], limit=limit, **self._kw)
        return [(d["_id"], to_version(d)) for d in docs]

    def statistics(self) -> dict[str, tuple[int, int]]:
        group = {"$group": {"_id": "$t", "n": {"$sum": 1}}}
        current = {d["_id"]: d["n"] for d in self._resources.aggregate([{"$match": {"del": False}}, group], **self._kw)}
        versions = {d["_id"]: d["n"] for d in self._history.aggregate([group], **self._kw)}
        return {t: (current.get(t, 0), versions[t]) for t in versions}

    # -- search ------------------------------------------------------------------------
    #: pages after the first start from a cursor (``after``) and leave out later creates
    #: (``high_water``): keyset.py
    keyset = True

    def high_water(self) -> int:
        """The write sequence now: resources numbered above it are created later."""
        doc = self._store.counters.find_one({"_id": "history"}, **self._kw)
        return int(doc["n"]) if doc else 0

    def count(self, plan: SearchPlan, cap: int | None = None, *, estimate: bool = False) -> int:
        selector = compile_filter(plan, self)
        options = {"limit": cap} if cap else {}
        return self._resources.count_documents(selector, **options, **self._kw)

    def search(
        self, plan: SearchPlan, *, with_total: bool, limit: int | None = None, offset: int | None = None,
        after: list | None = None, high_water: int | None = None,
    ) -> SearchResult:
        selector = compile_filter(plan, self)
        total = self._resources.count_documents(selector, **self._kw) if with_total else None
        limit = plan.count if limit is None else limit
        if limit <= 0:
            return SearchResult([], total)
        skip = plan.offset if offset is None else offset
        if high_water is not None:
            selector = _also(selector, visible_at(high_water))
        order = order_for(plan)
        if order is not None and order.find:
            if order.derived:
                selector = _also(selector, {order.field: {"$exists": True}})
            if after is not None:
                selector = _also(selector, after_find(order, after))
            shown = {"_id": 0, "t": 1, "i": 1, **({order.field: 1} if order.field else {})}
            docs = self._resources.find(selector, shown, sort=list(order.sort), skip=skip, limit=limit, **self._kw)
        elif order is None and (sort := compile_sort(plan)) is not None:
            docs = self._resources.find(
                selector, {"_id": 0, "t": 1, "i": 1}, sort=sort, skip=skip, limit=limit, **self._kw
            )
        else:
            cursor = after_pipeline(after, plan.sort[0].descending) if order is not None and after else None
            # outside transactions, let large sorts spill to disk (the default from MongoDB 6.0 on)
            options = self._kw or {"allowDiskUse": True}
            docs = self._resources.aggregate(sort_pipeline(plan, selector, skip, limit, cursor), **options)
        docs = list(docs)
        cursors = [position(order, d) for d in docs] if order is not None else None
        return SearchResult([(d["t"], d["i"]) for d in docs], total, cursors)

    def tabulate(self, tabulation: Tabulation) -> list[tuple]:
        return tabulate(self, tabulation)

    def aggregate(self, pipeline: list[dict]) -> list[dict]:
        """An aggregation on ``resources`` in this unit of work (large ones may spill to disk)."""
        return list(self._resources.aggregate(pipeline, **(self._kw or {"allowDiskUse": True})))

    # FollowUp: the queries chains and _has need, in this unit of work's session
    def ids(self, resource_type: str, filter: dict) -> list[str]:
        docs = self._resources.find(filter, {"_id": 0, "i": 1}, limit=MAX_FOLLOW_UP + 1, **self._kw)
        return [d["i"] for d in docs]

    def referenced(self, source_type: str, filter: dict, param: str, target_type: str | None) -> list[tuple[str, str]]:
        entry = {"r.p": param, "r.url": None, "r.ti": {"$ne": None}, "r.tt": target_type or {"$ne": None}}
        pipeline = [
            {"$match": filter},
            {"$project": {"_id": 0, "r": "$_idx.reference"}},
            {"$unwind": "$r"},
            {"$match": entry},
            {"$group": {"_id": {"tt": "$r.tt", "ti": "$r.ti"}}},
            {"$limit": MAX_FOLLOW_UP + 1},
        ]
        return [(d["_id"]["tt"], d["_id"]["ti"]) for d in self._resources.aggregate(pipeline, **self._kw)]

    # -- includes ----------------------------------------------------------------------
    def references_from(self, source_type, ids, param, target_type) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            docs = self._resources.find(
                {"t": source_type, "i": {"$in": chunk}}, {"_id": 0, "i": 1, "_idx.reference": 1}, **self._kw
            )
            entries = {d["i"]: (d.get("_idx") or {}).get("reference") or () for d in docs}
            for i in chunk:
                for r in entries.get(i, ()):
                    if r.get("url") is not None or r.get("tt") is None or r.get("ti") is None:
                        continue
                    if (param is None or r["p"] == param) and (target_type is None or r["tt"] == target_type):
                        out.append((r["tt"], r["ti"]))
        return list(dict.fromkeys(out))

    def references_to(self, source_type, param, targets) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        by_type = group_by_type(targets)
        for target_type, ids in by_type.items():
            for start in range(0, len(ids), _CHUNK):
                entry = {"tt": target_type, "ti": {"$in": ids[start : start + _CHUNK]}, "url": None}
                if param is not None:
                    entry["p"] = param
                docs = self._resources.find(
                    {"t": source_type, "_idx.reference": {"$elemMatch": entry}},
                    {"_id": 0, "t": 1, "i": 1}, sort=[("i", 1)], **self._kw,
                )
                out.extend((d["t"], d["i"]) for d in docs)
        return list(dict.fromkeys(out))


def _also(selector: dict, condition: dict) -> dict:
    return {**selector, "$and": [*selector.get("$and", ()), condition]}


@contextmanager
def _conflicts_as_version_conflict(t: str, i: str, n: int | None):
    """A lost race (duplicate version, or a transaction write conflict) is a VersionConflict."""
    try:
        yield
    except DuplicateKeyError:
        raise VersionConflict(f"{t}/{i} version {n} already exists") from None
    except OperationFailure as exc:
        if is_write_conflict(exc):
            raise VersionConflict(f"{t}/{i} was changed by a concurrent transaction") from None
        raise
