"""type search (R4 search.html) over the search plan; the full engine extends the plan."""

from __future__ import annotations

from dataclasses import dataclass, replace

from fhir_server.engine.work import Work
from fhir_server.errors import InvalidSearch, Issue
from fhir_server.search.plan import SearchPlan, parse_search
from fhir_server.storage.base import ResourceVersion

__all__ = ["SearchOutcome", "plan_search", "search"]


@dataclass(frozen=True)
class SearchOutcome:
    plan: SearchPlan
    versions: list[ResourceVersion]
    total: int | None
    #: warnings for the Bundle's OperationOutcome entry (ignored parameters)
    warnings: tuple[Issue, ...]


def plan_search(work: Work, resource_type: str, params: list[tuple[str, str]]) -> SearchPlan:
    rt = work.runtime
    plan = parse_search(
        resource_type, params, rt.registry, default_count=rt.default_page_size, max_count=rt.max_page_size
    )
    if plan.unknown and work.ctx.strict_handling:
        raise InvalidSearch(
            "Unknown or unsupported search parameters (Prefer: handling=strict)",
            issues=[Issue(f"{name}: {why}", "not-supported", (name,)) for name, why in plan.unknown],
        )
    return plan


def search(work: Work, plan: SearchPlan) -> SearchOutcome:
    with_total = plan.total != "none" or plan.summary_count
    if plan.summary_count:
        plan = replace(plan, count=0)
    result = work.uow.search(plan, with_total=with_total)
    versions = work.uow.load(plan.resource_type, result.ids)
    warnings = tuple(
        Issue(f"Parameter {name} was ignored: {why}", "not-supported", (name,), severity="warning")
        for name, why in plan.unknown
    )
    return SearchOutcome(plan, versions, result.total, warnings)
