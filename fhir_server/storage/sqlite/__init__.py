"""The embedded SQLite backend."""

from fhir_server.storage.sqlite.store import SqliteStore, SqliteUnitOfWork

__all__ = ["SqliteStore", "SqliteUnitOfWork"]
