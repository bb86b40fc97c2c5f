"""The MongoDB backend (pymongo): for regions that outgrow one machine; a replica set
(a single-node one is enough) is the minimum deployment. See docs/mongodb.md."""

from fhir_server.storage.mongo.compile import FollowUpTooBroad, UnsupportedClause
from fhir_server.storage.mongo.store import DEFAULT_DATABASE, MongoStore, database_from_url
from fhir_server.storage.mongo.transactions import ConcurrentWrite, ReplicaSetRequired
from fhir_server.storage.mongo.work import MongoUnitOfWork

__all__ = [
    "MongoStore",
    "MongoUnitOfWork",
    "DEFAULT_DATABASE",
    "database_from_url",
    "ReplicaSetRequired",
    "ConcurrentWrite",
    "FollowUpTooBroad",
    "UnsupportedClause",
]
