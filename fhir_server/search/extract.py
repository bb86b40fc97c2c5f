"""Resource -> IndexSet: evaluate each indexed parameter's compiled expression, then
let the parameter type's module turn the nodes into typed entries (HAPI's
SearchParamExtractorService). A value that cannot be evaluated is not indexed:
extraction never fails a write."""

from __future__ import annotations

import logging

from fhir_server.search.index import IndexSet, ReferenceEntry
from fhir_server.search.params import PARAM_TYPES
from fhir_server.search.registry import SearchRegistry

__all__ = ["extract_index"]

log = logging.getLogger("fhir_server.search")


def _localize(entries: list, base_url: str | None) -> list:
    """References written as absolute urls to this server's base are local ones."""
    if not base_url:
        return entries
    prefix = base_url.rstrip("/") + "/"
    return [
        ReferenceEntry(e.param, e.target_type, e.target_id, None)
        if e.kind == "reference" and e.url and e.target_type and e.url.startswith(prefix)
        else e
        for e in entries
    ]


def _plan(extractors: list) -> tuple[list, dict[str, tuple[int, ...]], tuple[int, ...]]:
    """The extractors, {top-level element: positions of those reading under it}, and the
    positions of those that may read anything."""
    by_root: dict[str, list[int]] = {}
    always: list[int] = []
    for position, extractor in enumerate(extractors):
        if extractor.roots is None:
            always.append(position)
        else:
            for root in extractor.roots:
                by_root.setdefault(root, []).append(position)
    return extractors, {root: tuple(positions) for root, positions in by_root.items()}, tuple(always)


def _relevant(registry: SearchRegistry, resource: dict) -> list:
    """The type's extractors that may find something in ``resource``, in the registry's
    order: those reading under one of its top-level elements (most of a type's parameters
    read elements that any one resource does not have), and those of unknown reach."""
    extractors, by_root, always = registry.derived(resource["resourceType"], "by-root", _plan)
    positions = set(always)
    for key in resource:
        found = by_root.get(key)
        if found is not None:
            positions.update(found)
    return [extractors[p] for p in sorted(positions)]


def extract_index(registry: SearchRegistry, resource: dict, base_url: str | None = None) -> IndexSet:
    entries: list = []
    present: set[str] = set()
    for extractor in _relevant(registry, resource):
        d = extractor.definition
        try:
            nodes = extractor.evaluate(resource)
            if not nodes:
                continue
            found = PARAM_TYPES[d.type].extract(d, nodes)
        except Exception:  # noqa: BLE001 - collected, not thrown (HAPI warns the same way)
            log.warning("could not index %s for %s/%s", d.code, resource["resourceType"], resource.get("id"), exc_info=True)
            continue
        if found:
            present.add(d.code)
            entries.extend(_localize(found, base_url) if d.type == "reference" else found)
    return IndexSet(tuple(dict.fromkeys(entries)), frozenset(present))
