"""Search snapshots in the ``pages`` collection: every server process on the database
pages through the same ones, and a restart keeps them. A TTL index removes expired
ones (MongoDB sweeps about once a minute, so reads check the expiry too)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bson import Binary
from pymongo import ASCENDING, IndexModel

__all__ = ["MongoPageStore"]


class MongoPageStore:
    def __init__(self, collection):
        self._pages = collection
        self._pages.create_indexes([IndexModel([("expires", ASCENDING)], expireAfterSeconds=0)])

    def put(self, token: str, payload: bytes, ttl_seconds: float) -> None:
        expires = datetime.now(timezone.utc) + timedelta(seconds=ttl_seconds)
        # outside any transaction: a snapshot belongs to no unit of work
        self._pages.replace_one({"_id": token}, {"_id": token, "expires": expires, "p": Binary(payload)}, upsert=True)

    def get(self, token: str) -> bytes | None:
        doc = self._pages.find_one({"_id": token})
        if doc is None:
            return None
        expires = doc["expires"]
        if expires.tzinfo is None:  # pymongo returns naive UTC datetimes by default
            expires = expires.replace(tzinfo=timezone.utc)
        return bytes(doc["p"]) if expires >= datetime.now(timezone.utc) else None

    def close(self) -> None:
        pass
