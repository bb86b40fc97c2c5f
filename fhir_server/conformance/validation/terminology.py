"""The validator's bindings: a ValueSet as the set of its (system, code) pairs, expanded
by the server's one expansion (``conformance.terminology.value_set_concepts``: filters,
nested ``include.valueSet``, ``exclude``) over resources given to the validator (the
implementation guide's, a test case's) and the core required-binding table
``valuesets.json``.

``local_value_sets(resources)`` (or ``value_set_lookup(terminology)``) returns
``lookup(url) -> frozenset[(system, code)] | None``. None means "not expandable here",
and the binding is then not checked: an unknown value set, a CodeSystem that is not
given or not complete (a fragment cannot show that a code is absent), a filter the
expansion does not evaluate. Only that expected failure (``Unprocessable`` from the
expansion) is taken as None; anything else is a server error and propagates.
Expansions are computed on first use and cached (under a lock: validators are shared
between threads).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from fhir_server.conformance.ig_terminology import GuideTerminology
from fhir_server.conformance.terminology import value_set_concepts
from fhir_server.errors import Unprocessable
from fhir_server.spec import load_table

__all__ = ["ValueSetLookup", "local_value_sets", "value_set_lookup", "core_value_set"]

ValueSetLookup = Callable[[str], "frozenset[tuple[str | None, str]] | None"]
Codes = frozenset[tuple[str | None, str]]
_MISSING = object()


def core_value_set(url: str) -> Codes | None:
    """A core value set from the generated table (the ones required bindings use)."""
    entry = load_table("valuesets").get(url)
    if entry is None or url.startswith("_"):
        return None
    return frozenset((system, code) for system, codes in entry.items() for code in codes)


class _Bindings:
    def __init__(self, terminology: GuideTerminology) -> None:
        self.terminology = terminology
        self.cache: dict[str, Codes | None] = {}
        self.lock = threading.Lock()

    def lookup(self, url: str) -> Codes | None:
        if not isinstance(url, str):
            return None
        url = url.split("|", 1)[0]
        found = self.cache.get(url, _MISSING)
        if found is _MISSING:
            with self.lock:
                found = self.cache.get(url, _MISSING)
                if found is _MISSING:
                    found = self.cache[url] = self._expand(url)
        return found

    def _expand(self, url: str) -> Codes | None:
        vs = self.terminology.resolve("ValueSet", url)
        if vs is None:
            return core_value_set(url)
        try:
            concepts = value_set_concepts(vs, self._resolve)
        except Unprocessable:  # needs something not held here, or cannot be evaluated
            return None
        return frozenset((c.system, c.code) for c in concepts)

    def _resolve(self, resource_type: str, url: str, version: str | None = None) -> dict | None:
        found = self.terminology.resolve(resource_type, url, version)
        if resource_type == "CodeSystem" and found is not None and found.get("content", "complete") != "complete":
            return None
        if found is None and resource_type == "ValueSet":
            codes = core_value_set(url.split("|", 1)[0])
            if codes is not None:  # a core value set included by a local one
                contains = [{"system": s, "code": c} for s, c in sorted(codes, key=lambda p: (p[0] or "", p[1]))]
                return {"resourceType": "ValueSet", "url": url, "expansion": {"contains": contains}}
        return found


def value_set_lookup(terminology: GuideTerminology) -> ValueSetLookup:
    """``lookup(url)`` over ``terminology`` (e.g. ``guide_terminology(directory)``), then the core table."""
    return _Bindings(terminology).lookup


def local_value_sets(resources: Iterable[dict]) -> ValueSetLookup:
    """``lookup(url)``: the (system, code) pairs of a ValueSet (or a CodeSystem's
    implicit value set) given in *resources*, or of a core required-binding value set;
    None when it cannot be expanded locally."""
    return value_set_lookup(GuideTerminology(list(resources)))
