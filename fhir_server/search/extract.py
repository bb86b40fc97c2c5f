"""Resource -> IndexSet: evaluate each indexed parameter's FHIRPath, then let the
parameter type's module turn the nodes into typed entries."""

from __future__ import annotations

from fhir_server.search.index import DateEntry, IndexSet, TokenEntry
from fhir_server.search.params import PARAM_TYPES
from fhir_server.search.registry import SearchRegistry

__all__ = ["extract_index"]


def extract_index(registry: SearchRegistry, resource: dict) -> IndexSet:
    tokens: list[TokenEntry] = []
    dates: list[DateEntry] = []
    present: set[str] = set()
    sinks = {"token": tokens, "date": dates}
    for compiled in registry.extractors(resource["resourceType"]):
        d = compiled.definition
        try:
            nodes = compiled.evaluate(resource)
        except Exception:  # noqa: BLE001 - a value FHIRPath cannot evaluate is not indexed (HAPI warns the same way)
            continue
        if not nodes:
            continue
        entries = PARAM_TYPES[d.type].extract(d.code, nodes)
        if entries:
            present.add(d.code)
            sinks[d.type].extend(entries)
    return IndexSet(tuple(dict.fromkeys(tokens)), tuple(dict.fromkeys(dates)), frozenset(present))
