"""Required-binding code checks for FHIR R4 resources (JSON dicts).

fhir.resources validates structure and primitive formats but not terminology:
a ServiceRequest with ``"status": "bogus"`` passes it.  FHIR says codes bound
with strength *required* SHALL come from the bound value set, so the server
rejects them.  This module walks an (already structurally valid) resource
guided by the generated ``types`` table and checks every required-bound
``code``, ``Coding`` and ``CodeableConcept`` against the ``valuesets`` table.

Speed: per type we precompute (once, lazily) a plan holding only the element
names that can lead to a required-bound code -- directly, or through complex
types, backbone elements, contained resources or extensions (an extension's
``valueQuantity.comparator`` is required-bound, so nearly every complex type is
reachable through ``extension``).  The walk iterates over the keys the instance
actually has and skips everything not in the plan; issue paths are only built
when an issue is found.

Value sets that the generator could not expand from the core package
(UCUM units, MIME types, currencies, ...) are not checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from fhir_server.spec import load_table

__all__ = ["BindingIssue", "check_required_bindings"]


@dataclass(frozen=True)
class BindingIssue:
    expression: str  # FHIRPath location, e.g. "Patient.identifier[0].use"
    code: str  # the offending code
    valueset: str  # the required ValueSet url

    @property
    def message(self) -> str:
        return (f"Code '{self.code}' is not in the required value set "
                f"{self.valueset} ({self.expression})")


# Plan entry kinds.
_CODE, _CODING, _CONCEPT, _COMPLEX, _RESOURCE = range(5)
_CODE_TYPES = {"code": _CODE, "Coding": _CODING, "CodeableConcept": _CONCEPT}

# A plan maps an instance property name to
# (kind, child type name or None, value-set info or None, value-set url, FHIRPath name).
# Value-set info is (all codes, {system: codes}).
Plan = dict[str, tuple]


@lru_cache(maxsize=1)
def _plans() -> tuple[dict[str, Plan], frozenset[str]]:
    types = {k: v for k, v in load_table("types").items() if not k.startswith("_")}
    vs_info = {
        url: (frozenset(c for codes in systems.values() for c in codes),
              {system: frozenset(codes) for system, codes in systems.items()})
        for url, systems in load_table("valuesets").items() if not url.startswith("_")
    }
    resource_types = frozenset(n for n, t in types.items() if t["k"] == "resource" and not t.get("a"))
    primitives = {n for n, t in types.items() if t["k"] == "primitive-type"}

    def bound(facts: dict) -> bool:
        return facts.get("b") in vs_info and len(facts["t"]) == 1 and facts["t"][0] in _CODE_TYPES

    # Fixpoint: a type is "live" if some element is bound, holds a resource, or
    # has a live type.  Cycles (Extension.extension, Identifier.assigner ->
    # Reference.identifier) are why this iterates instead of recursing.
    live: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, entry in types.items():
            if name in live:
                continue
            for facts in entry.get("e", {}).values():
                t = facts["t"]
                if bound(facts) or "Resource" in t or live.intersection(t) or (
                        "Element" in live and primitives.intersection(t)):
                    live.add(name)
                    changed = True
                    break

    plans: dict[str, Plan] = {}
    for name in live:
        plan: Plan = {}
        for elname, facts in types[name].get("e", {}).items():
            if elname.endswith("[x]"):
                continue  # the concrete valueX variants are listed separately
            t = facts["t"]
            if len(t) != 1:
                continue
            tname = t[0]
            if bound(facts):
                kind = _CODE_TYPES[tname]
                plan[elname] = (kind, tname if kind != _CODE else None, vs_info[facts["b"]],
                                facts["b"], elname)
            elif tname == "Resource":
                plan[elname] = (_RESOURCE, None, None, None, elname)
            elif tname in live:
                plan[elname] = (_COMPLEX, tname, None, None, elname)
            if tname in primitives and "Element" in live:
                # Primitive extensions live in "_name": {"extension": [...]}
                plan["_" + elname] = (_COMPLEX, "Element", None, None, elname)
        plans[name] = plan
    return plans, resource_types


def _check_coding(coding: dict, info: tuple) -> str | None:
    """Return the offending code of one Coding, or None.  Only codings from a
    system of the value set are judged; a coding without system is judged
    against all codes of the value set; other systems are left alone."""
    code = coding.get("code")
    if not isinstance(code, str):
        return None
    system = coding.get("system")
    if system is None:
        return None if code in info[0] else code
    codes = info[1].get(system)
    return code if codes is not None and code not in codes else None


def _visit(entry: tuple, item, plans: dict[str, Plan], resource_types) -> list | None:
    """Check one value of an element; return [(relative path, code, url)] or None."""
    kind, tname, info, url, _ = entry
    if kind == _CODE:
        if isinstance(item, str) and item not in info[0]:
            return [("", item, url)]
        return None
    if not isinstance(item, dict):
        return None
    if kind == _RESOURCE:
        rt = item.get("resourceType")
        return _walk(item, plans.get(rt, {}), plans, resource_types) if rt in resource_types else None
    found = _walk(item, plans[tname], plans, resource_types)
    if kind == _CODING:
        bad = _check_coding(item, info)
        if bad is not None:
            found = (found or []) + [(".code", bad, url)]
    elif kind == _CONCEPT:
        codings = item.get("coding")
        if isinstance(codings, list):
            for i, coding in enumerate(codings):
                if isinstance(coding, dict):
                    bad = _check_coding(coding, info)
                    if bad is not None:
                        found = (found or []) + [(f".coding[{i}].code", bad, url)]
    return found


def _walk(obj: dict, plan: Plan, plans: dict[str, Plan], resource_types) -> list | None:
    issues = None
    for key, value in obj.items():
        entry = plan.get(key)
        if entry is None:
            continue  # cannot lead to a required-bound code (or unknown name)
        if isinstance(value, list):
            for i, item in enumerate(value):
                found = _visit(entry, item, plans, resource_types)
                if found:
                    prefix = f".{entry[4]}[{i}]"
                    issues = (issues or []) + [(prefix + rel, c, u) for rel, c, u in found]
        else:
            found = _visit(entry, value, plans, resource_types)
            if found:
                prefix = "." + entry[4]
                issues = (issues or []) + [(prefix + rel, c, u) for rel, c, u in found]
    return issues


def check_required_bindings(resource: dict) -> list[BindingIssue]:
    """Return one issue per code that is not in its required value set.

    Walks nested datatypes, backbone elements, extensions, contained resources
    and Bundle entry resources.  Expressions are FHIRPath locations such as
    ``Bundle.entry[1].request.method`` or ``Bundle.entry[0].resource.status``.
    Resources of unknown type and unknown element names are ignored (structure
    is validated elsewhere).
    """
    plans, resource_types = _plans()
    rt = resource.get("resourceType")
    if rt not in resource_types:
        return []
    found = _walk(resource, plans.get(rt, {}), plans, resource_types)
    if not found:
        return []
    return [BindingIssue(rt + rel, code, url) for rel, code, url in found]
