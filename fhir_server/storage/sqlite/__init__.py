"""The embedded SQLite backend."""

from fhir_server.storage.sqlite.store import SqliteStore, SqliteTuning, SqliteUnitOfWork

__all__ = ["SqliteStore", "SqliteUnitOfWork", "SqliteTuning"]
