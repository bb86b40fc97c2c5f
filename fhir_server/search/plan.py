"""Query string -> SearchPlan: pure parsing, no I/O (R4 search.html).

Parameters with the same name AND; comma-separated values inside one OR.
Unknown or unsupported parameters are collected, not dropped: the engine reports
them in the Bundle (lenient) or refuses the search (``Prefer: handling=strict``).
"""

from __future__ import annotations

from dataclasses import dataclass

from fhir_server.errors import InvalidSearch
from fhir_server.search.params import PARAM_TYPES
from fhir_server.search.registry import SearchParamDef, SearchRegistry

__all__ = ["Clause", "SortKey", "SearchPlan", "parse_search", "split_or"]

#: result/format parameters that are not filters
_IGNORED = frozenset({"_format", "_pretty"})
_TOTAL_MODES = frozenset({"none", "estimate", "accurate"})
_SORTABLE_COLUMNS = frozenset({"_id", "_lastUpdated"})


@dataclass(frozen=True)
class Clause:
    param: SearchParamDef
    modifier: str | None
    #: OR-ed values; for ``:missing`` a single bool
    values: tuple


@dataclass(frozen=True)
class SortKey:
    param: SearchParamDef
    descending: bool


@dataclass(frozen=True)
class SearchPlan:
    resource_type: str
    clauses: tuple[Clause, ...] = ()
    count: int = 20
    offset: int = 0
    sort: tuple[SortKey, ...] = ()
    total: str = "accurate"
    summary_count: bool = False
    #: parameters that were not understood (name, reason)
    unknown: tuple[tuple[str, str], ...] = ()


def split_or(raw: str) -> list[str]:
    """Split on commas that are not escaped with a backslash."""
    parts, buf, i = [], "", 0
    while i < len(raw):
        if raw[i] == "\\" and i + 1 < len(raw):
            buf += raw[i : i + 2]
            i += 2
            continue
        if raw[i] == ",":
            parts.append(buf)
            buf = ""
        else:
            buf += raw[i]
        i += 1
    parts.append(buf)
    return parts


def _int_param(name: str, raw: str, minimum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise InvalidSearch(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise InvalidSearch(f"{name} must be at least {minimum}, got {value}")
    return value


def parse_search(
    resource_type: str,
    params: list[tuple[str, str]],
    registry: SearchRegistry,
    *,
    default_count: int = 20,
    max_count: int = 1000,
) -> SearchPlan:
    clauses: list[Clause] = []
    unknown: list[tuple[str, str]] = []
    sort: list[SortKey] = []
    count, offset, total, summary_count = default_count, 0, "accurate", False
    for name, raw in params:
        if name in _IGNORED:
            continue
        if name == "_count":
            count = min(_int_param("_count", raw, 0), max_count)
        elif name == "_offset":
            offset = _int_param("_offset", raw, 0)
        elif name == "_total":
            if raw not in _TOTAL_MODES:
                raise InvalidSearch(f"_total must be one of none, estimate, accurate; got {raw!r}")
            total = raw
        elif name == "_summary" and raw == "count":
            summary_count = True
        elif name == "_sort":
            for key in split_or(raw):
                code = key.lstrip("-")
                d = registry.get(resource_type, code)
                if d is None or code not in _SORTABLE_COLUMNS:
                    unknown.append((f"_sort={key}", "sorting by this parameter is not supported"))
                    continue
                sort.append(SortKey(d, key.startswith("-")))
        else:
            clause = _parse_clause(resource_type, name, raw, registry, unknown)
            if clause is not None:
                clauses.append(clause)
    return SearchPlan(resource_type, tuple(clauses), count, offset, tuple(sort), total, summary_count, tuple(unknown))


def _parse_clause(resource_type, name, raw, registry, unknown) -> Clause | None:
    code, _, modifier = name.partition(":")
    definition = registry.get(resource_type, code)
    if definition is None:
        unknown.append((name, f"unknown search parameter for {resource_type}"))
        return None
    if not registry.is_supported(definition):
        unknown.append((name, f"the search parameter '{code}' ({definition.type}) is not supported yet"))
        return None
    module = PARAM_TYPES[definition.type]
    modifier = modifier or None
    if modifier is not None and modifier not in module.MODIFIERS:
        raise InvalidSearch(f"Modifier ':{modifier}' is not supported for {definition.type} parameter '{code}'")
    if modifier == "missing":
        if raw not in ("true", "false"):
            raise InvalidSearch(f"{name} must be true or false")
        return Clause(definition, modifier, (raw == "true",))
    values = tuple(module.parse_value(v, modifier) for v in split_or(raw))
    return Clause(definition, modifier, values)
