"""Type-level writes: create, conditional create/update/delete/patch (R4 http.html).

Targets come from ``conditional.resolve_target``, the resolver transaction and batch
entries use too; ``write_target`` carries out a resolved write for both.
"""

from __future__ import annotations

import orjson

from fhir_server.engine import access
from fhir_server.engine.conditional import Target, resolve_target
from fhir_server.engine.instance import delete, patch, update
from fhir_server.engine.work import Work
from fhir_server.engine.write import WriteOutcome, prepare, store_version
from fhir_server.errors import Forbidden
from fhir_server.model import new_id

__all__ = ["create", "conditional_update", "conditional_delete", "conditional_patch", "write_target"]


def create(
    work: Work,
    resource_type: str,
    resource: dict,
    *,
    if_none_exist: str | None = None,
    assigned_id: str | None = None,
) -> WriteOutcome:
    """Create with a server-assigned id; the client's id is ignored (R4 http.html#create)."""
    resource = prepare(work, resource, resource_type, method="POST", rid=None)
    rid = assigned_id
    if if_none_exist is not None:
        target = resolve_target(work, "POST", resource_type, if_none_exist=if_none_exist)
        if target.action == "existing":
            return _existing(work, resource_type, target.id)
        rid = rid or target.id
    version, stored = store_version(work, resource, rid or new_id(), method="POST", previous=None)
    return WriteOutcome(201, version, stored, work=work)


def _existing(work: Work, resource_type: str, rid: str) -> WriteOutcome:
    if work.cause is None and not access.is_visible(work, resource_type, rid):
        # the criteria match what this caller may not see: neither show it nor make a duplicate
        raise Forbidden(f"The conditional create's criteria match a {resource_type} this caller may not see")
    existing = work.uow.current(resource_type, rid)
    return WriteOutcome(
        200, existing, orjson.loads(existing.body), "The resource exists; nothing was created", work=work
    )


def write_target(
    work: Work, resource_type: str, target: Target, payload: object, *, if_match: str | None = None
) -> WriteOutcome:
    """Carry out a resolved write; ``payload`` is the resource (POST, PUT) or the JSON Patch."""
    if target.action == "existing":
        return _existing(work, resource_type, target.id)
    if target.action == "create":
        return create(work, resource_type, payload, assigned_id=target.id)
    if target.action == "update":
        # criteria found the id: the body may leave it out (a differing one was refused)
        resource = {**payload, "id": target.id} if target.conditional else payload
        return update(work, resource_type, target.id, resource, if_match=if_match)
    if target.action == "patch":
        return patch(work, resource_type, target.id, payload, if_match=if_match)
    if target.action == "delete":
        return delete(work, resource_type, target.id, if_match=if_match)
    return WriteOutcome(204, None, message=f"No {resource_type} matches the criteria; nothing to delete")


def conditional_update(
    work: Work, resource_type: str, query: str, resource: dict, *, if_match: str | None = None
) -> WriteOutcome:
    """No match: create (with the body's id if given); one: update it; several: 412."""
    target = resolve_target(work, "PUT", resource_type, query=query, body_id=resource.get("id"))
    return write_target(work, resource_type, target, resource, if_match=if_match)


def conditional_delete(work: Work, resource_type: str, query: str) -> WriteOutcome:
    """Single-match conditional delete: several matches are 412 (R4 allows either)."""
    target = resolve_target(work, "DELETE", resource_type, query=query)
    if target.action == "none":
        return WriteOutcome(204, None, message=f"No {resource_type} matches '{query}'; nothing to delete")
    return write_target(work, resource_type, target, None)


def conditional_patch(
    work: Work, resource_type: str, query: str, operations: object, *, if_match: str | None = None
) -> WriteOutcome:
    """One match: patch it; none: 404; several: 412."""
    target = resolve_target(work, "PATCH", resource_type, query=query)
    return write_target(work, resource_type, target, operations, if_match=if_match)
