"""The SearchParameter registry: the spec's definitions (generated table), the
product's own (``profiles/``) and active SearchParameter resources created at run
time, as data.

Each definition's expression is split per base type and compiled once
(``search/expression.py``); HAPI does the same with the spec's shared
``A.x | B.y`` expressions. A definition whose type has no module in
``search.params`` is known but not supported (reported, never silently dropped).
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from dataclasses import dataclass
from typing import Callable, Iterable

from fhir_server.model import is_resource_type, resource_types
from fhir_server.search.expression import compile_expression, expression_roots, split_union
from fhir_server.search.params import PARAM_TYPES
from fhir_server.spec import load_table

log = logging.getLogger("fhir_server.search")

__all__ = ["SearchParamDef", "SearchRegistry", "COLUMN_PARAMS", "definition_from_resource"]

#: parameters every store keeps as columns of the resource itself, not as index rows
COLUMN_PARAMS = {"_id": "id", "_lastUpdated": "last_updated"}
_COMMON_SCOPES = ("Resource", "DomainResource")


@dataclass(frozen=True)
class Component:
    definition: str  # url of the component's SearchParameter
    expression: str


@dataclass(frozen=True)
class SearchParamDef:
    code: str
    type: str
    url: str
    base: tuple[str, ...]
    expression: str | None = None
    target: tuple[str, ...] = ()
    components: tuple[Component, ...] = ()

    @property
    def column(self) -> str | None:
        return COLUMN_PARAMS.get(self.code)


@dataclass
class Extractor:
    definition: SearchParamDef
    evaluate: Callable[[dict], list]
    #: the top-level elements it can find anything under (None: unknown, always evaluate)
    roots: tuple[str, ...] | None = None


def _expression_for(expression: str, resource_type: str) -> str | None:
    """The parts of a shared ``A.x | B.y`` expression that apply to ``resource_type``."""
    parts = split_union(expression)
    mine = [
        p for p in parts
        if p.lstrip("(").startswith((f"{resource_type}.", "Resource.", "DomainResource.")) or p.lstrip("(") == resource_type
    ]
    if mine:
        return " | ".join(mine)
    # expressions that do not start with a type name apply as they are
    if all(not p.lstrip("(")[:1].isupper() for p in parts):
        return expression
    return None


_SINGLE_PATH = re.compile(r"^\(?([A-Z][A-Za-z]+(?:\.[a-z][A-Za-z]*)+)(?: as [A-Za-z]+\))?$")


def _path_is_single(expression: str) -> bool:
    m = _SINGLE_PATH.match(expression.strip())
    if not m:
        return False
    types = load_table("types")
    owner, *steps = m.group(1).split(".")
    for step in steps:
        elements = types.get(owner, {}).get("e", {})
        facts = elements.get(step) or elements.get(f"{step}[x]")
        if facts is None or facts.get("max") != 1:
            return False
        kind = facts["t"][0] if facts.get("t") else None
        owner = f"{owner}.{step}" if kind in ("BackboneElement", "Element") and f"{owner}.{step}" in types else kind
    return True


def definition_from_resource(resource: dict) -> SearchParamDef | None:
    """A SearchParameter resource as a definition, or None if it cannot be one."""
    code, kind, url = resource.get("code"), resource.get("type"), resource.get("url")
    base = tuple(resource.get("base") or ())
    if not (isinstance(code, str) and isinstance(kind, str) and isinstance(url, str) and base):
        return None
    return SearchParamDef(
        code=code,
        type=kind,
        url=url,
        base=base,
        expression=resource.get("expression"),
        target=tuple(resource.get("target") or ()),
        components=tuple(
            Component(c.get("definition", ""), c.get("expression", "")) for c in resource.get("component") or ()
        ),
    )


class SearchRegistry:
    """Search parameters by (resource type, code), with compiled extractors for indexed ones."""

    def __init__(self, definitions: Iterable[SearchParamDef], indexed_codes: frozenset[str] | None = None):
        self._by_type: dict[str, dict[str, SearchParamDef]] = {}
        self._by_url: dict[str, SearchParamDef] = {}
        self._indexed_codes = indexed_codes
        self._lock = threading.Lock()
        for d in definitions:
            self._add(d)
        self._extractors: dict[str, list[Extractor]] = {}
        #: (type, name) -> what ``derived`` made from the type's extractors
        self._derived: dict[tuple[str, str], object] = {}
        self._single: dict[tuple[str, str], bool] = {}

    @classmethod
    def from_spec(cls, indexed_codes: frozenset[str] | None = None, extra: Iterable[SearchParamDef] = ()) -> "SearchRegistry":
        return cls([*_spec_definitions(), *extra], indexed_codes)

    # -- registration (runtime SearchParameter resources) ------------------------
    def _add(self, d: SearchParamDef) -> None:
        old = self._by_url.get(d.url)
        if old is not None:
            self._remove(old)
        self._by_url[d.url] = d
        for base in d.base:
            self._by_type.setdefault(base, {})[d.code] = d

    def _remove(self, d: SearchParamDef) -> None:
        self._by_url.pop(d.url, None)
        for base in d.base:
            if self._by_type.get(base, {}).get(d.code) is d:
                del self._by_type[base][d.code]

    def register(self, d: SearchParamDef) -> None:
        """Honour a definition for new writes (``$reindex`` applies it to stored ones)."""
        with self._lock:
            self._add(d)
            self._forget_extractors()

    def unregister(self, url: str) -> None:
        with self._lock:
            found = self._by_url.get(url)
            if found is not None:
                self._remove(found)
                self._forget_extractors()

    def _forget_extractors(self) -> None:
        self._extractors, self._derived = {}, {}

    def definitions(self) -> list[SearchParamDef]:
        """Every definition (one per url), to build an equal registry from."""
        return list(self._by_url.values())

    @property
    def indexed_codes(self) -> frozenset[str] | None:
        return self._indexed_codes

    def by_url(self, url: str) -> SearchParamDef | None:
        return self._by_url.get(url)

    # -- lookup ------------------------------------------------------------------
    def components(self, definition: SearchParamDef) -> list[tuple[SearchParamDef, str]] | None:
        """A composite's component definitions with their relative expressions, or None."""
        out = []
        for c in definition.components:
            d = self._by_url.get(c.definition)
            if d is None or d.type not in PARAM_TYPES or d.type == "composite":
                return None
            out.append((d, c.expression))
        return out if 0 < len(out) <= PARAM_TYPES["composite"].MAX_COMPONENTS else None

    def is_supported(self, definition: SearchParamDef) -> bool:
        if definition.column:
            return True
        if definition.type not in PARAM_TYPES or not definition.expression:
            return False
        if definition.type == "composite" and self.components(definition) is None:
            return False
        return self._indexed_codes is None or definition.code in self._indexed_codes

    def get(self, resource_type: str, code: str) -> SearchParamDef | None:
        found = self._by_type.get(resource_type, {}).get(code)
        if found is None:
            found = self.get_common(code)
        return found

    def get_common(self, code: str) -> SearchParamDef | None:
        for scope in _COMMON_SCOPES:
            found = self._by_type.get(scope, {}).get(code)
            if found is not None:
                return found
        return None

    def is_single_valued(self, resource_type: str, definition: SearchParamDef) -> bool:
        """Whether a resource has at most one value for the parameter (every step of its
        one path has max 1): AND-ed conditions may then be tested on that one value."""
        key = (resource_type, definition.url)
        found = self._single.get(key)
        if found is None:
            expression = _expression_for(definition.expression or "", resource_type) if definition.expression else None
            found = bool(expression) and _path_is_single(expression)
            self._single[key] = found
        return found

    @staticmethod
    def is_type(name: str) -> bool:
        return is_resource_type(name)

    @staticmethod
    def resource_types() -> tuple[str, ...]:
        return resource_types()

    def supported_for(self, resource_type: str) -> list[SearchParamDef]:
        """Every parameter a search on ``resource_type`` can use (for the CapabilityStatement)."""
        seen: dict[str, SearchParamDef] = {}
        for scope in (*_COMMON_SCOPES, resource_type):
            for code, d in self._by_type.get(scope, {}).items():
                if self.is_supported(d):
                    seen[code] = d
        return sorted(seen.values(), key=lambda d: d.code)

    def extractors(self, resource_type: str) -> list[Extractor]:
        """Compiled extractors for the indexed (non-column) parameters of a type."""
        extractors = self._extractors
        found = extractors.get(resource_type)
        if found is None:
            found = []
            for d in self.supported_for(resource_type):
                if d.column or not d.expression:
                    continue
                expression = _expression_for(d.expression, resource_type)
                if not expression:
                    continue
                if d.type == "composite":
                    parts = self.components(d)
                    if parts is None:
                        continue
                    local = SearchParamDef(d.code, d.type, d.url, d.base, expression, d.target, d.components)
                    evaluate = PARAM_TYPES["composite"].component_extractor(local, parts, PARAM_TYPES)
                    found.append(Extractor(d, evaluate))
                else:
                    try:
                        found.append(Extractor(d, compile_expression(expression), expression_roots(expression)))
                    except Exception:  # noqa: BLE001 - a broken definition must not break writes
                        log.warning("search parameter %s has an expression that does not compile", d.url)
            extractors[resource_type] = found
        return found

    def derived(self, resource_type: str, name: str, make: Callable[[list[Extractor]], object]) -> object:
        """``make(self.extractors(resource_type))``, kept as long as those extractors are
        (a registered or removed definition forgets both): what indexing and the PDL log
        derive from a type's extractors on every write and read."""
        key = (resource_type, name)
        found = self._derived.get(key)
        if found is None:
            found = self._derived[key] = make(self.extractors(resource_type))
        return found


@functools.lru_cache(maxsize=1)
def _spec_definitions() -> tuple[SearchParamDef, ...]:
    """The spec's definitions, built once: a registry is rebuilt after every stored
    SearchParameter (seeding the guide stores a dozen), and the definitions are immutable."""
    table = load_table("search_parameters")
    return tuple(
        SearchParamDef(
            code=row["code"],
            type=row["type"],
            url=url,
            base=tuple(row.get("base", ())),
            expression=row.get("expression"),
            target=tuple(row.get("target", ())),
            components=tuple(Component(c["definition"], c["expression"]) for c in row.get("component", ())),
        )
        for url, row in table.items()
        if url != "_source"
    )
