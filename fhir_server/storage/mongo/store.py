"""The MongoDB store: current versions in ``resources``, every version in
``history``, the write sequence in ``counters`` (layout in ``layout.py``).

Race-free versions across processes: a version becomes current through one
conditional single-document write, ``replace_one({_id, v: {$lt: n}}, ..., upsert)``,
which finds nothing (and then collides on ``_id``) when another writer stored
version n first; the unique (t, i, v) index of ``history`` backs it up. Either
way the loser gets ``VersionConflict``. A write unit of work is one multi-document
transaction, so the server must be a replica set or a sharded cluster; a
standalone server is refused when the store opens (``transactions.py``).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import urlsplit

import pymongo
from pymongo import ReturnDocument
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from fhir_server.errors import TooCostly
from fhir_server.storage.mongo.combos import SORT_DATES, derived, fingerprint
from fhir_server.storage.mongo.layout import (
    COUNTERS,
    HISTORY,
    HISTORY_INDEXES,
    JOBS,
    PAGES,
    REPLAY,
    RESOURCE_INDEXES,
    RESOURCES,
)
from fhir_server.storage.mongo.audit import MongoAuditStore
from fhir_server.storage.mongo.jobs import MongoJobStore
from fhir_server.storage.mongo.outbox import EVENTS, OUTBOX_INDEXES
from fhir_server.storage.mongo.pages import MongoPageStore
from fhir_server.storage.mongo.replay import MongoReplayCache
from fhir_server.storage.mongo.transactions import ConcurrentWrite, is_write_conflict, require_replica_set
from fhir_server.storage.mongo.work import MongoUnitOfWork

__all__ = ["MongoStore", "DEFAULT_DATABASE", "database_from_url"]

DEFAULT_DATABASE = "evi"


def database_from_url(url: str) -> str:
    """The database named by the URL path (``mongodb://host/evi``), else ``evi``."""
    path = urlsplit(url).path.lstrip("/")
    return path.split("/", 1)[0] or DEFAULT_DATABASE


class MongoStore:
    """``client``: a ``pymongo.MongoClient`` (or anything with its interface, sessions
    included) connected to a replica set or a mongos; ``ReplicaSetRequired`` otherwise."""

    def __init__(self, client, database: str = DEFAULT_DATABASE, *, owns_client: bool = False):
        require_replica_set(client)
        self._client = client
        self._owns_client = owns_client
        self.db = client[database]
        self.resources = self.db[RESOURCES]
        self.history = self.db[HISTORY]
        self.counters = self.db[COUNTERS]
        self.pages = MongoPageStore(self.db[PAGES])
        self.replay = MongoReplayCache(self.db[REPLAY])
        #: the PDL access log, in collections of its own
        self.audit = MongoAuditStore(self.db)
        self.jobs = MongoJobStore(self.db[JOBS])
        self.resources.create_indexes(RESOURCE_INDEXES)
        self.history.create_indexes(HISTORY_INDEXES)
        self._ensure_derived()
        self.db[EVENTS].create_indexes(OUTBOX_INDEXES)

    @classmethod
    def from_url(cls, url: str) -> "MongoStore":
        client = pymongo.MongoClient(url, appname="evi-fhir")
        try:
            return cls(client, database_from_url(url), owns_client=True)
        except BaseException:
            client.close()
            raise

    def _ensure_derived(self) -> None:
        """Give the current documents of declared types their derived fields (combos.py)
        when the declarations changed since they were written (or before they existed).
        Idempotent: processes opening the database at once each write the same values."""
        marker = {"_id": "layout:derived"}
        done = self.counters.find_one(marker)
        if done is not None and done.get("v") == fingerprint():
            return
        query = {"t": {"$in": sorted(SORT_DATES)}, "del": False}
        for doc in self.resources.find(query, {"_id": 1, "t": 1, "v": 1, "_idx": 1}):
            fields = derived(doc["t"], doc.get("_idx") or {})
            # a version written meanwhile has its own fields already
            self.resources.update_one({"_id": doc["_id"], "v": doc["v"], "del": False}, {"$set": fields})
        self.counters.replace_one(marker, {**marker, "v": fingerprint()}, upsert=True)

    def next_seq(self) -> int:
        """The next number of the global write sequence.

        Deliberately outside any transaction: every writer increments this one
        document, and inside transactions they would all collide on it
        (WriteConflict) instead of queueing. An aborted unit of work leaves a gap.
        """
        doc = self.counters.find_one_and_update(
            {"_id": "history"}, {"$inc": {"n": 1}}, upsert=True, return_document=ReturnDocument.AFTER
        )
        return int(doc["n"])

    #: every operation is a network round trip: never on the event loop
    inline = False

    @contextmanager
    def unit_of_work(
        self, *, write: bool, deadline: float | None = None, inline: bool = False
    ) -> Iterator[MongoUnitOfWork]:
        """A write unit of work is one transaction; a read one uses no session (see
        docs/mongodb.md). ``deadline``: every operation of the unit of work shares the time
        left (pymongo's client-side operation timeout); one that runs out is TooCostly (503)."""
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0.001)
        try:
            with pymongo.timeout(remaining):
                with self._unit_of_work(write) as uow:
                    yield uow
        except pymongo.errors.PyMongoError as exc:
            if getattr(exc, "timeout", False):
                raise TooCostly("The request ran past its time budget and was stopped; nothing was changed") from None
            raise

    @contextmanager
    def _unit_of_work(self, write: bool) -> Iterator[MongoUnitOfWork]:
        if write:
            with self._transaction() as uow:
                yield uow
            return
        yield MongoUnitOfWork(self, session=None)

    @contextmanager
    def _transaction(self) -> Iterator[MongoUnitOfWork]:
        session = self._client.start_session()
        try:
            session.start_transaction(
                read_concern=ReadConcern("snapshot"),
                write_concern=WriteConcern("majority"),
                read_preference=pymongo.ReadPreference.PRIMARY,
            )
            try:
                yield MongoUnitOfWork(self, session=session)
            except BaseException:
                session.abort_transaction()
                raise
            try:
                session.commit_transaction()
            except pymongo.errors.OperationFailure as exc:
                if is_write_conflict(exc):
                    raise ConcurrentWrite(f"A concurrent write changed the same resources first: {exc}") from None
                raise
        finally:
            session.end_session()

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

