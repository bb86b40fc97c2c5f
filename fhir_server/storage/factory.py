"""Storage URL -> Store."""

from __future__ import annotations

from fhir_server.errors import FhirError
from fhir_server.storage.base import Store

__all__ = ["open_store", "UnsupportedStorage"]


class UnsupportedStorage(FhirError):
    pass


def open_store(url: str) -> Store:
    if url.startswith("sqlite://"):
        from fhir_server.storage.sqlite import SqliteStore

        # like file URLs: sqlite:///tmp/x.db is the absolute path /tmp/x.db,
        # sqlite://evi.db a path relative to the working directory
        path = url.removeprefix("sqlite://")
        if path in ("", ":memory:", "/:memory:"):
            return SqliteStore(":memory:")
        return SqliteStore(path)
    if url.startswith(("mongodb://", "mongodb+srv://")):
        from fhir_server.storage.mongo import MongoStore

        # the database is the URL's path (mongodb://host:27017/evi), default "evi"
        return MongoStore.from_url(url)
    raise UnsupportedStorage(
        f"Unsupported storage URL {url!r}: use sqlite:///path/evi.db, sqlite://:memory: or mongodb://host:27017/evi"
    )
