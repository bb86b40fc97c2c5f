"""The one write pipeline: hooks -> validate -> hooks -> version -> index -> hooks -> store.

Single interactions, transaction and batch entries, operations and deferred rule runs all
store through ``prepare`` + ``store_version`` (or ``store_deletion``), inside the caller's
unit of work; the hook points are ``engine.hooks``' catalogue. Each write is recorded in
``Work.changes``, so answers are built from what the unit of work finally committed.
"""

from __future__ import annotations

import orjson

from fhir_server.audit import patients_in_index
from fhir_server.conformance.validation.base_invariants import invariant_sites
from fhir_server.engine import access
from fhir_server.engine.access_log import refuse_audit_write
from fhir_server.engine.audit import record_deletion, record_write
from fhir_server.engine.changes import Cause, SideEffect
from fhir_server.engine.hooks import HookPoint, WriteEvent
from fhir_server.engine.profiles import check_invariants
from fhir_server.engine.work import Work
from fhir_server.errors import Conflict, InvalidResource
from fhir_server.model import stamp_meta, validate_resource
from fhir_server.search.extract import extract_index
from fhir_server.storage.base import ResourceVersion, VersionConflict

__all__ = ["WriteOutcome", "store_version", "store_deletion", "prepare"]

_HOOK_RULES = "server rules"


class WriteOutcome:
    """What a write did: ``status`` is the HTTP status it implies (201 created, 200 updated
    or matched, 204 deleted or nothing to delete).

    ``version`` and ``resource`` are the resource as its unit of work last wrote it: read
    once the unit of work has run its deferred rules (after ``Runtime.work()``'s block, or
    after ``Work.run_before_commit()``), they are what was committed, even when a rule wrote
    a later version of it. ``side_effects`` lists what server rules created, updated or
    deleted because of this write."""

    __slots__ = ("status", "message", "_version", "_resource", "_work")

    def __init__(
        self,
        status: int,
        version: ResourceVersion | None,
        resource: dict | None = None,
        message: str | None = None,
        *,
        work: Work | None = None,
    ) -> None:
        self.status = status
        self.message = message
        self._version = version
        self._resource = resource
        self._work = work

    def _final(self) -> tuple[ResourceVersion, dict | None] | None:
        v = self._version
        if v is None or self._work is None:
            return None
        return self._work.changes.final(v.resource_type, v.id)

    @property
    def version(self) -> ResourceVersion | None:
        """As the caller may see it (protected identity redacted)."""
        final = self._final()
        version = final[0] if final is not None else self._version
        return access.shown(self._work, version) if self._work is not None and version is not None else version

    @property
    def resource(self) -> dict | None:
        final = self._final()
        resource = final[1] if final is not None else self._resource
        return access.shown_resource(self._work, resource) if self._work is not None else resource

    @property
    def side_effects(self) -> list[SideEffect]:
        v = self._version
        if v is None or self._work is None:
            return []
        return self._work.changes.side_effects(v.resource_type, v.id)

    def __repr__(self) -> str:
        return f"WriteOutcome({self.status}, {self.version!r}, message={self.message!r})"


def prepare(work: Work, resource: dict, expected_type: str | None, *, method: str, rid: str | None) -> dict:
    """BEFORE_VALIDATION hooks (they see the type and id only), then R4 validation: the
    models, the nesting limit of a request body (a PATCH result may not grow past it),
    the base invariants and the extensions' definitions (``profiles.check_invariants``)."""
    refuse_audit_write(expected_type or resource.get("resourceType"))
    hooks = work.runtime.hooks
    if hooks.has(HookPoint.BEFORE_VALIDATION):
        rtype = expected_type or resource.get("resourceType")
        event = WriteEvent(work, rtype if isinstance(rtype, str) else "", rid or "", method, None, None)
        _Hooks(work, None).run(HookPoint.BEFORE_VALIDATION, event)
    sites = invariant_sites()
    resource = validate_resource(resource, expected_type, max_depth=work.runtime.max_json_depth, sites=sites)
    if not isinstance(resource.get("meta", {}), dict):
        # the server stamps meta.versionId / lastUpdated into it: it must be an object
        rtype = resource["resourceType"]
        raise InvalidResource(f"{rtype}.meta must be a JSON object", expression=f"{rtype}.meta")
    check_invariants(work.runtime, resource, sites)
    return resource


class _Hooks:
    """Runs one write's hooks as the cause of what they defer; refuses writes from inside them."""

    def __init__(self, work: Work, key: tuple[str, str] | None) -> None:
        self.work = work
        self.outer = work.cause
        self.cause = self.outer if self.outer is not None or key is None else Cause(key, _HOOK_RULES)

    def run(self, point: HookPoint, event: WriteEvent) -> None:
        work = self.work
        work.cause = self.cause
        work.in_hooks = True
        try:
            work.runtime.hooks.run(point, event)
        finally:
            work.cause = self.outer
            work.in_hooks = False


def _check_not_in_hooks(work: Work, what: str) -> None:
    if work.in_hooks:
        # a programming error of a rule, not a client's: hooks defer what they write
        raise RuntimeError(f"A hook tried to write {what}; hooks defer writes with Work.defer")


def store_version(
    work: Work, resource: dict, rid: str, *, method: str, previous: ResourceVersion | None
) -> tuple[ResourceVersion, dict]:
    """Stamp, run AFTER_VALIDATION and BEFORE_COMMIT, write. ``resource`` was validated."""
    resource_type = resource["resourceType"]
    _check_not_in_hooks(work, f"{resource_type}/{rid}")
    access.check_write(work, resource_type, previous, "c" if previous is None or previous.deleted else "u")
    resource = access.keep_hidden(work, resource, previous)
    version_id = previous.version_id + 1 if previous else 1
    stored = stamp_meta(resource, rid, version_id, work.next_instant())
    event = WriteEvent(work, resource_type, rid, method, stored, previous)
    hooks = _Hooks(work, (resource_type, rid))
    hooks.run(HookPoint.AFTER_VALIDATION, event)
    # fixed from here on: BEFORE_COMMIT hooks may not mutate, and could not change what is stored
    body = orjson.dumps(stored)
    index = extract_index(work.registry, stored, work.ctx.base_url)
    hooks.run(HookPoint.BEFORE_COMMIT, event)
    # whose data it is, kept with it: the PDL log of a read then needs no parsing (engine/audit.py)
    patients = patients_in_index(resource_type, rid, index)
    version = ResourceVersion(resource_type, rid, version_id, stored["meta"]["lastUpdated"], False, method, body,
                              patients)
    try:
        work.uow.write(version, index)
    except VersionConflict as exc:
        raise Conflict(f"Concurrent write to {resource_type}/{rid}: {exc}") from None
    record_write(work, version, previous)  # before the check: a refused write is logged with its patient
    access.check_result_visible(work, resource_type, rid)
    work.committed.append(event)
    work.changes.record(version, stored, previous, hooks.outer)
    return version, stored


def store_deletion(work: Work, previous: ResourceVersion) -> ResourceVersion:
    _check_not_in_hooks(work, f"{previous.resource_type}/{previous.id}")
    access.check_write(work, previous.resource_type, previous, "d")
    event = WriteEvent(work, previous.resource_type, previous.id, "DELETE", None, previous)
    hooks = _Hooks(work, (previous.resource_type, previous.id))
    hooks.run(HookPoint.BEFORE_COMMIT, event)
    version = ResourceVersion(
        previous.resource_type, previous.id, previous.version_id + 1, work.next_instant(), True, "DELETE", None
    )
    try:
        work.uow.write(version, None)
    except VersionConflict as exc:
        raise Conflict(f"Concurrent write to {previous.resource_type}/{previous.id}: {exc}") from None
    record_deletion(work, previous)
    work.committed.append(event)
    work.changes.record(version, None, previous, hooks.outer)
    return version
