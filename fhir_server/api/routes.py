"""Routers per interaction level. Each route names its FHIR interaction, and that
list is what the CapabilityStatement is generated from."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter

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

__all__ = ["Route", "ROUTES", "build_router", "type_interactions", "system_interactions"]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    endpoint: object
    #: the CapabilityStatement interaction code (None: not a listed interaction)
    interaction: str | None
    level: str  # system, type, instance


# order matters: literal segments (metadata, _history, _search) before {id}
ROUTES: tuple[Route, ...] = (
    Route("GET", "/metadata", capabilities.capabilities, None, "system"),
    Route("POST", "", transaction.transaction, "transaction", "system"),
    Route("POST", "/", transaction.transaction, "batch", "system"),
    Route("GET", "/_history", history.history_system, "history-system", "system"),
    Route("GET", "/{resource_type}/_history", history.history_type, "history-type", "type"),
    Route("POST", "/{resource_type}/_search", search_type.search_type_post, None, "type"),
    Route("GET", "/{resource_type}", search_type.search_type, "search-type", "type"),
    Route("POST", "/{resource_type}", create.create, "create", "type"),
    Route("PUT", "/{resource_type}", update.conditional_update, None, "type"),
    Route("PATCH", "/{resource_type}", patch.conditional_patch, None, "type"),
    Route("DELETE", "/{resource_type}", delete.conditional_delete, None, "type"),
    Route("GET", "/{resource_type}/{id}/_history/{vid}", read.vread, "vread", "instance"),
    Route("GET", "/{resource_type}/{id}/_history", history.history_instance, "history-instance", "instance"),
    Route("GET", "/{resource_type}/{id}", read.read, "read", "instance"),
    Route("PUT", "/{resource_type}/{id}", update.update, "update", "instance"),
    Route("PATCH", "/{resource_type}/{id}", patch.patch, "patch", "instance"),
    Route("DELETE", "/{resource_type}/{id}", delete.delete, "delete", "instance"),
)


def build_router() -> APIRouter:
    router = APIRouter()
    for route in ROUTES:
        router.add_api_route(route.path, route.endpoint, methods=[route.method], include_in_schema=False)
    return router


def type_interactions() -> list[str]:
    return [r.interaction for r in ROUTES if r.level in ("type", "instance") and r.interaction]


def system_interactions() -> list[str]:
    return [r.interaction for r in ROUTES if r.level == "system" and r.interaction]
