"""``_summary`` and ``_elements`` (R4 search.html#summary, #elements): subsets of a
resource, marked with the SUBSETTED tag. Summary flags and mandatory elements
come from the generated types table."""

from __future__ import annotations

from functools import lru_cache

from fhir_server.spec import load_table

__all__ = ["SUBSETTED", "summarize", "summarize_deep", "select_elements"]

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}
_ALWAYS = ("resourceType", "id", "meta")


@lru_cache(maxsize=None)
def _top_level(resource_type: str) -> tuple[frozenset[str], frozenset[str]]:
    """(summary elements, mandatory elements) of a type, as JSON names."""
    elements = load_table("types").get(resource_type, {}).get("e", {})
    summary, mandatory = set(), set()
    for name, facts in elements.items():
        names = {name}
        if name.endswith("[x]"):
            stem = name[:-3]
            names = {n for n, f in elements.items() if f.get("x") == stem} | {name}
        if facts.get("s"):
            summary |= names
        if facts.get("min", 0) >= 1:
            mandatory |= names
    return frozenset(summary), frozenset(mandatory)


def _tagged(resource: dict, kept: dict) -> dict:
    meta = dict(kept.get("meta") or {})
    tags = [t for t in meta.get("tag") or () if t.get("code") != "SUBSETTED"]
    meta["tag"] = [*tags, SUBSETTED]
    kept["meta"] = meta
    return kept


def summarize(resource: dict, mode: str) -> dict:
    """``_summary=true|text|data`` of one resource."""
    rtype = resource["resourceType"]
    summary, mandatory = _top_level(rtype)
    if mode == "data":
        kept = {k: v for k, v in resource.items() if k != "text"}
    elif mode == "text":
        kept = {k: v for k, v in resource.items() if k in _ALWAYS or k == "text" or k in mandatory}
    else:
        kept = {k: v for k, v in resource.items() if k in _ALWAYS or k in summary or k in mandatory}
    return _tagged(resource, kept)


def summarize_deep(resource: dict) -> dict:
    """``_summary=true`` applied inside backbone elements too (``CapabilityStatement.rest
    .resource`` keeps its type, profiles and operations, not its search parameters)."""
    kept = _deep(resource, resource["resourceType"])
    kept.update({k: resource[k] for k in _ALWAYS if k in resource})
    return _tagged(resource, kept)


def _deep(value: dict, path: str) -> dict:
    elements = load_table("types").get(path, {}).get("e", {})
    kept = {}
    for key, item in value.items():
        facts = elements.get(key)
        if facts is None or not (facts.get("s") or facts.get("min", 0) >= 1):
            continue
        child = facts["t"][0] if facts.get("t") else None
        if child and child.startswith(path.split(".", 1)[0] + "."):  # a backbone element
            items = item if isinstance(item, list) else [item]
            trimmed = [_deep(i, child) for i in items if isinstance(i, dict)]
            kept[key] = trimmed if isinstance(item, list) else trimmed[0]
        else:
            kept[key] = item
    return kept


def select_elements(resource: dict, names: tuple[str, ...]) -> dict:
    """``_elements``: the listed top-level elements plus mandatory ones."""
    _, mandatory = _top_level(resource["resourceType"])
    wanted = {n.split(".", 1)[-1] if n.startswith(resource["resourceType"] + ".") else n for n in names}
    kept = {k: v for k, v in resource.items() if k in _ALWAYS or k in wanted or k in mandatory}
    return _tagged(resource, kept)
