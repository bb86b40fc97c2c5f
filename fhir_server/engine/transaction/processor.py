"""Batch and transaction Bundles through the one write pipeline.

transaction: one unit of work; DELETEs first, then every other write's target is
resolved, references rewritten, and the writes run in the spec's order (POST, PUT/PATCH);
then the unit of work's deferred rules, then the GETs (R4 http.html#trules). Any failure
rolls everything back. batch: every entry in a unit of work of its own; a failure is that
entry's response. Response entries are built from what the unit of work committed
(``bundles.write_entry``), so a version a server rule wrote after the entry shows.
"""

from __future__ import annotations

from fhir_server.engine.audit import logged_step, step_access
from fhir_server.engine.bundles import error_entry, write_entry
from fhir_server.engine.conditional import Target
from fhir_server.engine.context import RequestContext
from fhir_server.engine.transaction.entries import METHOD_ORDER, EntryRequest, parse_entries
from fhir_server.engine.transaction.execute import WRITES, execute_read, execute_write, resolve
from fhir_server.engine.transaction.references import rewrite_references
from fhir_server.engine.work import Runtime, Work
from fhir_server.engine.write import WriteOutcome
from fhir_server.errors import BadRequest, FhirError, PayloadTooLarge
from fhir_server.model import validate_resource

__all__ = ["process_bundle"]


def process_bundle(runtime: Runtime, ctx: RequestContext, bundle: dict, *, return_pref: str = "representation") -> dict:
    if bundle.get("resourceType") != "Bundle":
        raise BadRequest("POST to the base expects a Bundle", expression="resourceType")
    kind = bundle.get("type")
    if kind not in ("transaction", "batch"):
        raise BadRequest(f"Bundle.type must be transaction or batch, got {kind!r}", expression="Bundle.type")
    if ctx.audit is not None:  # the PDL log names what the Bundle is, whatever the URL
        ctx.audit.interaction = kind
    _check_size(bundle, runtime.max_bundle_entries)
    _validate_skeleton(bundle)
    entries = parse_entries(bundle, ctx.base_url)
    if kind == "transaction":
        with runtime.work(ctx, write=True) as work:
            responses = _run_transaction(work, entries, return_pref)
    else:
        responses = [_run_batch_entry(runtime, ctx, e, return_pref) for e in entries]
    return {"resourceType": "Bundle", "type": f"{kind}-response", "entry": responses}


def _check_size(bundle: dict, limit: int) -> None:
    """Before anything runs (or is even validated): a Bundle past the limit is refused whole."""
    entries = bundle.get("entry")
    if isinstance(entries, list) and len(entries) > limit:
        raise PayloadTooLarge(
            f"The Bundle has {len(entries)} entries; this server takes at most {limit} per batch or "
            "transaction (EVI_MAX_BUNDLE_ENTRIES): split it",
            expression="Bundle.entry",
        )


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
    results: dict[int, WriteOutcome | dict] = {}
    ordered = sorted(entries, key=lambda e: METHOD_ORDER[e.method])
    for entry in ordered:
        if entry.method == "DELETE":
            results[entry.index] = _guard(work, entry, lambda e=entry: execute_write(work, e, resolve(work, e)))
    targets = {e.index: _guard(work, e, lambda e=e: resolve(work, e), last=False) for e in entries if e.method in WRITES}
    _check_unique_targets(entries, targets)
    substitutions = {
        e.full_url: f"{e.resource_type}/{targets[e.index].id}"
        for e in entries
        if e.full_url and e.index in targets and targets[e.index].id
    }
    cache: dict[str, str] = {}
    for entry in ordered:
        if entry.index not in targets:
            continue
        if entry.resource is not None:
            entry.resource = _guard(work, entry, lambda e=entry: rewrite_references(work, e.resource, substitutions, cache),
                                    last=False)
        results[entry.index] = _guard(work, entry, lambda e=entry: execute_write(work, e, targets[e.index]))
    work.run_before_commit()  # the server rules' deferred runs: the GETs and the answer see their writes
    for entry in ordered:
        if entry.index not in results:
            results[entry.index] = _guard(work, entry, lambda e=entry: execute_read(work, e))
    return [_response(work.ctx.base_url, results[e.index], return_pref) for e in entries]


def _response(base: str, result: WriteOutcome | dict, return_pref: str) -> dict:
    return write_entry(base, result, return_pref) if isinstance(result, WriteOutcome) else result


def _logged(ctx: RequestContext, entry: EntryRequest, last: bool = True):
    """The PDL log's view of one entry (``engine.audit.logged_step``)."""
    fallback = step_access(entry.method, entry.resource_type, entry.id, entry.url,
                           version=entry.version, history=entry.history) if ctx.audit is not None else None
    return logged_step(ctx.audit, entry.url, fallback, last=last)


def _guard(work: Work, entry: EntryRequest, fn, *, last: bool = True):
    """Run one step of an entry; name the entry in the error that aborts the transaction."""
    try:
        with _logged(work.ctx, entry, last):
            return fn()
    except FhirError as exc:
        exc.message = f"{entry.label} ({entry.method} {entry.url}): {exc.message}"
        for issue in exc.issues:
            object.__setattr__(issue, "diagnostics", f"{entry.label}: {issue.diagnostics}")
        raise


def _check_unique_targets(entries: list[EntryRequest], targets: dict[int, Target]) -> None:
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
        target = targets.get(e.index)
        if e.method == "DELETE" and e.id:
            key = f"{e.resource_type}/{e.id}"
        elif target is not None and target.id and target.action != "existing":
            key = f"{e.resource_type}/{target.id}"
        else:
            continue
        if key in seen:
            raise BadRequest(
                f"Bundle.entry[{seen[key]}] and Bundle.entry[{e.index}] both write {key}",
                expression=f"Bundle.entry[{e.index}]",
            )
        seen[key] = e.index


def _run_batch_entry(runtime: Runtime, ctx: RequestContext, entry: EntryRequest, return_pref: str) -> dict:
    """One batch entry in its own unit of work; its failure is its own response."""
    try:
        with _logged(ctx, entry):
            with runtime.work(ctx, write=entry.method not in ("GET", "HEAD")) as work:
                if entry.method in ("GET", "HEAD"):
                    return execute_read(work, entry)
                outcome = execute_write(work, entry, resolve(work, entry))
        # the unit of work has run its deferred rules and committed: the answer is final
        return write_entry(ctx.base_url, outcome, return_pref)
    except FhirError as exc:
        return error_entry(exc)
