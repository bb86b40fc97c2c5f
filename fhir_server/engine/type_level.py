"""Type-level writes: create, conditional create/update/delete/patch (R4 http.html)."""

from __future__ import annotations

import orjson

from fhir_server.engine.conditional import find_matches, parse_query
from fhir_server.engine.instance import delete, patch, update
from fhir_server.engine.work import Work
from fhir_server.engine.write import WriteOutcome, prepare, store_version
from fhir_server.errors import BadRequest, Conflict, NotFound, PreconditionFailed
from fhir_server.model import new_id

__all__ = ["create", "conditional_update", "conditional_delete", "conditional_patch"]


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
    if if_none_exist is not None:
        matches = find_matches(work, resource_type, parse_query(if_none_exist))
        if len(matches) > 1:
            raise PreconditionFailed(f"If-None-Exist '{if_none_exist}' matches more than one {resource_type}")
        if matches:
            existing = work.uow.current(resource_type, matches[0])
            return WriteOutcome(200, existing, orjson.loads(existing.body), "The resource exists; nothing was created")
    rid = assigned_id or new_id()
    version, stored = store_version(work, resource, rid, method="POST", previous=None)
    return WriteOutcome(201, version, stored)


def _single_match(work: Work, resource_type: str, query: str, action: str) -> str | None:
    matches = find_matches(work, resource_type, parse_query(query))
    if len(matches) > 1:
        raise PreconditionFailed(f"Conditional {action} criteria '{query}' match more than one {resource_type}")
    return matches[0] if matches else None


def conditional_update(
    work: Work, resource_type: str, query: str, resource: dict, *, if_match: str | None = None
) -> WriteOutcome:
    """No match: create (with the body's id if given); one: update it; several: 412."""
    target = _single_match(work, resource_type, query, "update")
    body_id = resource.get("id")
    if target is None:
        if body_id is not None:
            existing = work.uow.current(resource_type, str(body_id))
            if existing is not None and not existing.deleted:
                # R5 made explicit what R4 implies: never overwrite a resource the criteria did not match
                raise Conflict(f"{resource_type}/{body_id} exists but does not match '{query}'")
            return update(work, resource_type, body_id, resource, if_match=if_match)
        return create(work, resource_type, resource)
    if body_id is not None and body_id != target:
        raise BadRequest(
            f"The resource id '{body_id}' differs from the matching {resource_type}/{target}",
            expression=f"{resource_type}.id",
        )
    return update(work, resource_type, target, {**resource, "id": target}, if_match=if_match)


def conditional_delete(work: Work, resource_type: str, query: str) -> WriteOutcome:
    """Single-match conditional delete: several matches are 412 (R4 allows either)."""
    target = _single_match(work, resource_type, query, "delete")
    if target is None:
        return WriteOutcome(204, None, message=f"No {resource_type} matches '{query}'; nothing to delete")
    return delete(work, resource_type, target)


def conditional_patch(
    work: Work, resource_type: str, query: str, operations: object, *, if_match: str | None = None
) -> WriteOutcome:
    target = _single_match(work, resource_type, query, "patch")
    if target is None:
        raise NotFound(f"No {resource_type} matches '{query}'")
    return patch(work, resource_type, target, operations, if_match=if_match)
