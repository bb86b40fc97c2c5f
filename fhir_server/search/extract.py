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


def extract_index(registry: SearchRegistry, resource: dict, base_url: str | None = None) -> IndexSet:
    entries: list = []
    present: set[str] = set()
    for extractor in registry.extractors(resource["resourceType"]):
        roots = extractor.roots
        if roots is not None and not any(root in resource for root in roots):
            continue  # nothing it reads is there (most of a type's parameters, on any one resource)
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
