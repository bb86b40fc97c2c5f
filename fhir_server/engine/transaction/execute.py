"""Running one batch or transaction entry: its target from the one resolver
(``conditional.resolve_target``), then the same write functions single interactions use.
"""

from __future__ import annotations

import base64
from urllib.parse import urlencode

import orjson

from fhir_server.engine import history as history_mod
from fhir_server.engine import instance
from fhir_server.engine.access_log import refuse_audit_listing
from fhir_server.engine.bundles import history_bundle, read_entry, searchset_bundle, status_text
from fhir_server.engine.conditional import Target, resolve_target
from fhir_server.engine.search import plan_search, search
from fhir_server.engine.transaction.entries import EntryRequest
from fhir_server.engine.type_level import write_target
from fhir_server.engine.work import Work
from fhir_server.engine.write import WriteOutcome
from fhir_server.errors import BadRequest

__all__ = ["WRITES", "resolve", "execute_write", "execute_read"]

#: methods whose entries resolve a target before any of them runs
WRITES = ("POST", "PUT", "PATCH")


def resolve(work: Work, entry: EntryRequest) -> Target:
    """Where the entry's write lands (R4 http.html#trules: decided before references are rewritten)."""
    if entry.method == "POST":
        return resolve_target(work, "POST", entry.resource_type, if_none_exist=entry.if_none_exist or None)
    body_id = entry.resource.get("id") if entry.method == "PUT" and isinstance(entry.resource, dict) else None
    return resolve_target(
        work,
        entry.method,
        entry.resource_type,
        id=entry.id,
        query=urlencode(entry.query) if entry.id is None else None,
        body_id=body_id,
    )


def execute_write(work: Work, entry: EntryRequest, target: Target) -> WriteOutcome:
    payload = _patch_operations(entry) if entry.method == "PATCH" else entry.resource
    return write_target(work, entry.resource_type, target, payload, if_match=entry.if_match)


def _patch_operations(entry: EntryRequest) -> object:
    """A PATCH entry carries its JSON Patch as a Binary (R4 http.html#patch: 'in a Binary')."""
    resource = entry.resource or {}
    if resource.get("resourceType") == "Binary" and resource.get("data"):
        try:
            return orjson.loads(base64.b64decode(resource["data"]))
        except (ValueError, orjson.JSONDecodeError):
            raise BadRequest(f"{entry.label}: the Binary does not hold a JSON Patch document") from None
    raise BadRequest(f"{entry.label}: a PATCH entry needs a Binary resource holding the JSON Patch")


def execute_read(work: Work, entry: EntryRequest) -> dict:
    """A GET (or HEAD) entry: read, vread, search or history; its response entry."""
    base = work.ctx.base_url
    t = entry.resource_type
    ok = {"status": status_text(200)}
    if entry.history:
        rt = work.runtime
        request = history_mod.parse_history_params(
            t, entry.id, entry.query, default_count=rt.default_page_size, max_count=rt.max_page_size
        )
        page = history_mod.history(work, request)
        url = "/".join(p for p in (base, t, entry.id, "_history") if p)
        return {"resource": history_bundle(base, url, list(request.params), page), "response": ok}
    if t is None:
        raise BadRequest(f"{entry.label}: GET {entry.url!r} is not supported inside a Bundle")
    if entry.id is None:
        refuse_audit_listing(t, "search inside a Bundle")
        found = search(work, plan_search(work, t, entry.query), entry.query)
        return {"resource": searchset_bundle(base, f"{base}/{t}", found), "response": ok}
    if entry.version is not None:
        return read_entry(base, instance.vread(work, t, entry.id, entry.version))
    return read_entry(base, instance.read(work, t, entry.id))
