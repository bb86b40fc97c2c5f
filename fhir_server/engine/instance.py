"""Instance-level interactions: read, vread, update, patch, delete (R4 http.html)."""

from __future__ import annotations

import orjson

from fhir_server.engine import access
from fhir_server.engine.access_log import AUDIT_EVENT, read_event, refuse_audit_write
from fhir_server.engine.audit import record_read
from fhir_server.engine.work import Work
from fhir_server.engine.write import WriteOutcome, prepare, store_deletion, store_version
from fhir_server.errors import BadRequest, Gone, NotFound, PreconditionFailed
from fhir_server.model import apply_json_patch, is_valid_id
from fhir_server.storage.base import ResourceVersion

__all__ = ["read", "vread", "update", "patch", "delete", "check_if_match"]


def _check_id(resource_type: str, rid: str) -> None:
    if not is_valid_id(rid):
        raise NotFound(f"{resource_type}/{rid} is not a valid resource id")


def read(work: Work, resource_type: str, rid: str) -> ResourceVersion:
    """The current version, as the caller may see it (404 for what it may not see); the
    read is logged (PDL), also when the access rules answer 404."""
    return _current(work, resource_type, rid, audited=True)


def _current(work: Work, resource_type: str, rid: str, *, audited: bool) -> ResourceVersion:
    if resource_type == AUDIT_EVENT:  # from the audit store, as its own route reads it
        return read_event(work.runtime, work.ctx, rid)
    _check_id(resource_type, rid)
    _check_readable(work, resource_type)
    current = work.uow.current(resource_type, rid)
    if current is not None and audited and not current.deleted:
        record_read(work, current)
    if current is None or not _may_see(work, current):
        raise NotFound(f"{resource_type}/{rid} is not known")
    if current.deleted:
        raise Gone(f"{resource_type}/{rid} was deleted (version {current.version_id})")
    return access.shown(work, current)


def vread(work: Work, resource_type: str, rid: str, version_id: str) -> ResourceVersion:
    if resource_type == AUDIT_EVENT:
        return read_event(work.runtime, work.ctx, rid, version_id)
    _check_id(resource_type, rid)
    _check_readable(work, resource_type)
    if not (version_id.isascii() and version_id.isdigit()) or len(version_id) > 18:  # SQLite: 64-bit
        raise NotFound(f"{resource_type}/{rid} has no version {version_id!r}")
    found = work.uow.version(resource_type, rid, int(version_id))
    if found is not None and not found.deleted:
        record_read(work, found, "vread")
    if found is None or not _may_see(work, work.uow.current(resource_type, rid)):
        raise NotFound(f"{resource_type}/{rid} has no version {version_id}")
    if found.deleted:
        raise Gone(f"Version {version_id} of {resource_type}/{rid} is a deletion")
    return access.shown(work, found)


def _check_readable(work: Work, resource_type: str) -> None:
    if work.cause is None:  # a client's read (rules read what they need)
        access.require_scope(work, resource_type, "r")


def _may_see(work: Work, current: ResourceVersion | None) -> bool:
    """A deleted resource has no content to judge: a caller restricted on its type is told
    nothing of it (404, not 410)."""
    if current is None or work.ctx.caller is None or work.cause is not None:
        return current is not None
    if current.deleted:
        return access.policy_filter(work, current.resource_type) is None
    return access.is_visible(work, current.resource_type, current.id)


def check_if_match(current: ResourceVersion | None, if_match: str | None, label: str) -> None:
    """``If-Match: W/"3"`` must name the current version (R4 http.html#concurrency)."""
    if if_match is None:
        return
    wanted = if_match.strip().removeprefix("W/").strip('"')
    if current is None:
        raise PreconditionFailed(f"If-Match {if_match}: {label} does not exist")
    if wanted != str(current.version_id):
        raise PreconditionFailed(
            f"If-Match {if_match} does not match the current version {current.version_id} of {label}"
        )


def update(
    work: Work, resource_type: str, rid: str, resource: dict, *, if_match: str | None = None, method: str = "PUT"
) -> WriteOutcome:
    _check_id(resource_type, rid)
    body_id = resource.get("id")
    if body_id is None:
        raise BadRequest(f"The resource must have an id (the [id] of the URL, {rid})", expression=f"{resource_type}.id")
    if body_id != rid:
        raise BadRequest(
            f"The resource id '{body_id}' does not match the URL id '{rid}'", expression=f"{resource_type}.id"
        )
    resource = prepare(work, resource, resource_type, method=method, rid=rid)
    current = work.uow.current(resource_type, rid)
    check_if_match(current, if_match, f"{resource_type}/{rid}")
    version, stored = store_version(work, resource, rid, method=method, previous=current)
    created = current is None or current.deleted
    return WriteOutcome(201 if created else 200, version, stored, work=work)


def patch(
    work: Work, resource_type: str, rid: str, operations: object, *, if_match: str | None = None
) -> WriteOutcome:
    # as the caller sees it: it patches its own view (logged as the patch, not as a read)
    current = _current(work, resource_type, rid, audited=False)
    check_if_match(current, if_match, f"{resource_type}/{rid}")
    patched = apply_json_patch(orjson.loads(current.body), operations)
    patched = prepare(work, patched, resource_type, method="PATCH", rid=rid)
    version, stored = store_version(work, patched, rid, method="PATCH", previous=work.uow.current(resource_type, rid))
    return WriteOutcome(200, version, stored, work=work)


def delete(work: Work, resource_type: str, rid: str, *, if_match: str | None = None) -> WriteOutcome:
    """Soft delete: a deletion version; reads answer 410 Gone afterwards.

    Deleting what does not exist, or is already deleted, succeeds without a new
    version (R4 http.html#delete: "or if the resource does not exist at all").
    """
    _check_id(resource_type, rid)
    refuse_audit_write(resource_type)
    current = work.uow.current(resource_type, rid)
    check_if_match(current, if_match, f"{resource_type}/{rid}")
    if current is None or not _may_see(work, current):  # as if it did not exist
        return WriteOutcome(204, None, message=f"{resource_type}/{rid} does not exist; nothing to delete")
    if current.deleted:
        return WriteOutcome(204, current, message=f"{resource_type}/{rid} was already deleted", work=work)
    return WriteOutcome(204, store_deletion(work, current), work=work)
