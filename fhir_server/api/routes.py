"""Routes per interaction level. Each route names its FHIR interaction or operation,
and those lists are what the CapabilityStatement is generated from.

Routes are plain Starlette routes: FastAPI's APIRoute (dependency solving, two
passes of matching) cost a third of the server time of a create (measured with
benchmarks/rest_core.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import Route as StarletteRoute

from fhir_server.api.interactions import (
    capabilities,
    create,
    delete,
    history,
    patch,
    read,
    search_type,
    transaction,
    update,
)
from fhir_server.api.operations import everything, reindex, validate
from fhir_server.api.operations import expand, lookup, triage, validate_code
from fhir_server.engine import run_follow_ups

__all__ = ["Route", "ROUTES", "build_routes", "type_interactions", "system_interactions", "operations"]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    endpoint: object
    #: the CapabilityStatement interaction code (None: not a listed interaction)
    interaction: str | None
    level: str  # system, type, instance
    #: an operation's name (CapabilityStatement rest.operation / resource.operation)
    operation: str | None = None


# order matters: literal segments (metadata, _history, _search, $op) before {id}
ROUTES: tuple[Route, ...] = (
    Route("GET", "/metadata", capabilities.capabilities, None, "system"),
    Route("POST", "", transaction.transaction, "transaction", "system"),
    Route("POST", "/", transaction.transaction, "batch", "system"),
    Route("GET", "", search_type.search_system, "search-system", "system"),
    Route("GET", "/", search_type.search_system, None, "system"),
    Route("POST", "/_search", search_type.search_system_post, None, "system"),
    Route("GET", "/_history", history.history_system, "history-system", "system"),
    Route("POST", "/$reindex", reindex.reindex_system, None, "system", "reindex"),
    Route("GET", "/{resource_type}/_history", history.history_type, "history-type", "type"),
    Route("POST", "/{resource_type}/_search", search_type.search_type_post, None, "type"),
    Route("POST", "/{resource_type}/$reindex", reindex.reindex_type, None, "type", "reindex"),
    # terminology: literal types before /{resource_type}/{id}, which would take "$expand" for an id
    Route("GET", "/ValueSet/$expand", expand.expand, None, "type", "expand"),
    Route("POST", "/ValueSet/$expand", expand.expand, None, "type", "expand"),
    Route("GET", "/ValueSet/$validate-code", validate_code.value_set, None, "type", "validate-code"),
    Route("POST", "/ValueSet/$validate-code", validate_code.value_set, None, "type", "validate-code"),
    Route("GET", "/CodeSystem/$validate-code", validate_code.code_system, None, "type", "validate-code"),
    Route("POST", "/CodeSystem/$validate-code", validate_code.code_system, None, "type", "validate-code"),
    Route("GET", "/CodeSystem/$lookup", lookup.lookup, None, "type", "lookup"),
    Route("POST", "/CodeSystem/$lookup", lookup.lookup, None, "type", "lookup"),
    # EVI's workflow operations on intake Tasks
    Route("GET", "/Task/$triage-queue", triage.triage_queue, None, "type", "triage-queue"),
    Route("POST", "/Task/{id}/$triage", triage.triage, None, "instance", "triage"),
    Route("POST", "/{resource_type}/$validate", validate.validate_type, None, "type", "validate"),
    Route("GET", "/{resource_type}", search_type.search_type, "search-type", "type"),
    Route("POST", "/{resource_type}", create.create, "create", "type"),
    Route("PUT", "/{resource_type}", update.conditional_update, None, "type"),
    Route("PATCH", "/{resource_type}", patch.conditional_patch, None, "type"),
    Route("DELETE", "/{resource_type}", delete.conditional_delete, None, "type"),
    Route("GET", "/{resource_type}/{id}/_history/{vid}", read.vread, "vread", "instance"),
    Route("GET", "/{resource_type}/{id}/_history", history.history_instance, "history-instance", "instance"),
    Route("GET", "/{resource_type}/{id}/$everything", everything.everything, None, "instance", "everything"),
    Route("POST", "/{resource_type}/{id}/$validate", validate.validate_instance, None, "instance", "validate"),
    Route("GET", "/{resource_type}/{id}/$validate", validate.validate_instance, None, "instance", "validate"),
    # before the compartment search, which would take "$expand" for a resource type
    Route("GET", "/ValueSet/{id}/$expand", expand.expand_instance, None, "instance", "expand"),
    Route("POST", "/ValueSet/{id}/$expand", expand.expand_instance, None, "instance", "expand"),
    Route("GET", "/ValueSet/{id}/$validate-code", validate_code.value_set_instance, None, "instance", "validate-code"),
    Route("POST", "/ValueSet/{id}/$validate-code", validate_code.value_set_instance, None, "instance", "validate-code"),
    Route("GET", "/CodeSystem/{id}/$validate-code", validate_code.code_system_instance, None, "instance", "validate-code"),
    Route("POST", "/CodeSystem/{id}/$validate-code", validate_code.code_system_instance, None, "instance", "validate-code"),
    Route("GET", "/{compartment_type}/{compartment_id}/{resource_type}", search_type.search_compartment, None, "instance"),
    Route("GET", "/{resource_type}/{id}", read.read, "read", "instance"),
    Route("PUT", "/{resource_type}/{id}", update.update, "update", "instance"),
    Route("PATCH", "/{resource_type}/{id}", patch.patch, "patch", "instance"),
    Route("DELETE", "/{resource_type}/{id}", delete.delete, "delete", "instance"),
)


def _endpoint(handler):
    async def endpoint(request: Request):
        response = await handler(request, **request.path_params)
        follow_ups = getattr(request.state, "follow_ups", None)
        if follow_ups:  # committed writes' follow-ups, before the client hears back
            await run_in_threadpool(run_follow_ups, follow_ups)
        return response

    endpoint.__name__ = getattr(handler, "__name__", "endpoint")
    return endpoint


def build_routes(prefix: str) -> list[StarletteRoute]:
    return [StarletteRoute(prefix + r.path, _endpoint(r.endpoint), methods=[r.method]) for r in ROUTES]


def type_interactions() -> list[str]:
    return [r.interaction for r in ROUTES if r.level in ("type", "instance") and r.interaction]


def system_interactions() -> list[str]:
    return [r.interaction for r in ROUTES if r.level == "system" and r.interaction]


def operations() -> list[tuple[str, str]]:
    """(operation name, level) pairs."""
    return list(dict.fromkeys((r.operation, r.level) for r in ROUTES if r.operation))
