"""Patching a stored resource (R4 §3.1.0.9 "patch"): JSON Patch (RFC 6902) and JSON
Merge Patch (RFC 7386, what fhirpy's ``patch()`` and many clients send: a partial
resource, ``null`` removing an element)."""

from __future__ import annotations

from dataclasses import dataclass

import jsonpatch

from fhir_server.errors import BadRequest, Unprocessable

__all__ = ["MergePatch", "apply_json_patch", "apply_merge_patch"]


@dataclass(frozen=True)
class MergePatch:
    """A JSON Merge Patch document (a JSON object), as opposed to a JSON Patch list."""

    document: dict


def apply_json_patch(resource: dict, operations: object) -> dict:
    """Apply ``operations`` (a JSON Patch list, or a ``MergePatch``) to a copy of
    ``resource``; the caller re-validates the result."""
    if isinstance(operations, MergePatch):
        return apply_merge_patch(resource, operations.document)
    if not isinstance(operations, list) or not all(isinstance(op, dict) for op in operations):
        raise BadRequest("A JSON Patch document must be a JSON array of operation objects")
    try:
        patch = jsonpatch.JsonPatch(operations)
        patched = patch.apply(resource, in_place=False)
    except jsonpatch.JsonPatchTestFailed as exc:
        raise Unprocessable(f"JSON Patch test failed: {exc}") from None
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError) as exc:
        raise Unprocessable(f"JSON Patch could not be applied: {exc}") from None
    return _checked(resource, patched, "JSON Patch")


def apply_merge_patch(resource: dict, document: dict) -> dict:
    """RFC 7386 §2: objects merge member by member, ``null`` removes, anything else
    (arrays included) replaces."""
    if not isinstance(document, dict):
        raise BadRequest("A JSON Merge Patch document must be a JSON object (a partial resource)")
    return _checked(resource, _merge(resource, document), "JSON Merge Patch")


def _merge(target: object, patch: object) -> object:
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = _merge(merged.get(key), value)
    return merged


def _checked(resource: dict, patched: object, kind: str) -> dict:
    if not isinstance(patched, dict):
        raise Unprocessable(f"{kind} must leave a resource (a JSON object)")
    if patched.get("resourceType") != resource.get("resourceType"):
        raise Unprocessable(f"{kind} may not change resourceType", expression="resourceType")
    if patched.get("id") != resource.get("id"):
        raise Unprocessable(f"{kind} may not change the resource id", expression=f"{resource['resourceType']}.id")
    return patched
