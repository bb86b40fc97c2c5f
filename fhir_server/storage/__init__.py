"""Storage: the Store protocol and its backends, chosen by the storage URL."""

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
from fhir_server.storage.outbox import STREAM_STATE, Event, Outbox, Stream, StreamConfig

__all__ = [
    "Event",
    "Outbox",
    "STREAM_STATE",
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
