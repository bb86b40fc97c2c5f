"""The replay cache (``storage.replay``) in the ``used_once`` collection: the key is
the document's ``_id``, so of two processes offering the same key at once one insert
wins and the other collides. A TTL index removes expired keys (MongoDB sweeps about
once a minute), so a key whose earlier use expired but is still there is taken over
by a conditional update."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

__all__ = ["MongoReplayCache"]


class MongoReplayCache:
    def __init__(self, collection):
        self._keys = collection
        self._keys.create_indexes([IndexModel([("expires", ASCENDING)], expireAfterSeconds=0)])

    def once(self, key: str, ttl_seconds: float) -> bool:
        now = datetime.now(timezone.utc)
        expires = now + timedelta(seconds=ttl_seconds)
        # outside any transaction: a used key belongs to no unit of work
        try:
            self._keys.insert_one({"_id": key, "expires": expires})
            return True
        except DuplicateKeyError:
            taken = self._keys.update_one({"_id": key, "expires": {"$lte": now}}, {"$set": {"expires": expires}})
            return taken.modified_count == 1

    def close(self) -> None:
        pass
