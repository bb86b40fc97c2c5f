"""JSON kinds of primitive values (R4 json.html#primitive).

pydantic's lax mode lets ``"active": "yes"`` and ``"multipleBirthInteger": "3"``
through (strict mode does not help with fhir.resources' own types). The JSON
format is exact: booleans are JSON true/false, integers and decimals are JSON
numbers, everything else is a JSON string. This walk checks that, guided by the
generated types table; structure and formats are left to the models.
"""

from __future__ import annotations

from functools import lru_cache

from fhir_server.errors import Issue
from fhir_server.model.resource_types import is_resource_type
from fhir_server.spec import load_table

__all__ = ["check_primitive_kinds"]


_BOOL, _INT, _DECIMAL, _STRING, _COMPLEX, _RESOURCE = range(6)
_KIND_NAMES = {_BOOL: "a JSON boolean", _INT: "a JSON integer", _DECIMAL: "a JSON number", _STRING: "a JSON string"}
_PRIMITIVE_KINDS = {"boolean": _BOOL, "integer": _INT, "positiveInt": _INT, "unsignedInt": _INT, "decimal": _DECIMAL}


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
        return isinstance(value, str)
    if kind == _BOOL:
        return isinstance(value, bool)
    if kind == _INT:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _walk(obj: dict, type_name: str, path: str, plans: dict, issues: list[Issue]) -> None:
    plan = plans.get(type_name)
    if plan is None:
        return
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
            elif kind == _RESOURCE:
                nested = item.get("resourceType") if isinstance(item, dict) else None
                if not isinstance(nested, str) or not is_resource_type(nested):
                    issues.append(Issue(f"{where} is not a resource of a known type ({nested!r})", "structure", (where,)))
                else:
                    _walk(item, nested, where, plans, issues)
            elif not _kind_ok(kind, item):
                issues.append(Issue(f"{where} must be {_KIND_NAMES[kind]}, got {item!r}", "structure", (where,)))


def check_primitive_kinds(resource: dict) -> list[Issue]:
    issues: list[Issue] = []
    rt = resource.get("resourceType")
    if isinstance(rt, str):
        _walk(resource, rt, rt, _plans(), issues)
    return issues
