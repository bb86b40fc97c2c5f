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

It also holds every Extension to ext-1 ("Must have either extensions or value[x],
not both"), which the models do not evaluate and ``$validate`` does.

This walk checks all of that, guided by the generated types table; formats and
cardinality are left to the models.
"""

from __future__ import annotations

import re
from functools import lru_cache

from fhir_server.errors import Issue
from fhir_server.model.resource_types import is_resource_type
from fhir_server.spec import load_table

__all__ = ["check_primitive_kinds"]


_BOOL, _INT, _DECIMAL, _STRING, _COMPLEX, _RESOURCE = range(6)
_KIND_NAMES = {_BOOL: "a JSON boolean", _INT: "a JSON integer", _DECIMAL: "a JSON number", _STRING: "a JSON string"}
_PRIMITIVE_KINDS = {"boolean": _BOOL, "integer": _INT, "positiveInt": _INT, "unsignedInt": _INT, "decimal": _DECIMAL}
#: below U+0020, except tab, LF and CR
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


@lru_cache(maxsize=1)
def _plans() -> dict[str, dict[str, tuple[int, str | None]]]:
    types = {k: v for k, v in load_table("types").items() if not k.startswith("_")}
    primitives = {n for n, t in types.items() if t["k"] == "primitive-type"}
    plans: dict[str, dict[str, tuple[int, str | None]]] = {}
    for name, entry in types.items():
        plan = {}
        for element, facts in entry.get("e", {}).items():
            t = facts["t"]
            if element.endswith("[x]") or len(t) != 1:
                continue
            tname = t[0]
            if tname in primitives or tname.startswith("http://hl7.org/fhirpath/"):
                # Element.id and Extension.url are FHIRPath System.String in the snapshot
                plan[element] = (_PRIMITIVE_KINDS.get(tname, _STRING), None)
                plan["_" + element] = (_COMPLEX, "Element")
            elif tname == "Resource":
                plan[element] = (_RESOURCE, None)
            elif tname in types:
                plan[element] = (_COMPLEX, tname)
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


def _walk(obj: dict, type_name: str, path: str, plans: dict, issues: list[Issue]) -> None:
    plan = plans.get(type_name)
    if plan is None:
        return
    if type_name == "Extension" and bool(obj.get("extension")) == _has_value(obj):
        issues.append(Issue(f"ext-1: {path} must have either extensions or a value[x], not both", "invariant", (path,)))
    for key, value in obj.items():
        entry = plan.get(key)
        if entry is None:
            continue
        kind, child = entry
        items = value if isinstance(value, list) else (value,)
        many = isinstance(value, list)
        name = key[1:] if key.startswith("_") else key  # _birthDate holds birthDate's id/extensions
        for i, item in enumerate(items):
            if item is None:
                continue  # null placement is json_rules' business
            where = f"{path}.{name}[{i}]" if many else f"{path}.{name}"
            if kind == _COMPLEX:
                if isinstance(item, dict):
                    _walk(item, child, where, plans, issues)
                else:
                    text = f"{where} must be a JSON object ({child}), got {_shown(item)}"
                    issues.append(Issue(text, "structure", (where,)))
            elif kind == _RESOURCE:
                nested = item.get("resourceType") if isinstance(item, dict) else None
                if not isinstance(nested, str) or not is_resource_type(nested):
                    text = f"{where} is not a resource of a known type ({_shown(nested)})"
                    issues.append(Issue(text, "structure", (where,)))
                else:
                    _walk(item, nested, where, plans, issues)
            elif not _kind_ok(kind, item):
                issues.append(Issue(_kind_message(kind, where, item), "structure", (where,)))


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


def check_primitive_kinds(resource: dict) -> list[Issue]:
    issues: list[Issue] = []
    rt = resource.get("resourceType")
    if isinstance(rt, str):
        _walk(resource, rt, rt, _plans(), issues)
    return issues
