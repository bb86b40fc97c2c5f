"""Displays of the guide's codes, so Codings the rules write read well in any EHR."""

from __future__ import annotations

from fhir_server.conformance import guide_terminology, ig_directory

__all__ = ["coding"]


def coding(system: str, code: str, profiles_dir: str | None = None) -> dict:
    out = {"system": system, "code": code}
    display = guide_terminology(ig_directory(profiles_dir)).display(system, code)
    if display:
        out["display"] = display
    return out
