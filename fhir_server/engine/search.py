"""search: type, system and compartment search over the search plan, with
snapshot paging, ``_include``/``_revinclude`` and ``_summary``/``_elements``
(R4 search.html)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from fhir_server.engine import access
from fhir_server.engine.paging import SNAPSHOT_LIMIT, SearchOrigin, Snapshot
from fhir_server.engine.valueset import expand_value_sets
from fhir_server.engine.work import Work
from fhir_server.errors import Gone, InvalidSearch, Issue, NotFound
from fhir_server.search.plan import CompartmentClause, Include, SearchPlan, parse_search
from fhir_server.spec import load_table
from fhir_server.storage.base import ResourceVersion

__all__ = [
    "SearchOrigin", "SearchPage", "plan_search", "plan_everything", "plan_origin", "search", "page",
    "compartment_clause", "MAX_INCLUDE_DEPTH", "PAGING_PARAMS",
]

MAX_INCLUDE_DEPTH = 4
#: parameters that select a page rather than a match, never repeated in links
PAGING_PARAMS = frozenset({"_count", "_offset", "_getpages", "_getpagesoffset"})


@dataclass(frozen=True)
class SearchPage:
    plan: SearchPlan
    matches: list[ResourceVersion]
    included: list[ResourceVersion]
    total: int | None
    offset: int
    count: int
    #: the snapshot behind the paging links (None: links repeat the query)
    snapshot: Snapshot | None
    has_next: bool
    warnings: tuple[Issue, ...]
    #: the query as the client sent it (for the self link)
    self_params: tuple[tuple[str, str], ...] = ()


def compartment_clause(compartment_type: str, compartment_id: str, resource_type: str | None) -> CompartmentClause:
    table = load_table("compartments").get(compartment_type)
    if table is None:
        raise NotFound(f"There is no {compartment_type} compartment")
    members = {t: tuple(codes) for t, codes in table.items() if codes and t != "_source"}
    if resource_type is not None:
        if resource_type not in members and resource_type != compartment_type:
            raise NotFound(f"{resource_type} is not in the {compartment_type} compartment")
        members = {resource_type: members.get(resource_type, ())}
    return CompartmentClause(
        compartment_type, compartment_id, tuple(sorted(members.items())),
        include_owner=resource_type in (None, compartment_type),
    )


def plan_everything(work: Work, compartment_type: str, compartment_id: str, params: list[tuple[str, str]]) -> SearchPlan:
    """``$everything``: the compartment, plus what its members reference (R4: the server SHOULD
    return resources referenced by the compartment's resources, e.g. Organization, Practitioner)."""
    clause = compartment_clause(compartment_type, compartment_id, None)
    plan = plan_search(work, None, params, compartment=clause)
    members = (compartment_type, *(t for t, _ in clause.params_by_type))
    return dataclasses.replace(plan, includes=tuple(Include(t, None, None, False, False) for t in dict.fromkeys(members)))


def plan_search(
    work: Work, resource_type: str | None, params: list[tuple[str, str]], *, compartment: CompartmentClause | None = None
) -> SearchPlan:
    rt = work.runtime
    plan = parse_search(
        resource_type, params, work.registry,
        default_count=rt.default_page_size, max_count=rt.max_page_size, base_url=work.ctx.base_url,
        limits=rt.search_limits,
    )
    if plan.unknown and work.ctx.strict_handling:
        raise InvalidSearch(
            "Unknown or unsupported search parameters (Prefer: handling=strict)",
            issues=[Issue(f"{name}: {why}", "not-supported", (name,)) for name, why in plan.unknown],
        )
    if compartment is not None:
        plan = dataclasses.replace(plan, clauses=(compartment, *plan.clauses))
        if resource_type is None and not plan.types:
            plan = dataclasses.replace(plan, types=tuple(t for t, _ in compartment.params_by_type))
    return access.restrict(work, expand_value_sets(work, plan))


def _owner(work: Work) -> str:
    """Whose snapshot: the caller's identity (pages are theirs alone)."""
    caller = work.ctx.caller
    if caller is None:
        return ""
    return "|".join((caller.role, caller.client_id or "", caller.user or "", caller.organization or ""))


def plan_origin(work: Work, origin: SearchOrigin) -> SearchPlan:
    """The plan of a search as first asked (for a later page, on any server process)."""
    params = list(origin.params)
    if origin.everything and origin.compartment:
        return plan_everything(work, *origin.compartment, params)
    if origin.compartment:
        clause = compartment_clause(*origin.compartment, origin.resource_type)
        return plan_search(work, origin.resource_type, params, compartment=clause)
    return plan_search(work, origin.resource_type, params)


def _warnings(plan: SearchPlan) -> tuple[Issue, ...]:
    return tuple(
        Issue(f"Parameter {name} was ignored: {why}", "not-supported", (name,), severity="warning")
        for name, why in plan.unknown
    )


def search(work: Work, plan: SearchPlan, params: list[tuple[str, str]], *, origin: SearchOrigin | None = None) -> SearchPage:
    """A search's first page. ``origin``: how to plan it again for later pages (default:
    a plain search of ``plan.resource_type`` with ``params``)."""
    uow = work.uow
    if plan.summary_count:
        total = uow.search(plan, with_total=True, limit=0).total
        return SearchPage(plan, [], [], total, 0, 0, None, False, _warnings(plan), tuple(params))
    if uow.keyset:
        return _keyset_first(work, plan, params, origin)
    # the first page fixes a snapshot of the matches (up to SNAPSHOT_LIMIT)
    result = uow.search(plan, with_total=False, limit=SNAPSHOT_LIMIT + 1, offset=0)
    refs = result.refs
    complete = len(refs) <= SNAPSHOT_LIMIT
    refs = refs[:SNAPSHOT_LIMIT]
    if complete:
        total = len(refs) if plan.total != "none" else None
    else:
        # past the snapshot, counting re-runs the whole query: only when asked for
        # (R4 leaves _total's default to the server; HAPI omits it for large results too)
        total = uow.search(plan, with_total=True, limit=0).total if plan.total in ("accurate", "estimate") else None
    snapshot = None
    if plan.offset + plan.count < len(refs) or not complete or plan.offset > 0:
        kept = tuple((k, v) for k, v in params if k not in PAGING_PARAMS)
        origin = origin or SearchOrigin(plan.resource_type, kept)
        snapshot = work.runtime.pages.put(refs, total, complete, kept, origin, owner=_owner(work))
    found = _page(work, plan, refs, complete, total, plan.offset, plan.count, snapshot)
    return dataclasses.replace(found, self_params=tuple(params))


def page(work: Work, token: str, offset: int, count: int | None) -> SearchPage:
    """A page of an earlier search's snapshot (the ``next``/``previous`` links)."""
    if offset > work.runtime.search_limits.max_offset:
        raise InvalidSearch(f"_getpagesoffset may be at most {work.runtime.search_limits.max_offset}")
    snapshot = work.runtime.pages.get(token)
    if snapshot is None or snapshot.owner != _owner(work):  # another caller's pages do not exist for this one
        raise Gone("This search's result pages have expired; run the search again")
    plan = plan_origin(work, snapshot.origin)
    count = plan.count if count is None else min(count, work.runtime.max_page_size)
    if snapshot.keyset:
        return _keyset_page(work, plan, snapshot, offset, count)
    found = _page(work, plan, list(snapshot.refs), snapshot.complete, snapshot.total, offset, count, snapshot)
    return dataclasses.replace(found, self_params=snapshot.params)


def _keyset_first(work: Work, plan: SearchPlan, params, origin: SearchOrigin | None) -> SearchPage:
    """The first page on a store that pages by cursor: one page read, not a snapshot of
    2,000 matches; the total counted up to ``SNAPSHOT_LIMIT`` (beyond, only when asked)."""
    uow = work.uow
    if plan.count == 0:  # only the total (R4: _count=0 asks for no entries)
        total = None if plan.total == "none" else uow.count(plan)
        return _shown(work, plan, [], total, plan.offset, 0, None, False, tuple(params))
    high_water = uow.high_water()
    result = uow.search(plan, with_total=False, limit=plan.count + 1, offset=plan.offset, high_water=high_water)
    refs = result.refs[: plan.count]
    has_next = len(result.refs) > plan.count
    total = None
    if plan.total != "none":
        if not has_next and (refs or plan.offset == 0):
            total = plan.offset + len(refs)
        else:
            total = uow.count(plan, SNAPSHOT_LIMIT + 1)
            if total > SNAPSHOT_LIMIT:
                total = uow.count(plan, estimate=plan.total == "estimate") if plan.total in ("accurate", "estimate") else None
    snapshot = None
    if has_next or plan.offset > 0:
        kept = tuple((k, v) for k, v in params if k not in PAGING_PARAMS)
        origin = origin or SearchOrigin(plan.resource_type, kept)
        cursors = {}
        if has_next and result.cursors and result.cursors[plan.count - 1] is not None:
            cursors[plan.offset + plan.count] = result.cursors[plan.count - 1]
        snapshot = work.runtime.pages.put(
            (), total, False, kept, origin, owner=_owner(work), high_water=high_water, cursors=cursors,
        )
    return _shown(work, plan, refs, total, plan.offset, plan.count, snapshot, has_next, tuple(params))


def _keyset_page(work: Work, plan: SearchPlan, snapshot: Snapshot, offset: int, count: int) -> SearchPage:
    start, cursor = snapshot.nearest(offset)
    result = work.uow.search(
        plan, with_total=False, limit=count + 1, offset=offset - start, after=cursor, high_water=snapshot.high_water,
    )
    refs = result.refs[:count]
    has_next = len(result.refs) > count
    if has_next and result.cursors and result.cursors[count - 1] is not None:
        snapshot = work.runtime.pages.remember(snapshot, offset + count, result.cursors[count - 1])
    return _shown(work, plan, refs, snapshot.total, offset, count, snapshot, has_next, snapshot.params)


def _shown(work, plan, refs, total, offset, count, snapshot, has_next, self_params) -> SearchPage:
    matches = access.shown_all(work, work.uow.load_refs(refs))
    work.ctx.budget.spend(len(matches), "The page of matches")
    included = _includes(work, plan.includes, matches)
    return SearchPage(plan, matches, included, total, offset, count, snapshot, has_next, _warnings(plan), self_params)


def _page(work, plan, refs, complete, total, offset, count, snapshot) -> SearchPage:
    uow = work.uow
    if offset < len(refs) or complete:
        page_refs = refs[offset : offset + count]
        has_next = offset + count < len(refs) or not complete
    else:  # past the snapshot limit: live paging
        page_refs = uow.search(plan, with_total=False, limit=count + 1, offset=offset).refs
        has_next = len(page_refs) > count
        page_refs = page_refs[:count]
    if snapshot is not None and work.ctx.caller is not None:
        # a snapshot is older than this page: what the caller may see may have changed
        visible = access.visible_refs(work, page_refs)
        page_refs = [r for r in page_refs if r in visible]
    matches = access.shown_all(work, uow.load_refs(page_refs))
    work.ctx.budget.spend(len(matches), "The page of matches")
    included = _includes(work, plan.includes, matches)
    return SearchPage(plan, matches, included, total, offset, count, snapshot, has_next, _warnings(plan))


def _include_step(work: Work, include: Include, frontier: list[ResourceVersion]) -> list[tuple[str, str]]:
    uow = work.uow
    param = include.param.code if include.param else None
    if include.reverse:
        targets = [(v.resource_type, v.id) for v in frontier]
        return uow.references_to(include.source_type, param, targets) if targets else []
    ids = [v.id for v in frontier if v.resource_type == include.source_type]
    return uow.references_from(include.source_type, ids, param, include.target_type) if ids else []


def _includes(work: Work, includes: tuple[Include, ...], matches: list[ResourceVersion]) -> list[ResourceVersion]:
    if not includes or not matches:
        return []
    seen = {(v.resource_type, v.id) for v in matches}
    included: list[ResourceVersion] = []
    frontier = matches
    for depth in range(MAX_INCLUDE_DEPTH + 1):
        active = [i for i in includes if depth == 0 or i.iterate]
        if not active or not frontier:
            break
        found: list[tuple[str, str]] = []
        for include in active:
            found.extend(r for r in _include_step(work, include, frontier) if r not in seen)
        found = list(dict.fromkeys(found))
        seen.update(found)
        # what the caller may not read is neither shown nor followed further
        found = access.readable_refs(work, found)
        # counted before they are loaded: an exploding _include:iterate stops here
        work.ctx.budget.spend(len(found), "_include/_revinclude")
        frontier = work.uow.load_refs(found)
        included.extend(access.shown_all(work, frontier))
    return included
