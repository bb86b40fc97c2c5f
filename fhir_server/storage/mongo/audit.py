"""The PDL access log (``storage.audit``) in the ``audit`` collection, apart from the
resources and their search values; the last purge's anchor in ``audit_anchor``.

One event per document, ``_id`` its sequence number::

    {_id: 42, p: "<patient id>" | null, r: "2026-...Z", c: "<chain value>", b: <AuditEvent JSON, bytes>}

One sequence per database across processes without a lock: an append reads the last
event, seals its entries after it and inserts them in order; when another process took
one of those numbers first, the unique ``_id`` refuses the insert at that entry, and the
rest are sealed again after the new last event. Every event stored was sealed after the
event that really precedes it, so the chain holds. Writes with write concern
``majority``: an append that returned survives the loss of the primary. Two indexes
besides ``_id``, for the log's two queries: (p, r, _id) and (r, _id).
"""

from __future__ import annotations

from typing import Sequence

from bson import Binary
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import BulkWriteError
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from fhir_server.storage.audit import GENESIS, AuditAnchor, AuditEntry, AuditQuery, AuditRow, Seal

__all__ = ["MongoAuditStore", "AUDIT", "AUDIT_ANCHOR"]

AUDIT = "audit"
AUDIT_ANCHOR = "audit_anchor"
_INDEXES = [
    IndexModel([("p", ASCENDING), ("r", ASCENDING), ("_id", ASCENDING)], name="patient_time"),
    IndexModel([("r", ASCENDING), ("_id", ASCENDING)], name="time"),
]
_DUPLICATE_KEY = 11000
#: appends that lose the race this many times in a row give up (other processes advance each time)
_ATTEMPTS = 1000


def _row(doc: dict) -> AuditRow:
    return AuditRow(int(doc["_id"]), doc.get("p"), doc["r"], doc["c"], bytes(doc["b"]))


class MongoAuditStore:
    #: every append is a network round trip, waited for off the event loop; the log's
    #: durability is the replica set's (write concern majority), not a local file's
    journaled = False

    def __init__(self, database):
        concerns = {"write_concern": WriteConcern("majority"), "read_concern": ReadConcern("majority")}
        self._events = database[AUDIT].with_options(**concerns)
        self._anchors = database[AUDIT_ANCHOR].with_options(**concerns)
        self._events.create_indexes(_INDEXES)

    def recover(self, seal: Seal) -> None:
        """Nothing is ever pending outside the collection."""

    def start(self, seal: Seal) -> None:
        """Appends need nothing started."""

    def journal(self, entries: Sequence[AuditEntry]) -> None:
        raise NotImplementedError("the MongoDB access log is written by append")

    def append(self, entries: Sequence[AuditEntry], seal: Seal) -> list[AuditRow]:
        stored: list[AuditRow] = []
        remaining = list(entries)
        for _ in range(_ATTEMPTS):
            if not remaining:
                return stored
            seq, chain = self._head()
            rows = []
            for entry in remaining:
                seq += 1
                chain, body = seal(entry.content, seq, chain)
                rows.append(AuditRow(seq, entry.patient, entry.recorded, chain, body))
            # outside any transaction: an event belongs to no unit of work
            try:
                self._events.insert_many(
                    [{"_id": r.seq, "p": r.patient, "r": r.recorded, "c": r.chain, "b": Binary(r.body)} for r in rows],
                    ordered=True,
                )
                return stored + rows
            except BulkWriteError as exc:
                if any(e.get("code") != _DUPLICATE_KEY for e in exc.details.get("writeErrors", ())):
                    raise
                done = exc.details.get("nInserted", 0)  # the ones before the collision are in
                stored.extend(rows[:done])
                remaining = remaining[done:]
        raise RuntimeError(f"the access log's append lost the race for a sequence number {_ATTEMPTS} times")

    def _head(self) -> tuple[int, str]:
        last = self._events.find_one({}, {"c": 1}, sort=[("_id", DESCENDING)])
        if last is not None:
            return int(last["_id"]), last["c"]
        anchor = self.anchor()
        return (anchor.seq, anchor.chain) if anchor is not None else (0, GENESIS)

    def get(self, seq: int) -> AuditRow | None:
        doc = self._events.find_one({"_id": seq})
        return _row(doc) if doc is not None else None

    @staticmethod
    def _filter(query: AuditQuery, with_cursor: bool) -> dict:
        found: dict = {}
        if query.patient is not None:
            found["p"] = query.patient
        recorded = {}
        if query.start is not None:
            recorded["$gte"] = query.start
        if query.end is not None:
            recorded["$lte"] = query.end
        if recorded:
            found["r"] = recorded
        if with_cursor and query.after is not None:
            at, seq = query.after
            found["$or"] = [{"r": {"$gt": at}}, {"r": at, "_id": {"$gt": seq}}]
        return found

    def query(self, query: AuditQuery) -> list[AuditRow]:
        found = self._events.find(self._filter(query, True), sort=[("r", ASCENDING), ("_id", ASCENDING)],
                                  limit=query.limit)
        return [_row(d) for d in found]

    def count(self, query: AuditQuery) -> int:
        return self._events.count_documents(self._filter(query, False))

    def scan(self, after_seq: int, limit: int) -> list[AuditRow]:
        found = self._events.find({"_id": {"$gt": after_seq}}, sort=[("_id", ASCENDING)], limit=limit)
        return [_row(d) for d in found]

    def anchor(self) -> AuditAnchor | None:
        doc = self._anchors.find_one({"_id": "anchor"})
        if doc is None:
            return None
        return AuditAnchor(int(doc["seq"]), doc["chain"], doc["before"], doc["purged_at"])

    def purge(self, before: str, purged_at: str) -> tuple[int, AuditAnchor | None]:
        first_kept = self._events.find_one({"r": {"$gte": before}}, {"_id": 1}, sort=[("_id", ASCENDING)])
        bound = {"$lt": first_kept["_id"]} if first_kept is not None else {"$exists": True}
        last = self._events.find_one({"_id": bound}, {"c": 1}, sort=[("_id", DESCENDING)])
        if last is None:
            return 0, None
        anchor = AuditAnchor(int(last["_id"]), last["c"], before, purged_at)
        # the anchor first: should the removal stop half-way, verifying starts after it anyway
        self._anchors.replace_one(
            {"_id": "anchor"},
            {"_id": "anchor", "seq": anchor.seq, "chain": anchor.chain, "before": before, "purged_at": purged_at},
            upsert=True,
        )
        removed = self._events.delete_many({"_id": {"$lte": anchor.seq}}).deleted_count
        return removed, anchor

    def close(self) -> None:
        pass
