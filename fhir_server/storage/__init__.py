"""Storage: the Store protocol and its backends, chosen by the storage URL."""

from fhir_server.storage.audit import GENESIS, AuditAnchor, AuditEntry, AuditQuery, AuditRow, AuditStore, Seal
from fhir_server.storage.base import (
    HistoryPage,
    HistoryQuery,
    ResourceVersion,
    SearchResult,
    Store,
    UnitOfWork,
    VersionConflict,
    WouldBlock,
)
from fhir_server.storage.factory import open_store
from fhir_server.storage.jobs import FINISHED, RUNNABLE, Job, JobStore, MemoryJobStore
from fhir_server.storage.outbox import STREAM_STATE, Event, Outbox, Stream, StreamConfig

__all__ = [
    "AuditAnchor",
    "AuditEntry",
    "AuditQuery",
    "AuditRow",
    "AuditStore",
    "Event",
    "FINISHED",
    "GENESIS",
    "Job",
    "JobStore",
    "MemoryJobStore",
    "Outbox",
    "RUNNABLE",
    "STREAM_STATE",
    "Seal",
    "Stream",
    "StreamConfig",
    "HistoryPage",
    "HistoryQuery",
    "ResourceVersion",
    "SearchResult",
    "Store",
    "UnitOfWork",
    "VersionConflict",
    "WouldBlock",
    "open_store",
]
