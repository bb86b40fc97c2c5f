"""Displays of the guide's codes, so Codings the rules write read well in any EHR."""

from __future__ import annotations

from functools import lru_cache

from fhir_server.conformance import ig_directory, ig_resources

__all__ = ["coding"]


@lru_cache(maxsize=8)
def _displays(profiles_dir: str | None) -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}

    def walk(system: str, concepts: list) -> None:
        for concept in concepts or ():
            if concept.get("display"):
                found[(system, concept["code"])] = concept["display"]
            walk(system, concept.get("concept"))

    directory = ig_directory(profiles_dir)
    for resource in ig_resources(directory) if directory else ():
        if resource.get("resourceType") == "CodeSystem":
            walk(resource.get("url"), resource.get("concept"))
    return found


def coding(system: str, code: str, profiles_dir: str | None = None) -> dict:
    out = {"system": system, "code": code}
    display = _displays(profiles_dir).get((system, code))
    if display:
        out["display"] = display
    return out
