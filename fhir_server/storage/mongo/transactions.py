"""How a unit of work becomes atomic on MongoDB: one multi-document transaction.

Every write unit of work is a client session with one transaction
(``start_transaction``, ``commit_transaction``, ``abort_transaction`` on any error);
every operation of it carries the session. MongoDB has multi-document transactions
on replica sets and sharded clusters only, so **a replica set is the minimum
deployment**; a single-node one is enough::

    mongod --replSet rs0 --dbpath /var/lib/mongo ...
    mongosh --eval 'rs.initiate()'              # once
    evi-fhir serve --storage 'mongodb://localhost:27017/evi?replicaSet=rs0'

The store asks the server (``hello``) when it opens and refuses a standalone server
with ``ReplicaSetRequired``, at start rather than on use, because which requests
store several versions depends on their content, not on anything a client can see:
the workflow adds an intake Task to a referral, a care transfer writes a Provenance,
the guide is installed at start-up, a transaction Bundle may hold one entry or many.
On a standalone server these would fail one by one at run time; the guards that keep
a slot from being booked twice (``UnitOfWork.guard``) rely on transactions too.
Failing at start says so once, with the fix. (Earlier versions ran standalone
servers one version per unit of work, and test doubles with journalled undo; both
paths are gone.)

Errors::

    UnsupportedStorage (storage/factory.py)
     └── ReplicaSetRequired              at start: a standalone server, or one that cannot tell
    FhirError
     └── Conflict (409, conflict)
          └── ConcurrentWrite (also a storage VersionConflict)  lost race found at commit
"""

from __future__ import annotations

from pymongo.errors import OperationFailure

from fhir_server.errors import Conflict
from fhir_server.storage.base import VersionConflict
from fhir_server.storage.factory import UnsupportedStorage

__all__ = ["ReplicaSetRequired", "ConcurrentWrite", "require_replica_set", "is_write_conflict"]

#: MongoDB's WriteConflict: another transaction changed the document first
_WRITE_CONFLICT = 112

_HOW = ("single-node replica set is enough: start mongod with --replSet rs0, run rs.initiate() once "
        "(mongosh), and name it in the storage URL: mongodb://host:27017/evi?replicaSet=rs0")


class ReplicaSetRequired(UnsupportedStorage):
    """The MongoDB server has no multi-document transactions (not a replica set or mongos)."""

    def __init__(self, why: str):
        super().__init__(
            f"evi-fhir needs MongoDB as a replica set or a sharded cluster, because every write runs in a "
            f"multi-document transaction; {why}. A {_HOW} (docs/mongodb.md)."
        )


class ConcurrentWrite(Conflict, VersionConflict):
    """409: another writer stored the version first, found when the unit of work committed."""


def is_write_conflict(exc: OperationFailure) -> bool:
    """A transaction lost a race on a document (WriteConflict / TransientTransactionError)."""
    return exc.code == _WRITE_CONFLICT or exc.has_error_label("TransientTransactionError")


def require_replica_set(client) -> None:
    """Return when ``hello`` names a replica set (``setName``) or a mongos; else ReplicaSetRequired."""
    try:
        try:
            hello = client.admin.command("hello")
        except OperationFailure:  # servers before 4.4.2 know only isMaster
            hello = client.admin.command("isMaster")
    except NotImplementedError:  # a test double that cannot answer
        raise ReplicaSetRequired("this server cannot tell whether it is one (hello is not implemented)") from None
    if hello.get("setName") or hello.get("msg") == "isdbgrid":
        return
    raise ReplicaSetRequired("this server is a standalone mongod (hello names no replica set)")
