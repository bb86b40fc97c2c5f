"""create_app(settings) -> FastAPI: wiring only."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timezone

from fastapi import FastAPI

from fhir_server.api import build_routes, install_error_handlers, operations, system_interactions, type_interactions
from fhir_server.conformance import build_capability_statement, ig_directory, ig_search_parameters
from fhir_server.engine import Runtime, install_search_parameter_hook, load_stored_search_parameters
from fhir_server.engine.profiles import install_profile_enforcement
from fhir_server.engine.guide import install_implementation_guide, supported_profiles
from fhir_server.model import format_instant
from fhir_server.search import SearchLimits, SearchRegistry
from fhir_server.settings import Settings
from fhir_server.storage import Store, open_store
from fhir_server.workflow import Region, install_workflow, load_region

__all__ = ["create_app", "build_runtime", "region_of"]


def region_of(settings: Settings) -> Region:
    """The region file's configuration, with the environment's upstream URL on top."""
    region = load_region(settings.region_file) if settings.region_file else Region()
    if settings.upstream_fhir_url:
        region = replace(region, upstream_fhir_url=settings.upstream_fhir_url)
    return region


def build_runtime(settings: Settings, store: Store | None = None) -> Runtime:
    """Store (``settings.storage``, or one given), search registry (spec + the guide's +
    stored SearchParameters), the engine's own hooks and the region's workflow rules."""
    region = region_of(settings)
    runtime = Runtime(
        store=store if store is not None else open_store(settings.storage),
        registry=SearchRegistry.from_spec(extra=ig_search_parameters(ig_directory(settings.profiles_dir))),
        default_page_size=settings.default_page_size,
        max_page_size=settings.max_page_size,
        search_limits=SearchLimits(
            max_or_values=settings.max_or_values,
            max_parameters=settings.max_search_parameters,
            max_offset=settings.max_search_offset,
        ),
        profiles_dir=settings.profiles_dir,
    )
    install_search_parameter_hook(runtime)
    if settings.enforce_profiles:
        install_profile_enforcement(runtime, (*settings.required_profiles, *region.required_profiles))
    load_stored_search_parameters(runtime)
    install_implementation_guide(runtime, ig_directory(settings.profiles_dir), base_url=settings.public_base)
    install_workflow(runtime, region)
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
