"""Batch and transaction Bundles through the one write pipeline.

transaction: one unit of work; identities resolved first, references rewritten,
then entries run in the spec's order (DELETE, POST, PUT/PATCH, GET); any failure
rolls everything back. batch: every entry on its own; failures become entries.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from urllib.parse import urlencode

import orjson

from fhir_server.engine import history as history_mod
from fhir_server.engine import instance, type_level
from fhir_server.engine.bundles import etag, full_url, history_bundle, searchset_bundle
from fhir_server.engine.conditional import find_matches
from fhir_server.engine.context import RequestContext
from fhir_server.engine.search import plan_search, search
from fhir_server.engine.transaction.entries import METHOD_ORDER, EntryRequest, parse_entries
from fhir_server.engine.transaction.references import rewrite_references
from fhir_server.engine.work import Runtime, Work
from fhir_server.engine.write import WriteOutcome
from fhir_server.errors import BadRequest, FhirError, PreconditionFailed
from fhir_server.model import new_id, validate_resource

__all__ = ["process_bundle"]

_STATUS = {200: "200 OK", 201: "201 Created", 204: "204 No Content"}


@dataclass
class _Resolved:
    """Where a write entry lands, decided before anything runs."""

    id: str | None
    #: conditional create that matched: nothing to write
    existing: bool = False


def process_bundle(runtime: Runtime, ctx: RequestContext, bundle: dict, *, return_pref: str = "representation") -> dict:
    if bundle.get("resourceType") != "Bundle":
        raise BadRequest("POST to the base expects a Bundle", expression="resourceType")
    kind = bundle.get("type")
    if kind not in ("transaction", "batch"):
        raise BadRequest(f"Bundle.type must be transaction or batch, got {kind!r}", expression="Bundle.type")
    _validate_skeleton(bundle)
    entries = parse_entries(bundle, ctx.base_url)
    if kind == "transaction":
        with runtime.work(ctx, write=True) as work:
            responses = _run_transaction(work, entries, return_pref)
    else:
        responses = [_run_batch_entry(runtime, ctx, e, return_pref) for e in entries]
    return {"resourceType": "Bundle", "type": f"{kind}-response", "entry": responses}


def _validate_skeleton(bundle: dict) -> None:
    """The Bundle's own structure; entry resources are validated as their entries run."""
    entries = bundle.get("entry")
    if isinstance(entries, list):
        skeleton = [{k: v for k, v in e.items() if k != "resource"} if isinstance(e, dict) else e for e in entries]
        bundle = {**bundle, "entry": [e for e in skeleton if e != {}] or None}
        if bundle["entry"] is None:
            del bundle["entry"]
    validate_resource(bundle, "Bundle")


def _run_transaction(work: Work, entries: list[EntryRequest], return_pref: str) -> list[dict]:
    responses: list[dict | None] = [None] * len(entries)
    ordered = sorted(entries, key=lambda e: METHOD_ORDER[e.method])
    for entry in ordered:
        if entry.method == "DELETE":
            responses[entry.index] = _guard(entry, lambda e=entry: _execute(work, e, None, return_pref))
    resolved = {e.index: _guard(e, lambda e=e: _resolve_identity(work, e)) for e in entries if e.method in ("POST", "PUT", "PATCH")}
    _check_unique_targets(entries, resolved)
    substitutions = {
        e.full_url: f"{e.resource_type}/{resolved[e.index].id}"
        for e in entries
        if e.full_url and e.index in resolved and resolved[e.index].id
    }
    cache: dict[str, str] = {}
    for entry in ordered:
        if entry.method == "DELETE":
            continue
        if entry.resource is not None:
            entry.resource = _guard(entry, lambda e=entry: rewrite_references(work, e.resource, substitutions, cache))
        responses[entry.index] = _guard(entry, lambda e=entry: _execute(work, e, resolved.get(e.index), return_pref))
    return responses  # type: ignore[return-value]


def _guard(entry: EntryRequest, fn):
    """Run one step of an entry; name the entry in the error that aborts the transaction."""
    try:
        return fn()
    except FhirError as exc:
        exc.message = f"{entry.label} ({entry.method} {entry.url}): {exc.message}"
        for issue in exc.issues:
            object.__setattr__(issue, "diagnostics", f"{entry.label}: {issue.diagnostics}")
        raise


def _resolve_identity(work: Work, entry: EntryRequest) -> _Resolved:
    if entry.method == "POST":
        if entry.if_none_exist:
            matches = find_matches(work, entry.resource_type, type_level.parse_query(entry.if_none_exist))
            if len(matches) > 1:
                raise PreconditionFailed(f"ifNoneExist '{entry.if_none_exist}' matches more than one resource")
            if matches:
                return _Resolved(matches[0], existing=True)
        return _Resolved(new_id())
    if entry.id is not None:
        return _Resolved(entry.id)
    matches = find_matches(work, entry.resource_type, entry.query)
    if len(matches) > 1:
        raise PreconditionFailed(f"Conditional {entry.method} '{entry.url}' matches more than one resource")
    if matches:
        return _Resolved(matches[0])
    if entry.method == "PATCH":
        return _Resolved(None)
    body_id = (entry.resource or {}).get("id")
    return _Resolved(body_id if isinstance(body_id, str) else new_id())


def _check_unique_targets(entries: list[EntryRequest], resolved: dict[int, _Resolved]) -> None:
    """R4 http.html#trules: a transaction may not touch one resource twice, and each
    fullUrl names one entry (else references to it would be ambiguous)."""
    urls: dict[str, int] = {}
    for e in entries:
        if e.full_url and e.method != "GET":
            if e.full_url in urls:
                raise BadRequest(
                    f"Bundle.entry[{urls[e.full_url]}] and Bundle.entry[{e.index}] have the same fullUrl {e.full_url}",
                    expression=f"Bundle.entry[{e.index}].fullUrl",
                )
            urls[e.full_url] = e.index
    seen: dict[str, int] = {}
    for e in entries:
        if e.method == "DELETE" and e.id:
            key = f"{e.resource_type}/{e.id}"
        elif e.index in resolved and resolved[e.index].id and not resolved[e.index].existing:
            key = f"{e.resource_type}/{resolved[e.index].id}"
        else:
            continue
        if key in seen:
            raise BadRequest(
                f"Bundle.entry[{seen[key]}] and Bundle.entry[{e.index}] both write {key}",
                expression=f"Bundle.entry[{e.index}]",
            )
        seen[key] = e.index


def _execute(work: Work, entry: EntryRequest, target: _Resolved | None, return_pref: str) -> dict:
    t = entry.resource_type
    m = entry.method
    if m == "GET" or m == "HEAD":
        return _execute_read(work, entry)
    if m == "DELETE":
        if entry.id is not None:
            outcome = instance.delete(work, t, entry.id, if_match=entry.if_match)
        else:
            outcome = type_level.conditional_delete(work, t, _query_string(entry))
    elif m == "POST":
        if target is not None and target.existing:
            current = work.uow.current(t, target.id)
            outcome = WriteOutcome(200, current, orjson.loads(current.body))
        else:
            outcome = type_level.create(work, t, entry.resource, assigned_id=target.id if target else None)
    elif m == "PUT":
        resource = {**entry.resource, "id": target.id} if target and target.id and entry.id is None else entry.resource
        outcome = instance.update(work, t, target.id if target else entry.id, resource, if_match=entry.if_match)
    else:  # PATCH
        operations = _patch_operations(entry)
        if target is None or target.id is None:
            raise PreconditionFailed(f"No {t} matches the conditional PATCH {entry.url!r}")
        outcome = instance.patch(work, t, target.id, operations, if_match=entry.if_match)
    return _write_response(work, outcome, return_pref)


def _patch_operations(entry: EntryRequest) -> object:
    """A PATCH entry carries its JSON Patch as a Binary (R4 http.html#patch: 'in a Binary')."""
    resource = entry.resource or {}
    if resource.get("resourceType") == "Binary" and resource.get("data"):
        try:
            return orjson.loads(base64.b64decode(resource["data"]))
        except (ValueError, orjson.JSONDecodeError):
            raise BadRequest(f"{entry.label}: the Binary does not hold a JSON Patch document") from None
    raise BadRequest(f"{entry.label}: a PATCH entry needs a Binary resource holding the JSON Patch")


def _query_string(entry: EntryRequest) -> str:
    return urlencode(entry.query)


def _write_response(work: Work, outcome: WriteOutcome, return_pref: str) -> dict:
    response: dict = {"status": _STATUS.get(outcome.status, str(outcome.status))}
    v = outcome.version
    entry: dict = {}
    if v is not None and not v.deleted:
        entry["fullUrl"] = full_url(work.ctx.base_url, v)
        response["location"] = f"{v.resource_type}/{v.id}/_history/{v.version_id}"
        response["etag"] = etag(v)
        response["lastModified"] = v.last_updated
        if return_pref == "representation" and outcome.resource is not None:
            entry["resource"] = outcome.resource
    if outcome.message and return_pref == "OperationOutcome":
        response["outcome"] = {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "information", "code": "informational", "diagnostics": outcome.message}],
        }
    entry["response"] = response
    return entry


def _execute_read(work: Work, entry: EntryRequest) -> dict:
    base = work.ctx.base_url
    t = entry.resource_type
    if entry.history:
        rt = work.runtime
        request = history_mod.parse_history_params(
            t, entry.id, entry.query, default_count=rt.default_page_size, max_count=rt.max_page_size
        )
        page = history_mod.history(work, request)
        url = "/".join(p for p in (base, t, entry.id, "_history") if p)
        return {"resource": history_bundle(base, url, list(request.params), page), "response": {"status": "200 OK"}}
    if t is None:
        raise BadRequest(f"{entry.label}: GET {entry.url!r} is not supported inside a Bundle")
    if entry.id is None:
        found = search(work, plan_search(work, t, entry.query), entry.query)
        return {"resource": searchset_bundle(base, f"{base}/{t}", found), "response": {"status": "200 OK"}}
    if entry.version is not None:
        version = instance.vread(work, t, entry.id, entry.version)
    else:
        version = instance.read(work, t, entry.id)
    return {
        "fullUrl": full_url(base, version),
        "resource": orjson.Fragment(version.body),
        "response": {"status": "200 OK", "etag": etag(version), "lastModified": version.last_updated},
    }


def _run_batch_entry(runtime: Runtime, ctx: RequestContext, entry: EntryRequest, return_pref: str) -> dict:
    """One batch entry in its own unit of work; its failure is its own response."""
    try:
        with runtime.work(ctx, write=entry.method not in ("GET", "HEAD")) as work:
            target = _resolve_identity(work, entry) if entry.method in ("POST", "PUT", "PATCH") else None
            return _execute(work, entry, target, return_pref)
    except FhirError as exc:
        status = f"{exc.status} {_REASONS.get(exc.status, '')}".strip()
        return {"response": {"status": status, "outcome": exc.to_outcome()}}


_REASONS = {
    400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 410: "Gone",
    412: "Precondition Failed", 422: "Unprocessable Entity",
}
