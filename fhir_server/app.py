"""create_app(settings) -> FastAPI: wiring only."""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import datetime, timezone

from fastapi import FastAPI

from fhir_server.api import build_router, install_error_handlers, system_interactions, type_interactions
from fhir_server.conformance import build_capability_statement
from fhir_server.engine import Runtime
from fhir_server.model import format_instant
from fhir_server.search import SearchRegistry
from fhir_server.settings import Settings
from fhir_server.storage import open_store

__all__ = ["create_app", "INDEXED_PARAMETERS"]

#: what the REST core indexes; the search engine widens this
INDEXED_PARAMETERS = frozenset({"identifier"})


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    registry = SearchRegistry.from_spec(INDEXED_PARAMETERS)
    runtime = Runtime(
        store=open_store(settings.storage),
        registry=registry,
        default_page_size=settings.default_page_size,
        max_page_size=settings.max_page_size,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        runtime.store.close()

    app = FastAPI(title="evi-fhir", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.runtime = runtime
    app.state.capability_statement = build_capability_statement(
        settings.public_base,
        registry,
        type_interactions(),
        system_interactions(),
        date=format_instant(datetime.now(timezone.utc)),
    )
    install_error_handlers(app)
    app.include_router(build_router(), prefix="/fhir")
    return app
