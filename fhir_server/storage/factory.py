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
        path, _, query = url.removeprefix("sqlite://").partition("?")
        tuning = _sqlite_tuning(url, query)
        if path in ("", ":memory:", "/:memory:"):
            return SqliteStore(":memory:", tuning=tuning)
        return SqliteStore(path, tuning=tuning)
    if url.startswith(("mongodb://", "mongodb+srv://")):
        from fhir_server.storage.mongo import MongoStore

        # the database is the URL's path (mongodb://host:27017/evi), default "evi"
        return MongoStore.from_url(url)
    raise UnsupportedStorage(
        f"Unsupported storage URL {url!r}: use sqlite:///path/evi.db, sqlite://:memory: or mongodb://host:27017/evi"
    )


#: the SQLite URL's options (MiB) -> SqliteTuning fields
_SQLITE_OPTIONS = {"cache_mb": "writer_cache_kb", "reader_cache_mb": "reader_cache_kb", "mmap_mb": "mmap_bytes"}


def _sqlite_tuning(url: str, query: str):
    """``sqlite:///evi.db?cache_mb=256&mmap_mb=8192``: memory per connection, in MiB."""
    from urllib.parse import parse_qsl

    from fhir_server.storage.sqlite import SqliteTuning

    values = {}
    for name, text in parse_qsl(query, keep_blank_values=True):
        field = _SQLITE_OPTIONS.get(name)
        if field is None:
            raise UnsupportedStorage(f"Unknown option {name!r} in {url!r}: the SQLite URL takes {', '.join(_SQLITE_OPTIONS)}")
        if not text.isdigit() or len(text) > 7:
            raise UnsupportedStorage(f"{name} in {url!r} must be a whole number of MiB (up to 9,999,999)")
        mib = int(text)
        values[field] = mib * 1024**2 if field == "mmap_bytes" else mib * 1024
    if values.get("writer_cache_kb") == 0 or values.get("reader_cache_kb") == 0:
        raise UnsupportedStorage(f"A page cache of 0 MiB in {url!r}: SQLite needs a few pages (use 1 or more)")
    return SqliteTuning(**values)
