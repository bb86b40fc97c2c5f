"""JSON kinds of element values (R4 json.html#primitive) and string content.

pydantic's lax mode lets ``"active": "yes"`` and ``"multipleBirthInteger": "3"``
through (strict mode does not help with fhir.resources' own types). The JSON
format is exact: booleans are JSON true/false, integers and decimals are JSON
numbers, everything else is a JSON string. Complex types are JSON objects:
fhir.resources json-decodes a string where it expects a model, so
``"code": "{\"text\": \"x\"}"`` would pass the models and be stored as a string.
String-based primitives (xhtml too) may not hold control characters: R4
datatypes.html#string, "Strings SHOULD not contain Unicode character points
below 32, except for u0009 (horizontal tab), u0010 (carriage return) and u0013
(line feed)"; they cannot be written in XML at all, so we refuse them.

A literal reference must name a type its element allows (``references.py``). It
also holds every Extension to ext-1 ("Must have either extensions or value[x],
not both") and every complex element to ele-1 (more than an ``id``), which the models
do not evaluate and ``$validate`` does.

It also collects the Identifiers whose system is a Swedish one (``identifiers.py``, also
under choice elements such as ``valueIdentifier``), for the caller to check and normalise.

This walk checks all of that, guided by the generated types table; formats and
cardinality are left to the models. While it walks it can also note, for a caller
that hands it ``InvariantSites``, where other invariants apply: the caller says per
type (data type, backbone path such as ``Patient.contact``, resource type) which of
its rules apply, and on which keys of an object that depends (``Watch``); the walk
records each object a rule applies to with its path and the resources around it. What a
rule is, and how it is evaluated, is the caller's business (the profile validator's
FHIRPath, ``conformance/validation/base_invariants.py``): the models know no FHIRPath.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple, Protocol

from fhir_server.errors import Issue
from fhir_server.model.identifiers import ACCEPTED_SYSTEMS
from fhir_server.model.references import target_issue
from fhir_server.model.resource_types import is_resource_type
from fhir_server.spec import load_table

__all__ = ["check_primitive_kinds", "InvariantSites", "Site"]


_BOOL, _INT, _DECIMAL, _STRING, _COMPLEX, _RESOURCE = range(6)
_KIND_NAMES = {_BOOL: "a JSON boolean", _INT: "a JSON integer", _DECIMAL: "a JSON number", _STRING: "a JSON string"}
_PRIMITIVE_KINDS = {"boolean": _BOOL, "integer": _INT, "positiveInt": _INT, "unsignedInt": _INT, "decimal": _DECIMAL}
#: below U+0020, except tab, LF and CR
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


@lru_cache(maxsize=1)
def _plans() -> dict[str, dict[str, tuple[int, str | None, frozenset[str] | None]]]:
    """type -> JSON key -> (kind, type of a complex value, Reference targets or None)."""
    types = {k: v for k, v in load_table("types").items() if not k.startswith("_")}
    primitives = {n for n, t in types.items() if t["k"] == "primitive-type"}
    plans: dict[str, dict[str, tuple[int, str | None, frozenset[str] | None]]] = {}
    for name, entry in types.items():
        plan = {}
        for element, facts in entry.get("e", {}).items():
            t = facts["t"]
            if element.endswith("[x]") and "Identifier" in t:
                # valueIdentifier & co.: walked for the Swedish identifiers in them (identifiers.py)
                plan[element[:-3] + "Identifier"] = (_COMPLEX, "Identifier", None)
            if element.endswith("[x]") or len(t) != 1:
                continue
            tname = t[0]
            if tname in primitives or tname.startswith("http://hl7.org/fhirpath/"):
                # Element.id and Extension.url are FHIRPath System.String in the snapshot
                plan[element] = (_PRIMITIVE_KINDS.get(tname, _STRING), None, None)
                plan["_" + element] = (_COMPLEX, "Element", None)
            elif tname == "Resource":
                plan[element] = (_RESOURCE, None, None)
            elif tname in types:
                targets = facts.get("r")
                any_type = not targets or "Resource" in targets
                plan[element] = (_COMPLEX, tname, None if any_type else frozenset(targets))
        plans[name] = plan
    return plans


def _kind_ok(kind: int, value: object) -> bool:
    if kind == _STRING:
        return isinstance(value, str) and _CONTROL.search(value) is None
    if kind == _BOOL:
        return isinstance(value, bool)
    if kind == _INT:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Site(NamedTuple):
    """One object a rule applies to: where it is and the resources around it."""

    rule: object
    value: dict
    path: str
    resource: dict       # the resource it is in (a contained one, an entry's)
    root: dict           # %rootResource: the container of a contained resource, else ``resource``
    bundle: dict | None  # the nearest Bundle around it, if any


class Watch(Protocol):
    def __getitem__(self, type_name: str) -> tuple[tuple, frozenset[str] | None] | None:
        """What applies to objects of a type, or None: (((rule, groups, exempt, test),
        ...), keys). A rule applies when the object has a key of each of its groups
        (frozensets of keys), not all groups of any conjunction in ``exempt``, and
        ``test`` (if not None) says the object may fail it; an object with none of
        ``keys`` (if not None) needs no rule."""


@dataclass(slots=True)
class InvariantSites:
    """In: ``watch``, what applies per type; out: ``found``, the sites in walk order."""

    watch: Watch
    found: list[Site] = field(default_factory=list)


class _Walk:
    __slots__ = ("plans", "issues", "watch", "found", "identifiers")

    def __init__(self, plans: dict, issues: list[Issue], sites: InvariantSites | None,
                 identifiers: list | None) -> None:
        self.plans, self.issues = plans, issues
        self.watch = sites.watch if sites is not None else None
        self.found = sites.found if sites is not None else None
        self.identifiers = identifiers

    def object(self, obj: dict, type_name: str, path: str, frame: tuple) -> None:
        plan = self.plans.get(type_name)
        if plan is None:
            return
        issues = self.issues
        if type_name == "Extension" and bool(obj.get("extension")) == _has_value(obj):
            issues.append(Issue(f"ext-1: {path} must have either extensions or a value[x], not both", "invariant", (path,)))
        elif type_name == "Identifier" and self.identifiers is not None:
            system = obj.get("system")
            if type(system) is str and system in ACCEPTED_SYSTEMS:
                self.identifiers.append((obj, path))
        if self.watch is not None:
            rules = self.watch[type_name]
            if rules is not None and (rules[1] is None or not rules[1].isdisjoint(obj)):
                self._note(rules[0], obj, path, frame)
        control = _CONTROL.search
        for key, value in obj.items():
            entry = plan.get(key)
            if entry is None:
                continue
            kind, child, targets = entry
            many = type(value) is list
            if kind == _STRING and not many:  # most elements: one string, checked in line
                if (type(value) is str and control(value) is None) or value is None:
                    continue
            for i, item in enumerate(value if many else (value,)):
                if item is None:
                    continue  # null placement is json_rules' business
                if kind != _COMPLEX and kind != _RESOURCE:
                    if not _kind_ok(kind, item):  # the path is spelt out only for an issue
                        where = _where(path, key, i, many)
                        issues.append(Issue(_kind_message(kind, where, item), "structure", (where,)))
                    continue
                where = _where(path, key, i, many)
                if kind == _COMPLEX:
                    if type(item) is dict:
                        if len(item) == 1 and "id" in item and key[0] != "_":
                            # ele-1 "All FHIR elements must have a @value or children" ({} is json_rules')
                            issues.append(Issue(f"ele-1: {where} must have a value or children, not only an id",
                                                "invariant", (where,)))
                        if targets is not None and (found := target_issue(item, targets, where, frame[1], frame[2])):
                            issues.append(found)
                        self.object(item, child, where, frame)
                    else:
                        text = f"{where} must be a JSON object ({child}), got {_shown(item)}"
                        issues.append(Issue(text, "structure", (where,)))
                else:
                    self._resource(item, where, key, frame)

    def _resource(self, item: object, where: str, key: str, frame: tuple) -> None:
        nested = item.get("resourceType") if isinstance(item, dict) else None
        if not isinstance(nested, str) or not is_resource_type(nested):
            text = f"{where} is not a resource of a known type ({_shown(nested)})"
            self.issues.append(Issue(text, "structure", (where,)))
            return
        _, root, bundle = frame
        # a contained resource resolves '#' references in its container (R4 references.html#contained)
        frame = (item, root if key == "contained" else item, item if nested == "Bundle" else bundle)
        self.object(item, nested, where, frame)

    def _note(self, rules: tuple, obj: dict, path: str, frame: tuple) -> None:
        for rule, groups, exempt, test in rules:
            if _applies(groups, exempt, obj) and (test is None or test(obj)):
                self.found.append(Site(rule, obj, path, *frame))


def _where(path: str, key: str, i: int, many: bool) -> str:
    name = key[1:] if key[0] == "_" else key  # _birthDate holds birthDate's id/extensions
    return f"{path}.{name}[{i}]" if many else f"{path}.{name}"


def _applies(groups: tuple, exempt: tuple, obj: dict) -> bool:
    for keys in groups:
        if keys.isdisjoint(obj):
            return False
    for conjunction in exempt:
        for keys in conjunction:
            if keys.isdisjoint(obj):
                break
        else:
            return False
    return True


def _has_value(extension: dict) -> bool:
    # valueString, valueCodeableConcept...: as the profile validator reads ext-1
    return any(k.startswith("value") and len(k) > 5 and k[5].isupper() for k in extension)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind_message(kind: int, where: str, value: object) -> str:
    if kind == _STRING and isinstance(value, str):
        char = _CONTROL.search(value).group()
        return f"{where} contains the control character U+{ord(char):04X} (only tab, CR and LF are allowed below U+0020)"
    return f"{where} must be {_KIND_NAMES[kind]}, got {_shown(value)}"


def check_primitive_kinds(
    resource: dict, sites: InvariantSites | None = None, identifiers: list | None = None
) -> list[Issue]:
    """The structure issues of ``resource``; with ``sites``, also note where its rules apply;
    with ``identifiers``, collect (Identifier, path) of the Swedish systems (identifiers.py)."""
    issues: list[Issue] = []
    rt = resource.get("resourceType")
    if isinstance(rt, str):
        frame = (resource, resource, resource if rt == "Bundle" else None)
        _Walk(_plans(), issues, sites, identifiers).object(resource, rt, rt, frame)
    return issues
