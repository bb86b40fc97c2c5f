"""The narrow Store protocol every backend implements.

A store keeps immutable resource versions, the current version per logical id,
and the typed index entries of the current version. All work happens inside a
unit of work: one atomic, isolated store transaction. A write unit of work
serialises writers, so "read current version, check it, write the next" cannot
race (R4 §3.1.0.5 version-aware updates).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ContextManager, Protocol

from fhir_server.search.index import IndexSet
from fhir_server.search.plan import SearchPlan
from fhir_server.storage.audit import AuditStore
from fhir_server.storage.jobs import JobStore
from fhir_server.storage.outbox import Outbox
from fhir_server.storage.pages import PageStore
from fhir_server.storage.replay import ReplayCache
from fhir_server.storage.tabulation import Tabulation

__all__ = [
    "ResourceVersion",
    "HistoryQuery",
    "HistoryPage",
    "SearchResult",
    "UnitOfWork",
    "Store",
    "VersionConflict",
    "WouldBlock",
    "group_by_type",
]


def group_by_type(refs) -> dict[str, list[str]]:
    """(type, id) pairs as {type: [ids]}, in first-seen order (one query per type)."""
    grouped: dict[str, list[str]] = {}
    for t, i in refs:
        grouped.setdefault(t, []).append(i)
    return grouped


class WouldBlock(Exception):
    """An ``inline`` unit of work (one on the event loop) would have to wait (for a lock,
    another writer, a free reader): nothing has been changed, so the caller runs the whole
    request again where waiting is allowed."""


class VersionConflict(Exception):
    """Another writer stored this version first (the backend's last line of defence)."""


@dataclass(frozen=True, slots=True)
class ResourceVersion:
    resource_type: str
    id: str
    version_id: int
    last_updated: str  # FHIR instant, UTC, fixed width
    deleted: bool
    method: str  # POST, PUT, PATCH, DELETE: how this version came to be
    body: bytes | None  # the resource JSON (None for a deletion)
    #: whose data this version is: the Patients its compartment parameters name (stored
    #: with it by the engine, for the PDL log: a read need not parse the body to know);
    #: None: not known (a deletion, or stored before versions kept it)
    patients: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    resource_type: str | None = None  # None: system history
    id: str | None = None  # with resource_type: instance history
    since: str | None = None  # include versions with last_updated >= since
    #: ``_at``: only versions current at some point in [low, high]
    at: tuple[str, str] | None = None
    before_cursor: int | None = None  # page continuation: versions older than this cursor
    count: int = 50
    #: only versions of resources this search finds (the caller's access policy): their
    #: current version must match it, so deleted resources leave such a history
    visible: SearchPlan | None = None


@dataclass(frozen=True, slots=True)
class HistoryPage:
    versions: list[ResourceVersion]
    total: int
    #: cursor for the next (older) page, None when this is the last
    next_cursor: int | None


@dataclass(frozen=True, slots=True)
class SearchResult:
    #: (resource type, id) in the plan's order
    refs: list[tuple[str, str]]
    total: int | None
    #: each row's position, for a store that pages by cursor (``UnitOfWork.keyset``)
    cursors: list | None = None

    @property
    def ids(self) -> list[str]:
        return [i for _, i in self.refs]


class UnitOfWork(Protocol):
    def current(self, resource_type: str, id: str) -> ResourceVersion | None: ...

    def version(self, resource_type: str, id: str, version_id: int) -> ResourceVersion | None: ...

    def write(self, version: ResourceVersion, index: IndexSet | None) -> None:
        """Append ``version`` and make it current; ``index`` replaces the index entries (None for deletes)."""

    def history(self, query: HistoryQuery) -> HistoryPage: ...

    def search(self, plan: SearchPlan, *, with_total: bool, limit: int | None = None, offset: int | None = None) -> SearchResult:
        """Matches in the plan's order; ``limit``/``offset`` override the plan's page.
        A store with ``keyset = True`` also takes ``after`` (a cursor from an earlier
        result's ``cursors``: the page starts after that row) and ``high_water`` (see
        ``high_water()``: resources created since are left out)."""

    def count(self, plan: SearchPlan, cap: int | None = None, *, estimate: bool = False) -> int:
        """How many resources match, or ``cap`` when at least that many do. ``estimate``
        (``_total=estimate``) lets a store answer an upper bound it can count cheaper."""

    def tabulate(self, tabulation: Tabulation) -> list[tuple]:
        """The resources ``tabulation.plan`` finds, grouped by its columns: one tuple per
        distinct combination, the column values followed by how many have it
        (``storage/tabulation.py``; aggregated by the database, never from bodies)."""

    def load(self, resource_type: str, ids: list[str]) -> list[ResourceVersion]:
        """Current versions of ``ids`` (same order, missing and deleted ones left out)."""

    def load_refs(self, refs: list[tuple[str, str]]) -> list[ResourceVersion]:
        """Current versions of (type, id) pairs, in order, without missing or deleted ones."""

    def references_from(
        self, source_type: str, ids: list[str], param: str | None, target_type: str | None
    ) -> list[tuple[str, str]]:
        """Local targets that ``ids`` (of ``source_type``) reference through ``param`` (None: any)."""

    def references_to(
        self, source_type: str, param: str | None, targets: list[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        """Resources of ``source_type`` that reference any of ``targets`` through ``param`` (None: any)."""

    def reindex(self, resource_type: str, id: str, index: IndexSet) -> None:
        """Replace the index entries of the current version (no new version)."""

    def current_ids(self, resource_type: str, after: str | None, limit: int) -> list[str]:
        """Ids of current (not deleted) resources of a type, in id order, after ``after``."""

    def deleted_ids(self, resource_type: str, since: str, after: str | None, limit: int) -> list[str]:
        """Ids of resources of a type deleted after the instant ``since`` (fixed-width UTC)
        and deleted still, in id order, after ``after`` (the Bulk Data ``deleted`` list)."""

    def newest_instant(self) -> str | None:
        """The greatest last_updated stored, so new versions never go back in time."""

    def guard(self, key: str) -> None:
        """Serialize this unit of work with every other one that guards ``key``, until
        commit: a rule that reads a count and then writes (a team's free places) holds
        across processes. Losers of a race get ``ConcurrentWrite``/``VersionConflict``
        or wait, depending on the engine."""

    def versions_since(self, after: int | None, limit: int) -> list[tuple[int, ResourceVersion]]:
        """Every stored version in write order, after the cursor ``after``: (cursor, version)."""

    def statistics(self) -> dict[str, tuple[int, int]]:
        """Per resource type: (current resources not deleted, versions)."""

    def generation(self, name: str) -> int:
        """A counter that ``bump`` raises (0 when never raised): how server processes
        sharing a database learn that shared configuration (stored SearchParameters)
        changed."""

    def bump(self, name: str) -> None:
        """Raise the counter ``name`` in this (write) unit of work."""

    @property
    def outbox(self) -> Outbox:
        """The notification outbox (``storage.outbox``), in this unit of work's transaction."""


class Store(Protocol):
    #: search snapshots, shared by every process on this database
    pages: PageStore
    #: keys that may be used once (the token endpoint's ``jti``), shared likewise
    replay: ReplayCache
    #: the PDL access log: append-only, apart from the resources and their indexes
    audit: AuditStore
    #: background jobs leased to one process at a time (the Bulk Data export), shared likewise
    jobs: JobStore
    #: units of work may run on the event loop (``inline=True``): a local database that can
    #: tell at once whether it would wait; False for a store across a network
    inline: bool

    def unit_of_work(
        self, *, write: bool, deadline: float | None = None, inline: bool = False
    ) -> ContextManager[UnitOfWork]:
        """``deadline`` (``time.monotonic()``): past it, the store stops the work with
        ``TooCostly`` and rolls it back. ``inline`` (only when the store has ``inline``): the
        unit of work runs on the event loop and must not wait for anything; where it
        would, it raises ``WouldBlock`` before it has changed anything."""

    def close(self) -> None: ...
