"""$reindex and run-time SearchParameters.

A SearchParameter resource stored with status ``active`` is registered for new
writes (and unregistered when retired or deleted); ``$reindex`` then rebuilds
the index of what was stored before. At start-up the registry takes every
active SearchParameter already in the store.
"""

from __future__ import annotations

import orjson

from fhir_server.engine.context import RequestContext
from fhir_server.engine.hooks import HookPoint, WriteEvent
from fhir_server.engine.work import SEARCH_PARAMETERS, Runtime, stored_search_parameters
from fhir_server.errors import Forbidden, Unprocessable
from fhir_server.model import is_resource_type, resource_types
from fhir_server.search.expression import check_syntax, compile_expression
from fhir_server.search.extract import extract_index
from fhir_server.search.params import PARAM_TYPES
from fhir_server.search.registry import definition_from_resource

__all__ = ["reindex", "install_search_parameter_hook", "load_stored_search_parameters"]

BATCH = 500


def reindex(runtime: Runtime, ctx: RequestContext, resource_type: str | None) -> dict[str, int]:
    check_reindex_allowed(runtime, ctx)
    counts: dict[str, int] = {}
    for rtype in [resource_type] if resource_type else resource_types():
        after, done = None, 0
        while True:
            with runtime.store.unit_of_work(write=True) as uow:
                ids = uow.current_ids(rtype, after, BATCH)
                for version in uow.load(rtype, ids):
                    resource = orjson.loads(version.body)
                    uow.reindex(rtype, version.id, extract_index(runtime.sync_registry(uow), resource, ctx.base_url))
                    done += 1
            if len(ids) < BATCH:
                break
            after = ids[-1]
        counts[rtype] = done
    return counts


def _is_active(event: WriteEvent) -> bool:
    if event.resource is not None and event.resource.get("status") == "active":
        return True
    previous = event.previous
    return previous is not None and not previous.deleted and orjson.loads(previous.body).get("status") == "active"


def _check_allowed(event: WriteEvent) -> None:
    """With runtime SearchParameters switched off, a client may not store, change or
    remove an active one (that reconfigures every search); drafts stay writable."""
    work = event.work
    caller = work.ctx.caller
    if caller is not None and caller.role != "admin" and _is_active(event):
        raise Forbidden("Only the admin role may store, change or delete an active SearchParameter "
                        "(runtime configuration)", expression="SearchParameter.status")
    if work.ctx.from_client and not work.runtime.allow_runtime_search_parameters and _is_active(event):
        raise Forbidden(
            "Runtime SearchParameters are switched off on this server (EVI_ALLOW_RUNTIME_SEARCHPARAMETERS=false): "
            "an active SearchParameter cannot be stored, changed or deleted through the API",
            expression="SearchParameter.status",
        )


def check_reindex_allowed(runtime: Runtime, ctx: RequestContext) -> None:
    if ctx.caller is not None and ctx.caller.role != "admin":
        raise Forbidden("Only the admin role may run $reindex (runtime configuration)")
    if ctx.from_client and not runtime.allow_runtime_search_parameters:
        raise Forbidden("$reindex is switched off on this server (EVI_ALLOW_RUNTIME_SEARCHPARAMETERS=false)")


def install_search_parameter_hook(runtime: Runtime) -> None:
    def before_commit(event: WriteEvent) -> None:
        """An active SearchParameter must be usable: its type known, its expression compilable.
        Every write of one raises the store's counter, so every server process on the
        database rebuilds its registry on its next request (``Runtime.sync_registry``)."""
        if event.resource_type != "SearchParameter":
            return
        _check_allowed(event)
        event.work.uow.bump(SEARCH_PARAMETERS)
        if event.resource is None or event.resource.get("status") != "active":
            return
        definition = definition_from_resource(event.resource)
        if definition is None:
            raise Unprocessable("An active SearchParameter needs url, code, type and base", expression="SearchParameter")
        if definition.type not in PARAM_TYPES:
            raise Unprocessable(f"Search parameter type '{definition.type}' is not supported", expression="SearchParameter.type")
        bad = [b for b in definition.base if not is_resource_type(b) and b not in ("Resource", "DomainResource")]
        if bad:
            raise Unprocessable(f"Unknown base resource types: {', '.join(bad)}", expression="SearchParameter.base")
        if definition.type != "composite":
            if not definition.expression:
                raise Unprocessable("An active SearchParameter needs an expression", expression="SearchParameter.expression")
            try:
                check_syntax(definition.expression)
                evaluate = compile_expression(definition.expression)
                for base in definition.base:  # arity and function errors show on evaluation
                    evaluate({"resourceType": base, "id": "x"})
            except Exception as exc:  # noqa: BLE001 - fhirpathpy raises many kinds
                raise Unprocessable(
                    f"The expression does not compile as FHIRPath: {exc}", expression="SearchParameter.expression"
                ) from None

    def after_commit(event: WriteEvent) -> None:
        if event.resource_type == "SearchParameter":
            runtime.registry_changed()

    runtime.hooks.register(HookPoint.BEFORE_COMMIT, before_commit)
    runtime.hooks.register(HookPoint.AFTER_COMMIT, after_commit)


def load_stored_search_parameters(runtime: Runtime) -> int:
    """Build the registry with the store's active SearchParameters (at start-up)."""
    runtime.registry_changed()
    with runtime.store.unit_of_work(write=False) as uow:
        runtime.sync_registry(uow)
        return len(stored_search_parameters(uow))
