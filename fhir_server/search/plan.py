"""Query string -> SearchPlan: pure parsing, no I/O (R4 search.html).

Parameters with the same name AND; comma-separated values inside one OR.
Chains (``subject:Patient.identifier=...``) and reverse chains
(``_has:Observation:patient:code=...``) nest clauses. Unknown or unsupported
parameters are collected, not dropped: the engine reports them in the Bundle
(lenient) or refuses the search (``Prefer: handling=strict``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from fhir_server.errors import InvalidSearch
from fhir_server.search.escaping import split_unescaped
from fhir_server.search import limits as _limits
from fhir_server.search.limits import SearchLimits, check_size, split_values
from fhir_server.search.params import PARAM_TYPES
from fhir_server.search.registry import SearchParamDef, SearchRegistry

__all__ = [
    "Clause",
    "Chain",
    "HasClause",
    "CompartmentClause",
    "AnyOf",
    "TypeIn",
    "Include",
    "SortKey",
    "SearchPlan",
    "parse_search",
    "split_or",
    "SUMMARY_MODES",
]

#: parameters that shape the response, not the match; handled outside the plan or ignored
_IGNORED = frozenset({"_format", "_pretty", "_getpages", "_page"})
_TOTAL_MODES = frozenset({"none", "estimate", "accurate"})
SUMMARY_MODES = frozenset({"true", "false", "text", "data", "count"})
_CONTAINED_MODES = frozenset({"false", "true", "both"})
#: refused clearly (R4 allows a server not to support them)
_REFUSED = {
    "_text": "full-text search (_text) is not supported",
    "_content": "full-text search (_content) is not supported",
    "_query": "named queries (_query) are not supported",
    "_filter": "_filter is not supported",
    "_list": "_list is not supported",
    "_containedType": "_containedType is not supported",
}
#: links of chains and _has after the first in one parameter: each link nests one more
#: SELECT in SQLite, and a fourth overflowed its parser stack ("parser stack overflow")
#: for _has and untyped chains; with three every combination runs
MAX_CHAIN_DEPTH = 3
#: modifiers the stores compile for the column parameters (_id, _lastUpdated)
_COLUMN_MODIFIERS = {"token": frozenset({"not", "missing"}), "date": frozenset({"missing"})}


@dataclass(frozen=True)
class Chain:
    """A chained parameter: the reference points at a resource of one of the types
    that matches that type's filter (the parameter may differ by target type)."""

    by_type: tuple[tuple[str, "Filter"], ...]

    @property
    def target_types(self) -> tuple[str, ...]:
        return tuple(t for t, _ in self.by_type)


@dataclass(frozen=True)
class Clause:
    param: SearchParamDef
    modifier: str | None
    #: OR-ed values, parsed by the parameter type's module; for ``:missing`` one bool
    values: tuple = ()
    chain: Chain | None = None
    #: the resource has at most one value for the parameter, so AND-ed clauses on it
    #: may be tested together on that value (a store may merge them)
    single_valued: bool = False


@dataclass(frozen=True)
class HasClause:
    """``_has:Source:param:inner``: some Source whose ``param`` points here matches ``inner``."""

    source_type: str
    reference: SearchParamDef
    inner: "Filter"


@dataclass(frozen=True)
class CompartmentClause:
    """In the compartment ``compartment_type/compartment_id``: a resource of type T
    belongs when one of T's listed reference parameters points at the owner
    (R4 compartmentdefinition.html)."""

    compartment_type: str
    compartment_id: str
    #: (resource type, reference parameter codes) of the member types
    params_by_type: tuple[tuple[str, tuple[str, ...]], ...]
    #: the compartment owner itself belongs too (Patient/123 in its own compartment)
    include_owner: bool = False

    def params_for(self, resource_type: str) -> tuple[str, ...]:
        for t, codes in self.params_by_type:
            if t == resource_type:
                return codes
        return ()


@dataclass(frozen=True)
class TypeIn:
    """The resource is of one of ``types`` (with ``exclude``: of none of them); a branch of
    a system-wide ``AnyOf``."""

    types: tuple[str, ...]
    exclude: bool = False


@dataclass(frozen=True)
class AnyOf:
    """Some group matches: an OR of AND-ed filters. No group: nothing matches. The access
    policy is one (domain.md §5: visible when one criterion of its type matches); a client's
    query string cannot express it."""

    groups: tuple[tuple["Filter", ...], ...]


Filter = Union[Clause, HasClause, CompartmentClause, TypeIn, AnyOf]


@dataclass(frozen=True)
class Include:
    source_type: str
    #: None for ``*`` (every reference parameter)
    param: SearchParamDef | None
    target_type: str | None
    iterate: bool
    reverse: bool


@dataclass(frozen=True)
class SortKey:
    param: SearchParamDef
    descending: bool


@dataclass(frozen=True)
class SearchPlan:
    #: None for a system search (all types, or those named by ``_type``)
    resource_type: str | None
    clauses: tuple[Filter, ...] = ()
    types: tuple[str, ...] = ()
    includes: tuple[Include, ...] = ()
    sort: tuple[SortKey, ...] = ()
    count: int = 20
    offset: int = 0
    #: none / estimate / accurate, or None: the server decides (docs/search.md)
    total: str | None = None
    summary: str | None = None
    elements: tuple[str, ...] = ()
    contained: str = "false"
    #: parameters that were not understood (name, reason)
    unknown: tuple[tuple[str, str], ...] = ()

    @property
    def summary_count(self) -> bool:
        return self.summary == "count"


def split_or(raw: str) -> list[str]:
    """Split on commas that are not escaped with a backslash."""
    return split_unescaped(raw, ",")


class _Unknown(Exception):
    """A parameter this server does not know or support: reported, not fatal."""


class _Parser:
    def __init__(
        self, registry: SearchRegistry, resource_type: str | None, types: tuple[str, ...], base_url: str | None,
        limits: SearchLimits,
    ):
        self.registry = registry
        self.limits = limits
        self.base_url = base_url
        self.resource_type = resource_type
        self.types = types

    # -- filters ---------------------------------------------------------------
    def filter(self, resource_type: str | None, name: str, raw: str, depth: int = 0) -> Filter:
        if depth > MAX_CHAIN_DEPTH:
            raise InvalidSearch(f"{name}: chains deeper than {MAX_CHAIN_DEPTH} are not supported")
        if name.startswith("_has:"):
            return self._has(resource_type, name, raw, depth)
        head, dot, rest = name.partition(".")
        code, _, modifier = head.partition(":")
        definition = self._definition(resource_type, code)
        if dot:
            return self._chain(resource_type, definition, modifier or None, rest, raw, depth)
        clause = self._clause(definition, modifier or None, raw, name)
        if (
            resource_type is not None and clause.modifier is None and not definition.column
            and definition.type in ("date", "number", "quantity")
        ):
            if self.registry.is_single_valued(resource_type, definition):
                clause = Clause(clause.param, None, clause.values, None, True)
        return clause

    def _definition(self, resource_type: str | None, code: str) -> SearchParamDef:
        if resource_type is None:
            definition = self.registry.get_common(code)
            if definition is None and self.types:
                found = {self.registry.get(t, code) for t in self.types}
                definition = found.pop() if len(found) == 1 else None
        else:
            definition = self.registry.get(resource_type, code)
        if definition is None:
            where = resource_type or ("/".join(self.types) if self.types else "a system search")
            raise _Unknown(f"unknown search parameter '{code}' for {where}")
        if not self.registry.is_supported(definition):
            raise _Unknown(f"the search parameter '{code}' ({definition.type}) is not supported")
        return definition

    def _clause(self, definition: SearchParamDef, modifier: str | None, raw: str, name: str) -> Clause:
        module = PARAM_TYPES[definition.type]
        if modifier == "missing":
            if raw not in ("true", "false"):
                raise InvalidSearch(f"{name} must be true or false")
            return Clause(definition, modifier, (raw == "true",))
        allowed = _COLUMN_MODIFIERS.get(definition.type, frozenset()) if definition.column else module.MODIFIERS
        if modifier is not None and modifier not in allowed and not (
            not definition.column and _is_type_modifier(module, modifier, self.registry)
        ):
            raise InvalidSearch(
                f"Modifier ':{modifier}' is not supported for {definition.type} parameter '{definition.code}'"
            )
        raws = split_values(name, raw, self.limits)
        if definition.type == "composite":
            return Clause(definition, modifier, tuple(self._composite(definition, v) for v in raws))
        values = tuple(module.parse_value(v, modifier, definition) for v in raws)
        if definition.type == "reference" and self.base_url:
            values = tuple(_localize(v, self.base_url) for v in values)
        return Clause(definition, modifier, values)

    def _composite(self, definition: SearchParamDef, raw: str):
        components = self.registry.components(definition)
        parts = PARAM_TYPES["composite"].split_parts(raw)
        if len(parts) != len(components):
            raise InvalidSearch(
                f"{definition.code} needs {len(components)} parts separated by $, got {raw!r}"
            )
        return PARAM_TYPES["composite"].CompositeValue(
            tuple(PARAM_TYPES[d.type].parse_value(part, None, d) for (d, _), part in zip(components, parts))
        )

    def _chain(self, resource_type, definition, modifier, rest, raw, depth) -> Clause:
        if definition.type != "reference":
            raise InvalidSearch(f"'{definition.code}' is a {definition.type} parameter and cannot be chained")
        if modifier is not None:
            if not self.registry.is_type(modifier):
                raise InvalidSearch(f"Chaining modifier ':{modifier}' must be a resource type")
            targets = (modifier,)
        else:
            targets = definition.target or self.registry.resource_types()
        next_code = rest.split(".", 1)[0].split(":", 1)[0]
        usable = tuple(t for t in targets if next_code.startswith("_has") or self.registry.get(t, next_code) is not None)
        if not usable:
            raise _Unknown(f"no target of '{definition.code}' has a search parameter '{next_code}'")
        return Clause(definition, None, (), Chain(tuple((t, self.filter(t, rest, raw, depth + 1)) for t in usable)))

    def _has(self, resource_type, name, raw, depth) -> HasClause:
        parts = name.split(":", 3)
        if len(parts) < 4 or not all(parts[1:]):
            raise InvalidSearch(f"{name}: expected _has:[type]:[reference parameter]:[parameter]")
        _, source_type, ref_code, inner_name = parts
        if not self.registry.is_type(source_type):
            raise InvalidSearch(f"{name}: unknown resource type '{source_type}'")
        reference = self._definition(source_type, ref_code)
        if reference.type != "reference":
            raise InvalidSearch(f"{name}: '{ref_code}' is not a reference parameter of {source_type}")
        return HasClause(source_type, reference, self.filter(source_type, inner_name, raw, depth + 1))

    # -- result parameters -----------------------------------------------------
    def include(self, name: str, raw: str) -> Include:
        reverse = name.startswith("_revinclude")
        _, _, modifier = name.partition(":")
        if modifier not in ("", "iterate", "recurse"):
            raise InvalidSearch(f"{name}: the only modifier is :iterate")
        iterate = modifier in ("iterate", "recurse")
        if raw == "*":
            if self.resource_type is None:
                raise InvalidSearch(f"{name}=* needs a resource type")
            return Include(self.resource_type, None, None, iterate, reverse)
        parts = raw.split(":")
        if len(parts) not in (2, 3) or not self.registry.is_type(parts[0]):
            raise InvalidSearch(f"{name}={raw}: expected [type]:[parameter] or [type]:[parameter]:[target type]")
        if parts[1] == "*":
            return Include(parts[0], None, parts[2] if len(parts) == 3 else None, iterate, reverse)
        definition = self._definition(parts[0], parts[1])
        if definition.type != "reference":
            raise InvalidSearch(f"{name}={raw}: '{parts[1]}' is not a reference parameter")
        target = parts[2] if len(parts) == 3 else None
        if target is not None and not self.registry.is_type(target):
            raise InvalidSearch(f"{name}={raw}: unknown target type '{target}'")
        return Include(parts[0], definition, target, iterate, reverse)

    def sort(self, raw: str, unknown: list) -> list[SortKey]:
        keys = []
        for key in split_values("_sort", raw, self.limits):
            code = key.removeprefix("-")
            try:
                definition = self._definition(self.resource_type, code)
            except _Unknown as exc:
                unknown.append((f"_sort={key}", str(exc)))
                continue
            if definition.type == "composite":
                unknown.append((f"_sort={key}", "sorting by a composite parameter is not supported"))
                continue
            keys.append(SortKey(definition, key.startswith("-")))
        return keys


def _split_commas(raw: str) -> list[str]:
    return raw.split(",")


def _localize(value, base_url: str):
    """An absolute reference to this server's own base is a local one."""
    if getattr(value, "base", None) and value.base.rstrip("/") == base_url.rstrip("/"):
        return type(value)(value.target_type, value.target_id, None, None)
    return value


def _is_type_modifier(module, modifier: str, registry: SearchRegistry) -> bool:
    return getattr(module, "TYPE_MODIFIER", False) and registry.is_type(modifier)


def parse_search(
    resource_type: str | None,
    params: list[tuple[str, str]],
    registry: SearchRegistry,
    *,
    default_count: int = 20,
    max_count: int = 1000,
    base_url: str | None = None,
    limits: SearchLimits = SearchLimits(),
) -> SearchPlan:
    if len(params) > limits.max_parameters:
        raise InvalidSearch(f"The search has {len(params)} parameters; at most {limits.max_parameters} are allowed")
    types: tuple[str, ...] = ()
    if resource_type is None:
        for name, raw in params:
            if name == "_type":
                types = tuple(t for t in split_values(name, raw, limits, _split_commas) if t)
                bad = [t for t in types if not registry.is_type(t)]
                if bad:
                    raise InvalidSearch(f"_type names unknown resource types: {', '.join(bad)}")
    parser = _Parser(registry, resource_type, types, base_url, limits)
    clauses: list[Filter] = []
    unknown: list[tuple[str, str]] = []
    includes: list[Include] = []
    sort: list[SortKey] = []
    count, offset, total, summary, elements, contained = default_count, 0, None, None, (), "false"
    for name, raw in params:
        if name in _IGNORED or name == "_type":
            continue
        if name == "_count":
            count = min(_limits.integer("_count", raw, 0), max_count)
        elif name == "_offset":
            offset = _limits.offset(name, raw, limits)
        elif name == "_total":
            if raw not in _TOTAL_MODES:
                raise InvalidSearch(f"_total must be one of none, estimate, accurate; got {raw!r}")
            total = raw
        elif name == "_summary":
            if raw not in SUMMARY_MODES:
                raise InvalidSearch(f"_summary must be one of {', '.join(sorted(SUMMARY_MODES))}; got {raw!r}")
            summary = None if raw == "false" else raw
        elif name == "_elements":
            elements = tuple(e.strip() for e in split_values(name, raw, limits, _split_commas) if e.strip())
        elif name == "_contained":
            if raw not in _CONTAINED_MODES:
                raise InvalidSearch(f"_contained must be false, true or both; got {raw!r}")
            contained = raw
            if raw != "false":
                unknown.append((name, "searching contained resources is not supported; only top-level resources match"))
        elif name == "_sort":
            sort.extend(parser.sort(raw, unknown))
        elif name.startswith("_include") or name.startswith("_revinclude"):
            try:
                includes.append(parser.include(name, raw))
            except _Unknown as exc:
                unknown.append((f"{name}={raw}", str(exc)))
        elif name.split(":", 1)[0] in _REFUSED:
            unknown.append((name, _REFUSED[name.split(":", 1)[0]]))
        else:
            try:
                clauses.append(parser.filter(resource_type, name, raw))
            except _Unknown as exc:
                unknown.append((name, str(exc)))
    check_size(clauses, limits)
    return SearchPlan(
        resource_type, tuple(clauses), types, tuple(includes), tuple(sort), count, offset, total,
        summary, elements, contained, tuple(unknown),
    )
