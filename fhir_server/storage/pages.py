"""Where search snapshots (paging state) live: every backend offers a ``PageStore``
as ``Store.pages``, shared by every server process on the same database."""

from __future__ import annotations

import threading
import time
from typing import Protocol

__all__ = ["PageStore", "MemoryPageStore"]


class PageStore(Protocol):
    def put(self, token: str, payload: bytes, ttl_seconds: float) -> None: ...

    def get(self, token: str) -> bytes | None:
        """The payload, or None when unknown or expired."""

    def close(self) -> None: ...


class MemoryPageStore:
    """For ``sqlite://:memory:`` and tests: one process, nothing survives it."""

    MAX_ENTRIES = 2000

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, bytes]] = {}
        self._lock = threading.Lock()

    def put(self, token: str, payload: bytes, ttl_seconds: float) -> None:
        now = time.time()
        with self._lock:
            self._entries[token] = (now + ttl_seconds, payload)
            if len(self._entries) > self.MAX_ENTRIES:
                for key in [k for k, (expires, _) in self._entries.items() if expires < now] or list(self._entries)[:1]:
                    self._entries.pop(key, None)

    def get(self, token: str) -> bytes | None:
        with self._lock:
            found = self._entries.get(token)
        if found is None or found[0] < time.time():
            return None
        return found[1]

    def close(self) -> None:
        self._entries.clear()
