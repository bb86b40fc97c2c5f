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

__all__ = [
    "AuditAnchor",
    "AuditEntry",
    "AuditQuery",
    "AuditRow",
    "AuditStore",
    "FINISHED",
    "GENESIS",
    "Job",
    "JobStore",
    "MemoryJobStore",
    "RUNNABLE",
    "Seal",
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
