"""FHIR JSON rules that the pydantic models do not enforce (R4 §2.6.2 "JSON").

fhir.resources accepts ``null`` values, empty arrays and empty objects; the JSON
format forbids all three ("there are no null values or empty arrays/objects").
The one exception is the ``_name`` array of primitive extensions, where ``null``
keeps the positions of the primitive array aligned.
"""

from __future__ import annotations

from fhir_server.errors import InvalidResource, Issue

__all__ = ["check_json_rules"]


def check_json_rules(resource: dict, root: str, max_depth: int = 100) -> list[Issue]:
    """The issues, or InvalidResource at once for objects/arrays nested deeper than
    ``max_depth`` (the resource itself is depth 1; an array and its objects count 1 each)."""
    issues: list[Issue] = []
    try:
        _walk_object(resource, root, issues, max_depth - 1)
    except _TooDeep:
        raise InvalidResource(f"The resource is nested deeper than {max_depth} levels (objects and arrays)") from None
    return issues


class _TooDeep(Exception):
    pass


def _too_deep() -> _TooDeep:
    return _TooDeep()


def _check_nested_lists(value: list, room: int) -> None:
    stack = [(value, room)]
    while stack:
        node, left = stack.pop()
        if left < 1:
            raise _too_deep()
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, (dict, list)):
                stack.append((child, left - 1))


def _walk_object(obj: dict, path: str, issues: list[Issue], room: int) -> None:
    """``room``: how many more levels of objects and arrays may be nested below ``obj``."""
    if not obj:
        issues.append(Issue("Empty JSON objects are not allowed in FHIR", "structure", (path,)))
        return
    for key, value in obj.items():
        if key == "resourceType":
            continue
        child = f"{path}.{key}"
        if isinstance(value, dict):
            if room < 1:
                raise _too_deep()
            # a nested resource (contained, Bundle.entry.resource) reports its own path
            _walk_object(value, child, issues, room - 1)
        elif isinstance(value, list):
            if room < 1:
                raise _too_deep()
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
                    if room < 2:
                        raise _too_deep()
                    _walk_object(item, item_path, issues, room - 2)
                elif isinstance(item, list):  # never valid FHIR; only its depth matters here
                    _check_nested_lists(item, room - 1)
                elif isinstance(item, str) and not item.strip():
                    issues.append(Issue("Empty or blank strings are not allowed", "structure", (item_path,)))
        elif value is None:
            issues.append(Issue("null values are not allowed in FHIR JSON", "structure", (child,)))
        elif isinstance(value, str) and not value.strip() and key != "div":
            issues.append(Issue("Empty or blank strings are not allowed", "structure", (child,)))
