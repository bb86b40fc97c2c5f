"""How a unit of work becomes atomic on MongoDB, by deployment.

- ``replica-set`` (a replica set or a sharded cluster): a client session with a
  multi-document transaction per write unit of work (``start_transaction``,
  ``commit_transaction``, ``abort_transaction`` on any error).
- ``standalone`` (``hello`` has no ``setName``): MongoDB has no multi-document
  transactions there. A unit of work may write ONE resource version: it is held
  back until the unit of work ends and then stored with single-document
  operations; a second version is refused with ``TransactionsUnavailable``
  before anything is stored.
- ``emulated``: for in-process test doubles without sessions (mongomock) only.
  Writes apply at once and are undone if the unit of work fails. Neither
  isolated nor crash-safe; never chosen by detection.

Errors::

    FhirError
     ├── TransactionsUnavailable (501, not-supported)  several versions, standalone server
     └── Conflict (409, conflict)
          └── ConcurrentWrite (also a storage VersionConflict)  lost race found at commit
"""

from __future__ import annotations

import logging

from pymongo.errors import OperationFailure

from fhir_server.errors import Conflict, FhirError
from fhir_server.storage.base import VersionConflict

__all__ = [
    "REPLICA_SET",
    "STANDALONE",
    "EMULATED",
    "MODES",
    "TransactionsUnavailable",
    "ConcurrentWrite",
    "detect_mode",
    "is_write_conflict",
]

log = logging.getLogger("fhir_server.storage.mongo")

REPLICA_SET = "replica-set"
STANDALONE = "standalone"
EMULATED = "emulated"
MODES = (REPLICA_SET, STANDALONE, EMULATED)

#: MongoDB's WriteConflict: another transaction changed the document first
_WRITE_CONFLICT = 112


class TransactionsUnavailable(FhirError):
    """501: the request is fine, this deployment lacks what it needs (a replica set).

    Not 422: nothing is wrong with the content, and the same request succeeds on a
    deployment with transactions. 501 tells the client (and monitoring) that the
    server lacks a capability; the OperationOutcome says that nothing was stored.
    """

    status = 501
    code = "not-supported"

    def __init__(self, resource: str):
        super().__init__(
            "This server's MongoDB database is a standalone server without multi-document transactions, so a "
            "request that writes more than one resource version (a transaction Bundle with several writes, or a "
            f"write that adds further resources) cannot be stored atomically; refused at {resource}, and nothing "
            "was stored. Send the writes one at a time, or run MongoDB as a replica set."
        )


class ConcurrentWrite(Conflict, VersionConflict):
    """409: another writer stored the version first, found when the unit of work committed."""


def is_write_conflict(exc: OperationFailure) -> bool:
    """A transaction lost a race on a document (WriteConflict / TransientTransactionError)."""
    return exc.code == _WRITE_CONFLICT or exc.has_error_label("TransientTransactionError")


def detect_mode(client) -> str:
    """``replica-set`` for replica sets and mongos, else ``standalone`` (the safe choice)."""
    try:
        try:
            hello = client.admin.command("hello")
        except OperationFailure:  # servers before 4.4.2 know only isMaster
            hello = client.admin.command("isMaster")
    except NotImplementedError:  # a test double that cannot answer: assume the least
        log.warning("cannot ask the MongoDB server for its topology; treating it as a standalone server")
        return STANDALONE
    if hello.get("setName") or hello.get("msg") == "isdbgrid":
        return REPLICA_SET
    return STANDALONE
