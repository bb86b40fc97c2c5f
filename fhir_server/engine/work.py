"""Runtime (what every interaction needs) and Work (one unit of work in one request)."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator

from fhir_server.engine.context import RequestContext
from fhir_server.engine.hooks import HookPoint, Hooks, WriteEvent
from fhir_server.engine.paging import PageCache
from fhir_server.model.meta import format_instant
from fhir_server.search.limits import SearchLimits
from fhir_server.search.registry import SearchRegistry
from fhir_server.storage.base import Store, UnitOfWork

__all__ = ["Runtime", "Work", "run_follow_ups"]

log = logging.getLogger(__name__)


def run_follow_ups(actions: list[Callable[[], None]]) -> None:
    """Run after-commit actions; the writes stand, so a failing follow-up is logged, not raised."""
    for action in actions:
        try:
            action()
        except Exception:
            log.exception("after-commit action %r failed", action)


@dataclass
class Runtime:
    store: Store
    registry: SearchRegistry
    hooks: Hooks = field(default_factory=Hooks)
    pages: PageCache = field(default_factory=PageCache)
    default_page_size: int = 20
    max_page_size: int = 1000
    search_limits: SearchLimits = SearchLimits()
    #: the implementation guide's folder (None: profiles/ of the checkout or the installed copy)
    profiles_dir: str | None = None
    #: what installed rule sets keep for their operations (e.g. workflow's "region")
    services: dict = field(default_factory=dict)

    @contextmanager
    def work(self, ctx: RequestContext, *, write: bool) -> Iterator["Work"]:
        with self.store.unit_of_work(write=write) as uow:
            work = Work(self, ctx, uow)
            yield work
            work.run_before_commit()
        # committed: now the after-commit hooks may look at the world
        for event in work.committed:
            self.hooks.run(HookPoint.AFTER_COMMIT, event)
        if work.after_commit:
            if ctx.follow_ups is not None:
                ctx.follow_ups.extend(work.after_commit)
            else:
                run_follow_ups(work.after_commit)


@dataclass
class Work:
    runtime: Runtime
    ctx: RequestContext
    uow: UnitOfWork
    committed: list[WriteEvent] = field(default_factory=list)
    #: run in order once the request's own writes are done, still inside the unit of
    #: work (they may write, veto, and add more): domain rules that need the whole
    #: transaction, e.g. an intake Task whose Patient comes later in the Bundle
    before_commit: list[Callable[[], None]] = field(default_factory=list)
    #: run after the commit, outside the unit of work; failures are logged, not raised
    #: (slow follow-ups such as calls to other servers, which must not hold a write lock)
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    #: state that domain rules keep for this unit of work, keyed by rule
    state: dict = field(default_factory=dict)
    _last_instant: str | None = None

    def run_before_commit(self) -> None:
        while self.before_commit:
            self.before_commit.pop(0)()

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
