"""Serving the implementation guide: its resources live in the store, read-only.

At start-up every resource of ``profiles/`` (StructureDefinition, CodeSystem,
ValueSet, ConceptMap, SearchParameter, Questionnaire, ...) is stored under its own
id when it is missing, deleted, or its content differs from the guide's (compared
without ``meta``). Read, search, history and the terminology operations then find
it through the ordinary paths. A restart with an unchanged guide writes nothing.

Clients cannot change these resources: three hooks refuse, with 409 Conflict,

- an update or patch of one of their ids (BEFORE_VALIDATION: it looks at the id only,
  so even an invalid body is refused as what it is, a write to the guide);
- a create, update or patch of any resource that claims one of the guide's canonical
  urls (AFTER_VALIDATION: the url is read from a valid resource only);
- a delete of one of their ids (BEFORE_COMMIT: a delete has no resource to
  validate, so the engine runs only BEFORE_COMMIT for it, in ``store_deletion``).

Why 409 and not 405: R4 http.html (delete) says "If the server refuses to delete
resources of that type on principle, then it should return the status code 405
Method Not Allowed. If the server refuses to delete a resource because of reasons
specific to that resource [...] it should return the status code 409 Conflict."
StructureDefinition, ValueSet, ... stay writable as types (a region may add its
own profiles); what is refused depends on the one resource, so 409 applies. A 405
would also be wrong for ``POST /ValueSet`` with a guide canonical (POST is allowed
on that endpoint) and, per RFC 9110 §15.5.6, would have to carry an ``Allow``
header naming the methods the target supports.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import orjson

from fhir_server.conformance.ig import ig_resources
from fhir_server.engine.context import RequestContext
from fhir_server.engine.hooks import HookPoint, WriteEvent
from fhir_server.engine.work import Runtime
from fhir_server.engine.write import store_version
from fhir_server.errors import Conflict, FhirError, Issue
from fhir_server.model import is_resource_type, is_valid_id, validate_resource
from fhir_server.storage.base import ResourceVersion

__all__ = ["GuideContent", "guide_content", "install_implementation_guide", "supported_profiles"]

log = logging.getLogger("fhir_server.engine")


@dataclass(frozen=True)
class GuideContent:
    """The guide's resources and what makes them read-only (one per guide folder and process)."""

    resources: tuple[dict, ...]
    #: (resource type, id) of every guide resource
    keys: frozenset[tuple[str, str]]
    #: canonical url -> "Type/id" of the guide resource that owns it
    canonicals: dict[str, str]
    #: the keys R4-validated so far: a resource is validated when it is first written, once per process
    validated: set[tuple[str, str]] = field(default_factory=set, compare=False)

    def validate(self, resource: dict) -> None:
        """R4 validation by the models, as for a client's write; an invalid guide resource
        stops start-up.

        The server's own seeding is exempt from the rest of a client's write checks
        (``write.prepare``: the base invariants, the extensions' definitions) on purpose:
        the guide's StructureDefinitions carry snapshots that ``evi-fhir ig snapshot``
        generates from the compact core tables, which keep no ElementDefinition.definition
        and no isModifierReason, so sdf-3 and eld-18 (sdf-10 too) fail on them while their
        differentials pass. A client that writes such a snapshot is refused (400);
        ``$validate`` reports the same of the served copies."""
        key = (resource["resourceType"], resource["id"])
        if key in self.validated:
            return
        try:
            validate_resource(resource)
        except FhirError as exc:
            raise ValueError(f"implementation guide resource {key[0]}/{key[1]} is not valid R4: {exc.message}") from None
        self.validated.add(key)


@lru_cache(maxsize=4)
def guide_content(directory: Path | None) -> GuideContent:
    """Every resource of the guide with a known type and a valid id."""
    resources, canonicals = [], {}
    for resource in ig_resources(directory):
        rtype, rid = resource.get("resourceType"), resource.get("id")
        if not (isinstance(rtype, str) and is_resource_type(rtype) and isinstance(rid, str) and is_valid_id(rid)):
            log.warning("implementation guide: skipped %r/%r (no known resourceType or no valid id)", rtype, rid)
            continue
        resources.append(resource)
        if isinstance(resource.get("url"), str):
            canonicals[resource["url"]] = f"{rtype}/{rid}"
    keys = frozenset((r["resourceType"], r["id"]) for r in resources)
    return GuideContent(tuple(resources), keys, canonicals)


def supported_profiles(directory: Path | None) -> dict[str, list[str]]:
    """Resource type -> urls of the guide's profiles of it (CapabilityStatement.rest.resource.supportedProfile)."""
    out: dict[str, list[str]] = {}
    for r in ig_resources(directory):
        if r.get("resourceType") == "StructureDefinition" and r.get("kind") == "resource" and r.get("url"):
            if r.get("derivation") == "constraint" and isinstance(r.get("type"), str):
                out.setdefault(r["type"], []).append(r["url"])
    return {t: sorted(urls) for t, urls in sorted(out.items())}


def _without_meta(resource: dict) -> dict:
    return {k: v for k, v in resource.items() if k != "meta"}


def _is_current(version: ResourceVersion | None, resource: dict) -> bool:
    if version is None or version.deleted:
        return False
    return _without_meta(orjson.loads(version.body)) == _without_meta(resource)


def _stale(runtime: Runtime, content: GuideContent) -> list[dict]:
    """The guide resources the store lacks or holds with other content (one read, a query per type)."""
    by_type: dict[str, list[dict]] = {}
    for r in content.resources:
        by_type.setdefault(r["resourceType"], []).append(r)
    stale = []
    with runtime.store.unit_of_work(write=False) as uow:
        for rtype, resources in by_type.items():
            stored = {v.id: v for v in uow.load(rtype, [r["id"] for r in resources])}
            stale.extend(r for r in resources if not _is_current(stored.get(r["id"]), r))
    # SearchParameters last: storing one re-registers it, which drops the registry's
    # compiled extractors; the other resources are indexed before that happens
    return sorted(stale, key=lambda r: r["resourceType"] == "SearchParameter")


def _store(runtime: Runtime, ctx: RequestContext, content: GuideContent, resource: dict) -> bool:
    """One unit of work per resource: a standalone MongoDB takes single writes only.
    The check is repeated inside the write, so servers starting together on one
    store write each resource once."""
    rtype, rid = resource["resourceType"], resource["id"]
    with runtime.work(ctx, write=True) as work:
        current = work.uow.current(rtype, rid)
        if _is_current(current, resource):
            return False
        content.validate(resource)
        store_version(work, resource, rid, method="PUT", previous=current)
    return True


def _seed(runtime: Runtime, content: GuideContent, base_url: str) -> int:
    ctx = RequestContext(base_url=base_url)
    written = 0
    for resource in _stale(runtime, content):
        try:
            written += _store(runtime, ctx, content, resource)
        except Conflict:  # another server stored the same version first
            log.info("implementation guide: %s/%s was stored concurrently", resource["resourceType"], resource["id"])
    return written


def _refuse(what: str, expression: str) -> Conflict:
    message = f"{what} belongs to the implementation guide and is read-only on this server"
    return Conflict(message, issues=[Issue(message, code="business-rule", expression=(expression,))])


def _install_hooks(runtime: Runtime, content: GuideContent) -> None:
    keys, canonicals = content.keys, content.canonicals

    def before_validation(event: WriteEvent) -> None:
        if event.id and (event.resource_type, event.id) in keys:
            raise _refuse(f"{event.resource_type}/{event.id}", event.resource_type)

    def after_validation(event: WriteEvent) -> None:
        # the guide's own ids never get here from a client (refused above); seeding may write them
        url = event.resource.get("url")
        if isinstance(url, str) and url in canonicals and (event.resource_type, event.id) not in keys:
            raise _refuse(f"The canonical url {url} (of {canonicals[url]})", f"{event.resource_type}.url")

    def before_commit(event: WriteEvent) -> None:
        if event.method == "DELETE" and (event.resource_type, event.id) in keys:
            raise _refuse(f"{event.resource_type}/{event.id}", event.resource_type)

    runtime.hooks.register(HookPoint.BEFORE_VALIDATION, before_validation)
    runtime.hooks.register(HookPoint.AFTER_VALIDATION, after_validation)
    runtime.hooks.register(HookPoint.BEFORE_COMMIT, before_commit)


def install_implementation_guide(runtime: Runtime, directory: Path | None, *, base_url: str = "") -> int:
    """Store the guide's resources where missing or changed, then make them read-only.

    Returns how many resources were written (0 on a restart with the same guide).
    ``base_url`` localises absolute references while indexing, as for client writes.
    """
    content = guide_content(directory)
    written = _seed(runtime, content, base_url)
    _install_hooks(runtime, content)
    return written
