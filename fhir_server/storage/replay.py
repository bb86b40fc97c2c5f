"""Keys that may be used once: the replay cache behind the token endpoint's ``jti`` check
(SMART App Launch 2.x, client-confidential-asymmetric: an assertion's ``jti`` is never
accepted twice within its lifetime). Every backend offers one as ``Store.replay``,
shared by every server process on the same database, so an assertion replayed to
another process is refused as well."""

from __future__ import annotations

import threading
import time
from typing import Protocol

__all__ = ["ReplayCache", "MemoryReplayCache"]


class ReplayCache(Protocol):
    def once(self, key: str, ttl_seconds: float) -> bool:
        """True the first time ``key`` is offered within ``ttl_seconds``, False while an
        earlier offer has not expired. Atomic across threads and processes."""

    def close(self) -> None: ...


class MemoryReplayCache:
    """For ``sqlite://:memory:`` (one process, nothing survives it)."""

    #: expired keys are swept when this many are held
    SWEEP_AT = 10_000

    def __init__(self) -> None:
        self._expires: dict[str, float] = {}
        self._lock = threading.Lock()

    def once(self, key: str, ttl_seconds: float) -> bool:
        now = time.time()
        with self._lock:
            if self._expires.get(key, 0.0) > now:
                return False
            if len(self._expires) >= self.SWEEP_AT:
                self._expires = {k: v for k, v in self._expires.items() if v > now}
            self._expires[key] = now + ttl_seconds
            return True

    def close(self) -> None:
        with self._lock:
            self._expires.clear()
