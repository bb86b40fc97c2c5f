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


#: id(a type's extractor list) -> (that list, {top-level element: positions of the
#: extractors reading under it}, positions of those that may read anything); an entry
#: counts only while the registry still hands out that very list
_PLANS: dict[int, tuple[list, dict[str, tuple[int, ...]], tuple[int, ...]]] = {}


def _plan(extractors: list) -> tuple[dict[str, tuple[int, ...]], tuple[int, ...]]:
    found = _PLANS.get(id(extractors))
    if found is not None and found[0] is extractors:
        return found[1], found[2]
    by_root: dict[str, list[int]] = {}
    always: list[int] = []
    for position, extractor in enumerate(extractors):
        if extractor.roots is None:
            always.append(position)
        else:
            for root in extractor.roots:
                by_root.setdefault(root, []).append(position)
    plan = {root: tuple(positions) for root, positions in by_root.items()}, tuple(always)
    if len(_PLANS) > 4096:
        _PLANS.clear()
    _PLANS[id(extractors)] = (extractors, *plan)  # holding the list keeps its id unique
    return plan


def _relevant(extractors: list, resource: dict) -> list:
    """The extractors that may find something in ``resource``, in the registry's order:
    those reading under one of its top-level elements (most of a type's parameters
    read elements that any one resource does not have), and those of unknown reach."""
    by_root, always = _plan(extractors)
    positions = set(always)
    for key in resource:
        found = by_root.get(key)
        if found is not None:
            positions.update(found)
    return [extractors[p] for p in sorted(positions)]


def extract_index(registry: SearchRegistry, resource: dict, base_url: str | None = None) -> IndexSet:
    entries: list = []
    present: set[str] = set()
    for extractor in _relevant(registry.extractors(resource["resourceType"]), resource):
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
