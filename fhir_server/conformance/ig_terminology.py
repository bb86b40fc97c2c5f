"""The implementation guide's terminology: its CodeSystems (displays, properties, the
is-a hierarchy) and ValueSets by canonical url, read once per guide directory.

This is the one reader of the guide's CodeSystems: the workflow's displays and code
lists, the validator's bindings (``validation/terminology.py``) and the ``:in``
search modifier's fallback all ask it instead of walking ``profiles/`` themselves.

    terms = guide_terminology(ig_directory(settings.profiles_dir))
    terms.display("https://evi-fhir.org/fhir/CodeSystem/evi-task-type", "intake")
    terms.codes("https://evi-fhir.org/fhir/CodeSystem/evi-triage-outcome")
    terms.resolve("ValueSet", url)             # a ``conformance.terminology.Resolve``

A ``GuideTerminology`` can also be built from any resources (a test case's, the
validator's). It is immutable once built, so threads share it freely; the per-
directory cache is filled under a lock, so each directory is read once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

from fhir_server.conformance.code_system import CodeSystemView
from fhir_server.conformance.ig import ig_resources

__all__ = ["GuideTerminology", "guide_terminology"]


class GuideTerminology:
    """CodeSystems (as ``CodeSystemView``) and ValueSets of a set of resources, by url."""

    def __init__(self, resources: Iterable[dict]) -> None:
        views: dict[str, CodeSystemView] = {}
        value_sets: dict[str, dict] = {}
        for r in resources:
            if not isinstance(r, dict) or not isinstance(r.get("url"), str):
                continue
            if r.get("resourceType") == "CodeSystem":
                views.setdefault(r["url"], CodeSystemView(r))
            elif r.get("resourceType") == "ValueSet":
                value_sets.setdefault(r["url"], r)
        self._views = views
        self._value_sets = value_sets
        # CodeSystem.valueSet: "the value set with the entire code system" (R4 codesystem.html)
        self._implicit = {v.resource["valueSet"].split("|", 1)[0]: url for url, v in views.items()
                          if isinstance(v.resource.get("valueSet"), str)}

    def code_system(self, url: str) -> CodeSystemView | None:
        return self._views.get(url.split("|", 1)[0]) if isinstance(url, str) else None

    def codes(self, system: str) -> frozenset[str]:
        """Every code of the CodeSystem (nested concepts too); empty when it is unknown."""
        view = self.code_system(system)
        return frozenset(view.concepts) if view is not None else frozenset()

    def display(self, system: str, code: str) -> str | None:
        view = self.code_system(system)
        found = view.find(code) if view is not None else None
        return view.concepts[found].get("display") if found is not None else None

    def property_values(self, system: str, code: str, prop: str) -> list[str]:
        """The values of one property of a concept (codes of ``valueCode``/``valueCoding``, else text)."""
        view = self.code_system(system)
        found = view.find(code) if view is not None else None
        return view.property_values(found, prop) if found is not None else []

    def resolve(self, resource_type: str, url: str, version: str | None = None) -> dict | None:
        """A ``Resolve``: the CodeSystem or ValueSet with this url. The guide holds one
        version of each, so ``version`` does not narrow; a CodeSystem's implicit value
        set (``CodeSystem.valueSet``, or its own url) is a ValueSet that includes it."""
        url = url.split("|", 1)[0]
        if resource_type == "CodeSystem":
            view = self._views.get(url)
            return view.resource if view is not None else None
        if resource_type != "ValueSet":
            return None
        found = self._value_sets.get(url)
        if found is not None:
            return found
        system = self._implicit.get(url) or (url if url in self._views else None)
        if system is None:
            return None
        return {"resourceType": "ValueSet", "url": url, "compose": {"include": [{"system": system}]}}


_lock = threading.Lock()
_loaded: dict[Path | None, GuideTerminology] = {}


def guide_terminology(directory: Path | None) -> GuideTerminology:
    """The guide in ``directory`` (``ig_directory()``), read on first use and kept."""
    key = directory.resolve() if directory is not None else None
    found = _loaded.get(key)
    if found is None:
        with _lock:
            found = _loaded.get(key)
            if found is None:
                found = _loaded[key] = GuideTerminology(ig_resources(directory))  # shares its cache
    return found
