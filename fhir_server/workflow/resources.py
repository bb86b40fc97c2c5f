"""Small readers over resources inside a unit of work, shared by the rules."""

from __future__ import annotations

import orjson

from fhir_server.engine import Work
from fhir_server.workflow.codes import ORGANIZATION_TYPE

__all__ = ["load", "literal", "codes_of", "has_code", "claims", "organization_types", "extension", "reference_of"]


def literal(reference: object, resource_type: str | None = None) -> tuple[str, str] | None:
    """``("Organization", "x")`` for a literal relative reference ``{"reference": "Organization/x"}``."""
    ref = reference.get("reference") if isinstance(reference, dict) else reference
    if not isinstance(ref, str):
        return None
    parts = ref.split("/")
    if len(parts) < 2:
        return None
    rtype, rid = parts[-2], parts[-1]
    if len(parts) >= 4 and parts[-2] == "_history":
        rtype, rid = parts[-4], parts[-3]
    if resource_type is not None and rtype != resource_type:
        return None
    return rtype, rid


def reference_of(reference: object) -> str | None:
    found = literal(reference)
    return f"{found[0]}/{found[1]}" if found else None


def load(work: Work, reference: object, resource_type: str | None = None) -> dict | None:
    """The current version of what a literal reference points at (None: absent or deleted)."""
    found = literal(reference, resource_type)
    if found is None:
        return None
    current = work.uow.current(*found)
    if current is None or current.deleted:
        return None
    return orjson.loads(current.body)


def codes_of(concept: object, system: str) -> list[str]:
    """Codes of ``system`` in a CodeableConcept, a Coding, or a list of CodeableConcepts."""
    items = concept if isinstance(concept, list) else [concept]
    found = []
    for item in items:
        if not isinstance(item, dict):
            continue
        codings = item.get("coding") if "coding" in item else [item]
        for coding in codings or ():
            if isinstance(coding, dict) and coding.get("system") == system and isinstance(coding.get("code"), str):
                found.append(coding["code"])
    return found


def has_code(concept: object, system: str, code: str) -> bool:
    return code in codes_of(concept, system)


def claims(resource: dict, profile: str) -> bool:
    return profile in ((resource.get("meta") or {}).get("profile") or ())


def organization_types(organization: dict | None) -> set[str]:
    return set(codes_of((organization or {}).get("type") or [], ORGANIZATION_TYPE))


def extension(element: dict | None, url: str) -> dict | None:
    for ext in (element or {}).get("extension") or ():
        if isinstance(ext, dict) and ext.get("url") == url:
            return ext
    return None
