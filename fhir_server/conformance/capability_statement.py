"""The CapabilityStatement, generated from what is registered: routes, resource types,
search parameters. Nothing here is written by hand per type, so it cannot drift."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from fhir_server.model import resource_types
from fhir_server.search.registry import SearchRegistry

__all__ = ["build_capability_statement"]


def _software_version() -> str:
    try:
        return version("evi-fhir")
    except PackageNotFoundError:
        return "0.0.0"


def build_capability_statement(
    base_url: str,
    registry: SearchRegistry,
    type_interactions: list[str],
    system_interactions: list[str],
    *,
    date: str,
) -> dict:
    resources = []
    for rtype in resource_types():
        params = [
            {"name": d.code, "definition": d.url, "type": d.type}
            for d in registry.supported_for(rtype)
        ]
        entry = {
            "type": rtype,
            "profile": f"http://hl7.org/fhir/StructureDefinition/{rtype}",
            "interaction": [{"code": code} for code in type_interactions],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalRead": "not-match",
            "conditionalUpdate": True,
            "conditionalDelete": "single",
            "referencePolicy": ["literal", "logical"],
        }
        if params:
            entry["searchParam"] = params
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "publisher": "evi-fhir",
        "kind": "instance",
        "software": {"name": "evi-fhir", "version": _software_version()},
        "implementation": {"description": "evi-fhir: FHIR R4 server for En väg in", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [
            {
                "mode": "server",
                "resource": resources,
                "interaction": [{"code": code} for code in dict.fromkeys(system_interactions)],
            }
        ],
    }
