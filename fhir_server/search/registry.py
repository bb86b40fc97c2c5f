"""The SearchParameter registry: the spec's definitions (generated table) as data.

Each definition's FHIRPath expression is split per base type and compiled once
(fhirpathpy); HAPI does the same with the spec's shared ``A.x | B.y`` expressions.
Which parameter types are indexed is decided by the ``search.params`` modules
that exist: a definition whose type has no module is known but not supported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Iterable

import fhirpathpy
from fhirpathpy.models import models

from fhir_server.search.params import PARAM_TYPES
from fhir_server.spec import load_table

__all__ = ["SearchParamDef", "SearchRegistry", "COLUMN_PARAMS"]

#: parameters every store keeps as columns of the resource itself, not as index rows
COLUMN_PARAMS = {"_id": "id", "_lastUpdated": "last_updated"}


@dataclass(frozen=True)
class SearchParamDef:
    code: str
    type: str
    url: str
    base: tuple[str, ...]
    expression: str | None = None
    target: tuple[str, ...] = ()

    @property
    def column(self) -> str | None:
        return COLUMN_PARAMS.get(self.code)


@dataclass
class _Compiled:
    definition: SearchParamDef
    evaluate: Callable[[dict], list]


def _expression_for(expression: str, resource_type: str) -> str | None:
    """The parts of a shared ``A.x | B.y`` expression that apply to ``resource_type``."""
    parts = [p.strip() for p in expression.split("|")]
    mine = [
        p for p in parts
        if p.startswith(f"{resource_type}.") or p == resource_type or p.startswith(f"({resource_type}.")
        or p.startswith("Resource.") or p.startswith("DomainResource.")
    ]
    if mine:
        return " | ".join(mine)
    # expressions that do not start with a type name (rare) apply as they are
    if all(not p[:1].isupper() for p in parts):
        return expression
    return None


class SearchRegistry:
    """Search parameters by (resource type, code), with compiled extractors for indexed ones."""

    def __init__(self, definitions: Iterable[SearchParamDef], indexed_codes: frozenset[str] | None = None):
        self._by_type: dict[str, dict[str, SearchParamDef]] = {}
        self._indexed_codes = indexed_codes
        for d in definitions:
            for base in d.base:
                self._by_type.setdefault(base, {})[d.code] = d
        self._extractors: dict[str, list[_Compiled]] = {}

    @classmethod
    def from_spec(cls, indexed_codes: frozenset[str] | None = None) -> "SearchRegistry":
        table = load_table("search_parameters")
        defs = [
            SearchParamDef(
                code=row["code"],
                type=row["type"],
                url=url,
                base=tuple(row.get("base", ())),
                expression=row.get("expression"),
                target=tuple(row.get("target", ())),
            )
            for url, row in table.items()
            if url != "_source"
        ]
        return cls(defs, indexed_codes)

    def is_supported(self, definition: SearchParamDef) -> bool:
        if definition.column:
            return True
        if definition.type not in PARAM_TYPES or not definition.expression:
            return False
        return self._indexed_codes is None or definition.code in self._indexed_codes

    def get(self, resource_type: str, code: str) -> SearchParamDef | None:
        found = self._by_type.get(resource_type, {}).get(code)
        if found is None:
            found = self._by_type.get("DomainResource", {}).get(code) or self._by_type.get("Resource", {}).get(code)
        return found

    def supported_for(self, resource_type: str) -> list[SearchParamDef]:
        """Every parameter a search on ``resource_type`` can use (for the CapabilityStatement)."""
        seen: dict[str, SearchParamDef] = {}
        for scope in ("Resource", "DomainResource", resource_type):
            for code, d in self._by_type.get(scope, {}).items():
                if self.is_supported(d):
                    seen[code] = d
        return sorted(seen.values(), key=lambda d: d.code)

    def extractors(self, resource_type: str) -> list[_Compiled]:
        """Compiled FHIRPath extractors for the indexed (non-column) parameters of a type."""
        found = self._extractors.get(resource_type)
        if found is None:
            found = []
            for d in self.supported_for(resource_type):
                if d.column or not d.expression:
                    continue
                expr = _expression_for(d.expression, resource_type)
                if expr:
                    found.append(_Compiled(d, fhirpathpy.compile(expr, models["r4"])))
            self._extractors[resource_type] = found
        return found
