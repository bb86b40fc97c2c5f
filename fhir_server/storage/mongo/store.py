"""The MongoDB store: current versions in ``resources``, every version in
``history``, the write sequence in ``counters`` (layout in ``layout.py``).

Race-free versions across processes: a version becomes current through one
conditional single-document write, ``replace_one({_id, v: {$lt: n}}, ..., upsert)``,
which finds nothing (and then collides on ``_id``) when another writer stored
version n first; the unique (t, i, v) index of ``history`` backs it up. Either
way the loser gets ``VersionConflict``. How a unit of work with several writes
stays atomic depends on the deployment (``transactions.py``).
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
from fhir_server.storage.mongo.layout import (
    COUNTERS,
    PAGES,
    HISTORY,
    HISTORY_INDEXES,
    RESOURCE_INDEXES,
    RESOURCES,
)
from fhir_server.storage.mongo.transactions import (
    MODES,
    REPLICA_SET,
    ConcurrentWrite,
    detect_mode,
    is_write_conflict,
)
from fhir_server.storage.mongo.pages import MongoPageStore
from fhir_server.storage.mongo.work import MongoUnitOfWork

__all__ = ["MongoStore", "DEFAULT_DATABASE", "database_from_url"]

DEFAULT_DATABASE = "evi"


def database_from_url(url: str) -> str:
    """The database named by the URL path (``mongodb://host/evi``), else ``evi``."""
    path = urlsplit(url).path.lstrip("/")
    return path.split("/", 1)[0] or DEFAULT_DATABASE


class MongoStore:
    """``client``: a ``pymongo.MongoClient`` or anything with its interface.

    ``transactions``: ``auto`` asks the server (``hello``); ``replica-set``,
    ``standalone`` or ``emulated`` (test doubles only) force a mode.
    """

    def __init__(self, client, database: str = DEFAULT_DATABASE, *, transactions: str = "auto", owns_client: bool = False):
        if transactions != "auto" and transactions not in MODES:
            raise ValueError(f"transactions must be auto or one of {', '.join(MODES)}, not {transactions!r}")
        self._client = client
        self._owns_client = owns_client
        self.db = client[database]
        self.resources = self.db[RESOURCES]
        self.history = self.db[HISTORY]
        self.counters = self.db[COUNTERS]
        self.mode = detect_mode(client) if transactions == "auto" else transactions
        self.pages = MongoPageStore(self.db[PAGES])
        self.resources.create_indexes(RESOURCE_INDEXES)
        self.history.create_indexes(HISTORY_INDEXES)

    @classmethod
    def from_url(cls, url: str) -> "MongoStore":
        client = pymongo.MongoClient(url, appname="evi-fhir")
        return cls(client, database_from_url(url), owns_client=True)

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

    @contextmanager
    def unit_of_work(self, *, write: bool, deadline: float | None = None) -> Iterator[MongoUnitOfWork]:
        """``deadline``: every operation of the unit of work shares the time left (pymongo's
        client-side operation timeout); one that runs out is TooCostly (503)."""
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
        if write and self.mode == REPLICA_SET:
            with self._transaction() as uow:
                yield uow
            return
        uow = MongoUnitOfWork(self, session=None, write=write, mode=self.mode)
        try:
            yield uow
        except BaseException:
            uow.undo()
            raise
        uow.finish()

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
                yield MongoUnitOfWork(self, session=session, write=True, mode=REPLICA_SET)
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

