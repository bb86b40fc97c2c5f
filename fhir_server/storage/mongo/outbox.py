"""The notification outbox (``storage.outbox``) of a MongoDB store: two collections of the
main database, written with the unit of work's session, so an event commits or rolls back
with the transaction of the write that caused it.

Stream, ``notify_streams._id = name``::

    {_id, topic, criteria: [...], owner, status, heartbeat, numbered, delivered, attempts,
     next_attempt, failing_since, last_error, last_success, last_sent, lease_owner, lease_until}

Event, ``notify_events._id`` an ObjectId (the order of appending within a process; across
processes an order, which is all numbering needs)::

    {_id, s: stream, n: number or null, topic, ft, fi, fv: focus type/id/version, at}

Appending inserts a new document only, so concurrent writers never conflict over a
stream; numbering and leasing update the stream document, so two processes doing either
at once conflict (WriteConflict) and one of them tries again later.
"""

from __future__ import annotations

from bson import ObjectId
from pymongo import ASCENDING, ReturnDocument
from pymongo import IndexModel

from fhir_server.storage.outbox import STREAM_STATE, Event, Stream, StreamConfig

__all__ = ["MongoOutbox", "STREAMS", "EVENTS", "OUTBOX_INDEXES"]

STREAMS = "notify_streams"
EVENTS = "notify_events"
OUTBOX_INDEXES = [IndexModel([("s", ASCENDING), ("n", ASCENDING)], name="stream_number")]

_CONFIG = ("topic", "criteria", "owner", "status", "heartbeat")
_FRESH = {"numbered": 0, "delivered": 0, "attempts": 0, "next_attempt": 0.0, "failing_since": None,
          "last_error": None, "last_success": None, "last_sent": None, "lease_owner": None, "lease_until": 0.0}
_RESTART = {"attempts": 0, "next_attempt": 0.0, "failing_since": None, "last_error": None}


def _stream(doc: dict) -> Stream:
    config = StreamConfig(doc["_id"], doc["topic"], tuple(doc.get("criteria") or ()), doc.get("owner"),
                          doc["status"], doc.get("heartbeat"))
    return Stream(config, **{k: doc.get(k, v) for k, v in _FRESH.items()})


class MongoOutbox:
    def __init__(self, db, session):
        self._streams = db[STREAMS]
        self._events = db[EVENTS]
        self._kw = {"session": session} if session is not None else {}

    def save_stream(self, config: StreamConfig, *, restart: bool = False) -> None:
        values = {"topic": config.topic, "criteria": list(config.criteria), "owner": config.owner,
                  "status": config.status, "heartbeat": config.heartbeat}
        if restart:
            values.update(_RESTART)
        fresh = {k: v for k, v in _FRESH.items() if k not in values}
        self._streams.update_one({"_id": config.name}, {"$set": values, "$setOnInsert": fresh}, upsert=True,
                                 **self._kw)

    def drop_stream(self, name: str) -> None:
        self._events.delete_many({"s": name}, **self._kw)
        self._streams.delete_one({"_id": name}, **self._kw)

    def stream(self, name: str) -> Stream | None:
        doc = self._streams.find_one({"_id": name}, **self._kw)
        return _stream(doc) if doc else None

    def streams(self, statuses: tuple[str, ...] | None = None) -> list[Stream]:
        selector = {} if statuses is None else {"status": {"$in": list(statuses)}}
        return [_stream(d) for d in self._streams.find(selector, sort=[("_id", ASCENDING)], **self._kw)]

    def append(self, stream: str, topic: str, focus: tuple[str, str, int], at: str) -> None:
        ftype, fid, fversion = focus
        self._events.insert_one({"_id": ObjectId(), "s": stream, "n": None, "topic": topic, "ft": ftype, "fi": fid,
                                 "fv": fversion, "at": at}, **self._kw)

    def number(self, stream: str) -> int:
        doc = self._streams.find_one({"_id": stream}, {"numbered": 1}, **self._kw)
        if doc is None:  # the stream is gone: its late events have no one to go to
            self._events.delete_many({"s": stream, "n": None}, **self._kw)
            return 0
        last = int(doc.get("numbered", 0))
        ids = [d["_id"] for d in self._events.find({"s": stream, "n": None}, {"_id": 1},
                                                    sort=[("_id", ASCENDING)], **self._kw)]
        if not ids:
            return last
        for i, event_id in enumerate(ids, 1):
            self._events.update_one({"_id": event_id}, {"$set": {"n": last + i}}, **self._kw)
        last += len(ids)
        self._streams.update_one({"_id": stream}, {"$set": {"numbered": last}}, **self._kw)
        return last

    def unnumbered(self) -> dict[str, int]:
        pipeline = [{"$match": {"n": None}}, {"$group": {"_id": "$s", "count": {"$sum": 1}}}]
        return {d["_id"]: d["count"] for d in self._events.aggregate(pipeline, **self._kw)}

    def events(self, stream: str, first: int, last: int | None, limit: int) -> list[Event]:
        bounds = {"$gte": max(first, 1)}
        if last is not None:
            bounds["$lte"] = last
        docs = self._events.find({"s": stream, "n": bounds}, sort=[("n", ASCENDING)], limit=limit, **self._kw)
        return [Event(stream, d["n"], d["topic"], d["ft"], d["fi"], d["fv"], d["at"]) for d in docs]

    def claim(self, owner: str, now: float, until: float, limit: int) -> list[Stream]:
        due = {"$or": [
            {"status": "requested"},
            {"status": "active", "next_attempt": {"$lte": now}, "$expr": {"$lt": ["$delivered", "$numbered"]}},
            {"status": "active", "heartbeat": {"$ne": None},
             "$expr": {"$lte": [{"$add": [{"$ifNull": ["$last_sent", 0]}, "$heartbeat"]}, now]}},
        ]}
        free = {"lease_until": {"$lte": now}}
        claimed = []
        while len(claimed) < limit:
            # one document at a time, each an atomic test-and-set of its lease
            doc = self._streams.find_one_and_update(
                {"$and": [due, free, {"_id": {"$nin": [s.name for s in claimed]}}]},
                {"$set": {"lease_owner": owner, "lease_until": until}},
                sort=[("next_attempt", ASCENDING), ("_id", ASCENDING)], return_document=ReturnDocument.AFTER,
                **self._kw,
            )
            if doc is None:
                break
            claimed.append(_stream(doc))
        return claimed

    def settle(self, name: str, owner: str, **state) -> bool:
        unknown = set(state) - STREAM_STATE
        if unknown:
            raise ValueError(f"not delivery state: {', '.join(sorted(unknown))}")
        result = self._streams.update_one(
            {"_id": name, "lease_owner": owner}, {"$set": {**state, "lease_owner": None, "lease_until": 0.0}}, **self._kw
        )
        return result.matched_count == 1
