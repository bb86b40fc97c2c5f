"""Runtime (what every interaction needs) and Work (one unit of work in one request)."""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator

import orjson

from fhir_server.engine.changes import Cause, Changes
from fhir_server.engine.context import RequestContext
from fhir_server.engine.deferred import DeferredRule, DeferredRuns
from fhir_server.engine.exemptions import Exemption, Exemptions
from fhir_server.engine.hooks import HookPoint, Hooks, WriteEvent
from fhir_server.engine.paging import Pages
from fhir_server.model import MAX_JSON_DEPTH
from fhir_server.model.meta import format_instant
from fhir_server.search.limits import SearchLimits
from fhir_server.search.registry import SearchRegistry, definition_from_resource
from fhir_server.security.policy import AccessPolicy, load_policy
from fhir_server.storage.base import Store, UnitOfWork

__all__ = ["Runtime", "Work", "run_follow_ups", "SEARCH_PARAMETERS"]

#: the store counter that every write of a SearchParameter raises (``UnitOfWork.bump``)
SEARCH_PARAMETERS = "search-parameters"

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
    default_page_size: int = 20
    max_page_size: int = 1000
    #: clients may create or activate SearchParameters and run ``$reindex``
    #: (Settings.allow_runtime_searchparameters)
    allow_runtime_search_parameters: bool = True
    #: entries a batch or transaction Bundle may hold (413 above; Settings.max_bundle_entries)
    max_bundle_entries: int = 10_000
    search_limits: SearchLimits = SearchLimits()
    #: nesting a stored resource may reach, however it was made (a PATCH result too;
    #: Settings.max_json_depth, the limit of a request body)
    max_json_depth: int = MAX_JSON_DEPTH
    #: resources that claim profiles are validated against them before commit
    #: (``engine.profiles.install_profile_enforcement``)
    profiles_enforced: bool = False
    #: the implementation guide's folder (None: profiles/ of the checkout or the installed copy)
    profiles_dir: str | None = None
    #: what installed rule sets keep for their operations (e.g. workflow's "region")
    services: dict = field(default_factory=dict)
    #: the registry without stored SearchParameters (spec + guide); default: ``registry`` as given
    registry_factory: Callable[[], SearchRegistry] | None = None
    #: who may see what (domain.md §5); the shipped policies/access.toml unless given
    policy: AccessPolicy = field(default_factory=load_policy)
    #: search snapshots, in the store (shared by every process on the database)
    pages: Pages = field(init=False)

    def __post_init__(self) -> None:
        self.pages = Pages(self.store.pages)
        if self.registry_factory is None:
            definitions, indexed = self.registry.definitions(), self.registry.indexed_codes
            self.registry_factory = lambda: SearchRegistry(definitions, indexed)
        #: the store's SEARCH_PARAMETERS counter the registry reflects (-1: reload)
        self._registry_generation = -1
        self._registry_lock = threading.Lock()

    @contextmanager
    def work(self, ctx: RequestContext, *, write: bool) -> Iterator["Work"]:
        ctx.budget.check_time()  # a request that waited past its budget for a worker
        inline = ctx.inline and self.store.inline
        with self.store.unit_of_work(write=write, deadline=ctx.deadline, inline=inline) as uow:
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

    def sync_registry(self, uow: UnitOfWork) -> SearchRegistry:
        """Take in stored SearchParameters that changed since the registry was built, by
        this process or another one on the same database (the store's counter says)."""
        generation = uow.generation(SEARCH_PARAMETERS)
        if generation == self._registry_generation:
            return self.registry
        with self._registry_lock:
            if generation == self._registry_generation:
                return self.registry
            registry = self.registry_factory()
            for definition in stored_search_parameters(uow):
                registry.register(definition)
            # swapped whole: requests under way keep the registry they started with
            self.registry = registry
            self._registry_generation = generation
            return registry

    def registry_changed(self) -> None:
        """A SearchParameter was written here: rebuild the registry on the next unit of work."""
        self._registry_generation = -1


def stored_search_parameters(uow: UnitOfWork, batch: int = 500) -> list:
    """The definitions of every active SearchParameter in the store."""
    found, after = [], None
    while True:
        ids = uow.current_ids("SearchParameter", after, batch)
        for version in uow.load("SearchParameter", ids):
            resource = orjson.loads(version.body)
            if resource.get("status") == "active" and (d := definition_from_resource(resource)):
                found.append(d)
        if len(ids) < batch:
            return found
        after = ids[-1]


@dataclass
class Work:
    """One unit of work of one request: the store's transaction, and what the write
    pipeline and the rules keep for it. Rules use only the methods below (``defer``,
    ``grant`` / ``exempt``, ``changes``); nothing is shared through string keys."""

    runtime: Runtime
    ctx: RequestContext
    uow: UnitOfWork
    committed: list[WriteEvent] = field(default_factory=list)
    #: run after the commit, outside the unit of work; failures are logged, not raised
    #: (slow follow-ups such as calls to other servers, which must not hold a write lock)
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    #: every write of this unit of work: final versions, and what rules did because of what
    changes: Changes = field(default_factory=Changes)
    exemptions: Exemptions = field(default_factory=Exemptions)
    deferred: DeferredRuns = field(default_factory=DeferredRuns)
    #: why the writes being made now happen (None: they are the request's own)
    cause: Cause | None = None
    #: True while hooks of a write run: they may not write (``engine.hooks``)
    in_hooks: bool = False
    _last_instant: str | None = None
    _registry: SearchRegistry | None = None

    @property
    def registry(self) -> SearchRegistry:
        """The search registry, with the store's SearchParameters as of this unit of work:
        checked on first use only (a read by id never needs it; a write asks when it
        indexes, under the write lock it then holds anyway)."""
        if self._registry is None:
            self._registry = self.runtime.sync_registry(self.uow)
        return self._registry

    def defer(self, name: DeferredRule, action: Callable[[], None]) -> bool:
        """Run ``action`` at the end of the unit of work, still inside it (``engine.deferred``).

        Returns False when an equal ``name`` is pending (or, for a ``once`` rule, already
        ran). The run's writes are recorded as side effects of the request's write whose
        hooks deferred it, named by ``name.rule``."""
        cause = Cause(self.cause.key, name.rule) if self.cause is not None else None
        return self.deferred.add(name, action, cause)

    def run_before_commit(self) -> None:
        """Run the deferred rules in order, including those they defer in turn."""
        while (run := self.deferred.pop()) is not None:
            _name, action, cause = run
            outer, self.cause = self.cause, cause
            try:
                action()
            finally:
                self.cause = outer

    def grant(self, exemption: Exemption) -> None:
        """Let another rule's check pass for this unit of work (``engine.exemptions``)."""
        self.exemptions.grant(exemption)

    def exempt(self, exemption: Exemption) -> bool:
        """Whether a rule of this unit of work granted ``exemption``."""
        return self.exemptions.holds(exemption)

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
