"""JSON Patch (RFC 6902) on a stored resource (R4 §3.1.0.9 "patch")."""

from __future__ import annotations

import jsonpatch

from fhir_server.errors import BadRequest, Unprocessable

__all__ = ["apply_json_patch"]


def apply_json_patch(resource: dict, operations: object) -> dict:
    """Apply ``operations`` to a copy of ``resource``; the caller re-validates the result."""
    if not isinstance(operations, list) or not all(isinstance(op, dict) for op in operations):
        raise BadRequest("A JSON Patch document must be a JSON array of operation objects")
    try:
        patch = jsonpatch.JsonPatch(operations)
        patched = patch.apply(resource, in_place=False)
    except jsonpatch.JsonPatchTestFailed as exc:
        raise Unprocessable(f"JSON Patch test failed: {exc}") from None
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError) as exc:
        raise Unprocessable(f"JSON Patch could not be applied: {exc}") from None
    if not isinstance(patched, dict):
        raise Unprocessable("JSON Patch must leave a resource (a JSON object)")
    if patched.get("resourceType") != resource.get("resourceType"):
        raise Unprocessable("JSON Patch may not change resourceType", expression="resourceType")
    if patched.get("id") != resource.get("id"):
        raise Unprocessable("JSON Patch may not change the resource id", expression=f"{resource['resourceType']}.id")
    return patched
