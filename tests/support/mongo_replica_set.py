"""A mongomock client that stands for a single-node replica set, for the MongoDB tests.

mongomock has no sessions or transactions, and the store needs both (a standalone
server is refused). This double adds what the store uses:

- ``admin.command("hello")`` names a replica set (``setName: rs0``);
- ``start_session()`` gives a session whose transaction is journalled: each write
  made with the session records the documents it touches as they were, and
  ``abort_transaction`` (or ending the session with the transaction open) puts them
  back, newest first; ``commit_transaction`` forgets the journal;
- every operation runs under one lock (a real server runs single-document
  operations atomically; mongomock, from several threads, does not).

What it does NOT do, unlike a real replica set: isolation (other units of work see
uncommitted writes at once) and write conflicts between transactions
(``WriteConflict``); the race tests rely on the store's conditional writes and the
unique indexes, which it does have. Only a real server (``EVI_TEST_MONGO_URI``)
shows the rest.
"""

from __future__ import annotations

import threading

import mongomock

__all__ = ["ReplicaSet", "Standalone"]

_WRITES = frozenset({"insert_one", "insert_many", "replace_one", "update_one", "update_many", "delete_one",
                     "delete_many", "find_one_and_update", "find_one_and_replace", "find_one_and_delete"})


class _Session:
    def __init__(self, lock: threading.RLock):
        self._lock = lock
        self.journal: list[tuple] = []
        self.in_transaction = False
        self.aborted = False  # whether a transaction of this session was taken back
        self.options: dict = {}

    def start_transaction(self, **options) -> None:
        self.in_transaction, self.options, self.journal = True, options, []

    def commit_transaction(self) -> None:
        self.in_transaction, self.journal = False, []

    def abort_transaction(self) -> None:
        self.aborted = bool(self.journal) or self.aborted
        with self._lock:
            while self.journal:
                collection, _id, before = self.journal.pop()
                if before is None:
                    collection.delete_one({"_id": _id})
                else:
                    collection.replace_one({"_id": _id}, before, upsert=True)
        self.in_transaction = False

    def end_session(self) -> None:
        if self.in_transaction:  # as on a server: ending a session aborts its open transaction
            self.abort_transaction()


class _Collection:
    def __init__(self, inner, lock: threading.RLock):
        self._inner, self._lock = inner, lock

    def with_options(self, **options) -> "_Collection":
        """The same collection with other concerns, still under the lock."""
        return _Collection(self._inner.with_options(**options), self._lock)

    def __getattr__(self, name):
        target = getattr(self._inner, name)
        if not callable(target):
            return target

        def call(*args, session=None, **kwargs):
            with self._lock:
                if session is not None and session.in_transaction and name in _WRITES:
                    return self._journalled(session, name, target, args, kwargs)
                result = target(*args, **kwargs)
                return list(result) if hasattr(result, "__next__") else result  # cursors: read under the lock

        return call

    def _journalled(self, session: _Session, name: str, target, args, kwargs):
        if name.startswith("insert"):
            result = target(*args, **kwargs)
            ids = [result.inserted_id] if name == "insert_one" else result.inserted_ids
            session.journal.extend((self._inner, i, None) for i in ids)
            return result
        selector = args[0] if args else kwargs.get("filter", {})
        before = list(self._inner.find(selector))
        result = target(*args, **kwargs)
        session.journal.extend((self._inner, doc["_id"], doc) for doc in before)
        upserted = getattr(result, "upserted_id", None)
        if upserted is not None:
            session.journal.append((self._inner, upserted, None))
        elif name.startswith("find_one_and") and result is None and kwargs.get("upsert"):
            after = self._inner.find_one(selector)
            if after is not None:
                session.journal.append((self._inner, after["_id"], None))
        return result


class _Database:
    def __init__(self, inner, client: "ReplicaSet"):
        self._inner, self.client = inner, client
        self.name = inner.name

    def __getitem__(self, name):
        return _Collection(self._inner[name], self.client.lock)

    def __getattr__(self, name):
        return getattr(self._inner, name)


class _Admin:
    def __init__(self, hello: dict):
        self._hello = hello

    def command(self, name: str) -> dict:
        return dict(self._hello)


class ReplicaSet:
    """A mongomock client whose ``hello`` names replica set ``rs0``, with journalled transactions."""

    hello = {"setName": "rs0", "isWritablePrimary": True}

    def __init__(self, inner: mongomock.MongoClient | None = None):
        self._inner = inner if inner is not None else mongomock.MongoClient()
        self.lock = threading.RLock()
        self.admin = _Admin(self.hello)
        self.sessions: list[_Session] = []

    def __getitem__(self, name: str) -> _Database:
        return _Database(self._inner[name], self)

    def start_session(self) -> _Session:
        session = _Session(self.lock)
        self.sessions.append(session)
        return session

    def drop_database(self, name: str) -> None:
        self._inner.drop_database(name)

    def close(self) -> None:
        self._inner.close()


class Standalone(ReplicaSet):
    """The same, answering ``hello`` as a standalone ``mongod`` does (no ``setName``)."""

    hello = {"isWritablePrimary": True}
