"""Search parameters as data: registry, FHIRPath extraction, query parsing into a SearchPlan."""

from fhir_server.search.extract import extract_index
from fhir_server.search.index import DateEntry, IndexSet, TokenEntry
from fhir_server.search.limits import SearchLimits
from fhir_server.search.plan import Clause, SearchPlan, SortKey, parse_search, split_or
from fhir_server.search.registry import COLUMN_PARAMS, SearchParamDef, SearchRegistry

__all__ = [
    "COLUMN_PARAMS",
    "Clause",
    "DateEntry",
    "IndexSet",
    "SearchLimits",
    "SearchParamDef",
    "SearchPlan",
    "SearchRegistry",
    "SortKey",
    "TokenEntry",
    "extract_index",
    "parse_search",
    "split_or",
]
