"""The MongoDB backend (pymongo): for regions that outgrow one machine. See docs/mongodb.md."""

from fhir_server.storage.mongo.compile import FollowUpTooBroad, UnsupportedClause
from fhir_server.storage.mongo.store import DEFAULT_DATABASE, MongoStore, database_from_url
from fhir_server.storage.mongo.transactions import (
    EMULATED,
    REPLICA_SET,
    STANDALONE,
    ConcurrentWrite,
    TransactionsUnavailable,
)
from fhir_server.storage.mongo.work import MongoUnitOfWork

__all__ = [
    "MongoStore",
    "MongoUnitOfWork",
    "DEFAULT_DATABASE",
    "database_from_url",
    "REPLICA_SET",
    "STANDALONE",
    "EMULATED",
    "TransactionsUnavailable",
    "ConcurrentWrite",
    "FollowUpTooBroad",
    "UnsupportedClause",
]
