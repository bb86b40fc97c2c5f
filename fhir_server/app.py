"""create_app(settings) -> FastAPI: wiring only."""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import datetime, timezone

from fastapi import FastAPI

from fhir_server.api import build_routes, install_error_handlers, operations, system_interactions, type_interactions
from fhir_server.conformance import build_capability_statement, ig_directory, ig_search_parameters
from fhir_server.engine import Runtime, install_search_parameter_hook, load_stored_search_parameters
from fhir_server.engine.profiles import install_profile_enforcement
from fhir_server.engine.guide import install_implementation_guide, supported_profiles
from fhir_server.model import format_instant
from fhir_server.search import SearchRegistry
from fhir_server.settings import Settings
from fhir_server.storage import open_store

__all__ = ["create_app", "build_runtime"]


def build_runtime(settings: Settings) -> Runtime:
    """Store, search registry (spec + the guide's + stored SearchParameters) and the engine's own hooks."""
    runtime = Runtime(
        store=open_store(settings.storage),
        registry=SearchRegistry.from_spec(extra=ig_search_parameters(ig_directory(settings.profiles_dir))),
        default_page_size=settings.default_page_size,
        max_page_size=settings.max_page_size,
        profiles_dir=settings.profiles_dir,
    )
    install_search_parameter_hook(runtime)
    if settings.enforce_profiles:
        install_profile_enforcement(runtime, tuple(settings.required_profiles))
    load_stored_search_parameters(runtime)
    install_implementation_guide(runtime, ig_directory(settings.profiles_dir), base_url=settings.public_base)
    return runtime


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = build_runtime(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        runtime.store.close()

    app = FastAPI(title="evi-fhir", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.runtime = runtime
    app.state.capability_statement = build_capability_statement(
        settings.public_base,
        runtime.registry,
        type_interactions(),
        system_interactions(),
        operations(),
        date=format_instant(datetime.now(timezone.utc)),
        supported_profiles=supported_profiles(ig_directory(settings.profiles_dir)),
    )
    install_error_handlers(app)
    app.router.routes.extend(build_routes("/fhir"))
    return app
