"""The one write pipeline: validate -> hooks -> version -> index -> store.

Single interactions, transaction entries and workflow hooks all store through
``store_version``, inside the caller's unit of work.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from fhir_server.engine.hooks import HookPoint, WriteEvent
from fhir_server.engine.work import Work
from fhir_server.errors import Conflict
from fhir_server.model import stamp_meta, validate_resource
from fhir_server.search.extract import extract_index
from fhir_server.storage.base import ResourceVersion, VersionConflict

__all__ = ["WriteOutcome", "store_version", "store_deletion", "prepare"]


@dataclass(frozen=True)
class WriteOutcome:
    """What a write did: ``status`` is the HTTP status it implies."""

    status: int
    version: ResourceVersion | None
    #: the stored resource (None for deletes / when nothing was written)
    resource: dict | None = None
    message: str | None = None


def prepare(work: Work, resource: dict, expected_type: str | None, *, method: str, rid: str | None) -> dict:
    """Hooks before validation, then R4 validation. Returns the resource to store."""
    hooks = work.runtime.hooks
    if hooks.has(HookPoint.BEFORE_VALIDATION):
        hooks.run(
            HookPoint.BEFORE_VALIDATION,
            WriteEvent(work, expected_type or str(resource.get("resourceType")), rid or "", method, resource, None),
        )
    return validate_resource(resource, expected_type)


def store_version(
    work: Work, resource: dict, rid: str, *, method: str, previous: ResourceVersion | None
) -> tuple[ResourceVersion, dict]:
    resource_type = resource["resourceType"]
    version_id = previous.version_id + 1 if previous else 1
    stored = stamp_meta(resource, rid, version_id, work.next_instant())
    event = WriteEvent(work, resource_type, rid, method, stored, previous)
    work.runtime.hooks.run(HookPoint.BEFORE_COMMIT, event)
    version = ResourceVersion(
        resource_type, rid, version_id, stored["meta"]["lastUpdated"], False, method, orjson.dumps(stored)
    )
    try:
        work.uow.write(version, extract_index(work.runtime.registry, stored, work.ctx.base_url))
    except VersionConflict as exc:
        raise Conflict(f"Concurrent write to {resource_type}/{rid}: {exc}") from None
    work.committed.append(event)
    return version, stored


def store_deletion(work: Work, previous: ResourceVersion) -> ResourceVersion:
    event = WriteEvent(work, previous.resource_type, previous.id, "DELETE", None, previous)
    work.runtime.hooks.run(HookPoint.BEFORE_COMMIT, event)
    version = ResourceVersion(
        previous.resource_type, previous.id, previous.version_id + 1, work.next_instant(), True, "DELETE", None
    )
    try:
        work.uow.write(version, None)
    except VersionConflict as exc:
        raise Conflict(f"Concurrent write to {previous.resource_type}/{previous.id}: {exc}") from None
    work.committed.append(event)
    return version
