"""FHIR JSON rules that the pydantic models do not enforce (R4 §2.6.2 "JSON").

fhir.resources accepts ``null`` values, empty arrays and empty objects; the JSON
format forbids all three ("there are no null values or empty arrays/objects").
The one exception is the ``_name`` array of primitive extensions, where ``null``
keeps the positions of the primitive array aligned.
"""

from __future__ import annotations

from fhir_server.errors import Issue

__all__ = ["check_json_rules"]


def check_json_rules(resource: dict, root: str) -> list[Issue]:
    issues: list[Issue] = []
    _walk_object(resource, root, issues)
    return issues


def _walk_object(obj: dict, path: str, issues: list[Issue]) -> None:
    if not obj:
        issues.append(Issue("Empty JSON objects are not allowed in FHIR", "structure", (path,)))
        return
    for key, value in obj.items():
        if key == "resourceType":
            continue
        child = f"{path}.{key}"
        if isinstance(value, dict):
            # a nested resource (contained, Bundle.entry.resource) reports its own path
            _walk_object(value, child, issues)
        elif isinstance(value, list):
            if not value:
                issues.append(Issue("Empty arrays are not allowed in FHIR", "structure", (child,)))
                continue
            allow_null = key.startswith("_")
            for i, item in enumerate(value):
                item_path = f"{child}[{i}]"
                if item is None:
                    if not allow_null:
                        issues.append(Issue("null is not allowed in FHIR JSON arrays", "structure", (item_path,)))
                elif isinstance(item, dict):
                    _walk_object(item, item_path, issues)
                elif isinstance(item, str) and not item.strip():
                    issues.append(Issue("Empty or blank strings are not allowed", "structure", (item_path,)))
        elif value is None:
            issues.append(Issue("null values are not allowed in FHIR JSON", "structure", (child,)))
        elif isinstance(value, str) and not value.strip() and key != "div":
            issues.append(Issue("Empty or blank strings are not allowed", "structure", (child,)))
