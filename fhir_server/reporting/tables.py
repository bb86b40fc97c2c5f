"""The reporting engine's one way into the store: criteria (as a search would read them)
tabulated by the store (``storage/tabulation.py``), never bodies of the counted resources.

The criteria are parsed without the caller's access policy: who may run a report is
checked once, at its entry (``reporting.access``), and what it returns is aggregates and
pseudonyms only.
"""

from __future__ import annotations

from fhir_server.engine import Work
from fhir_server.search import SearchLimits, parse_search
from fhir_server.storage.tabulation import Tabulation

__all__ = ["MAX_VALUES", "tabulate"]

#: comma-separated values the reports' own criteria may hold (ids in batches): the
#: server's, not a client's, so not EVI_MAX_OR_VALUES
MAX_VALUES = 500
_LIMITS = SearchLimits(max_or_values=MAX_VALUES)


def tabulate(work: Work, resource_type: str, criteria: list[tuple[str, str]], *columns) -> list[tuple]:
    """Rows of the columns' values followed by how many resources have them."""
    rt = work.runtime
    plan = parse_search(resource_type, criteria, work.registry, default_count=rt.default_page_size,
                        max_count=rt.max_page_size, base_url=work.ctx.base_url, limits=_LIMITS)
    if plan.unknown:  # the guide's parameters are missing: a server fault, never the client's
        raise RuntimeError(f"reporting criteria not understood: {plan.unknown}")
    return work.uow.tabulate(Tabulation(plan, tuple(columns)))
