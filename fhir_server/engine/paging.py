"""Search snapshots for paging (HAPI's search result cache, in process).

The first page of a search fixes the ordered list of matches (up to
``SNAPSHOT_LIMIT``); the ``next``/``previous`` links name that snapshot, so
paging never shows a resource twice or skips one, whatever is written
meanwhile (R4 search.html#paging leaves how to the server). A resource deleted
after the snapshot is left out of its page. Results beyond the limit page over
live data (documented in docs/search.md).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["Snapshot", "PageCache", "SNAPSHOT_LIMIT"]

SNAPSHOT_LIMIT = 2000


@dataclass(frozen=True)
class Snapshot:
    token: str
    refs: tuple[tuple[str, str], ...]
    total: int | None
    #: True when ``refs`` holds every match
    complete: bool
    #: the search's own parameters, for the self link
    params: tuple[tuple[str, str], ...]
    #: the plan, for includes, _summary/_elements and pages past the snapshot
    plan: object
    created: float


class PageCache:
    def __init__(self, max_entries: int = 500, ttl_seconds: float = 3600.0):
        self._entries: OrderedDict[str, Snapshot] = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries, self.ttl = max_entries, ttl_seconds

    def put(self, refs, total, complete, params, plan) -> Snapshot:
        snap = Snapshot(uuid.uuid4().hex, tuple(refs), total, complete, tuple(params), plan, time.monotonic())
        with self._lock:
            self._entries[snap.token] = snap
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return snap

    def get(self, token: str) -> Snapshot | None:
        with self._lock:
            snap = self._entries.get(token)
            if snap is None:
                return None
            if time.monotonic() - snap.created > self.ttl:
                del self._entries[token]
                return None
            self._entries.move_to_end(token)
            return snap
