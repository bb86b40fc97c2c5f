"""Runtime (what every interaction needs) and Work (one unit of work in one request)."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Iterator

from fhir_server.engine.context import RequestContext
from fhir_server.engine.hooks import HookPoint, Hooks, WriteEvent
from fhir_server.engine.paging import PageCache
from fhir_server.model.meta import format_instant
from fhir_server.search.registry import SearchRegistry
from fhir_server.storage.base import Store, UnitOfWork

__all__ = ["Runtime", "Work"]


@dataclass
class Runtime:
    store: Store
    registry: SearchRegistry
    hooks: Hooks = field(default_factory=Hooks)
    pages: PageCache = field(default_factory=PageCache)
    default_page_size: int = 20
    max_page_size: int = 1000
    #: the implementation guide's folder (None: profiles/ of the checkout or the installed copy)
    profiles_dir: str | None = None

    @contextmanager
    def work(self, ctx: RequestContext, *, write: bool) -> Iterator["Work"]:
        with self.store.unit_of_work(write=write) as uow:
            work = Work(self, ctx, uow)
            yield work
        # committed: now the after-commit hooks may look at the world
        for event in work.committed:
            self.hooks.run(HookPoint.AFTER_COMMIT, event)


@dataclass
class Work:
    runtime: Runtime
    ctx: RequestContext
    uow: UnitOfWork
    committed: list[WriteEvent] = field(default_factory=list)
    _last_instant: str | None = None

    def next_instant(self) -> str:
        """Now, but never before the newest stored version: lastUpdated only moves forward."""
        now = format_instant(datetime.now(timezone.utc))
        if self._last_instant is None:
            self._last_instant = self.uow.newest_instant() or ""
        if now <= self._last_instant:
            last = datetime.strptime(self._last_instant, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
            now = format_instant(last + timedelta(microseconds=1))
        self._last_instant = now
        return now
