"""create_app(settings) -> FastAPI: wiring only."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timezone

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from fhir_server.api import (
    MOUNT,
    Answers,
    Workers,
    build_routes,
    install_error_handlers,
    operations,
    system_interactions,
    trailing_slash_redirect,
    type_interactions,
)
from fhir_server.api.access_log import install_access_log_filter
from fhir_server.audit import AuditWriter, ServerIdentity, seal_record
from fhir_server.conformance import build_capability_statement, ig_directory, ig_search_parameters
from fhir_server.engine import DisclosureRecorder, ExportAccessRecorder, Runtime, install_search_parameter_hook, load_stored_search_parameters
from fhir_server.engine.capabilities import Capabilities
from fhir_server.engine.profiles import install_profile_enforcement
from fhir_server.engine.guide import install_implementation_guide, supported_profiles
from fhir_server.model import format_instant
from fhir_server.reporting import BulkExport, ExportWorker, export_options
from fhir_server.notify import DeliveryPolicy, Notifier, install_notify, no_disclosure_log, topic_canonicals
from fhir_server.search import SearchLimits, SearchRegistry
from fhir_server.security import TOKEN_PATH, build_authentication
from fhir_server.security.policy import load_policy
from fhir_server.settings import Settings
from fhir_server.storage import Store, open_store
from fhir_server.ui import build_dashboard, ui_routes
from fhir_server.workflow import Region, install_workflow, load_region

__all__ = ["create_app", "build_runtime", "build_notifier", "region_of", "uvicorn_options"]


def uvicorn_options(settings: Settings) -> dict:
    """How uvicorn must run the app: no ``server`` banner, and the proxy's forwarded
    scheme and client address believed only with ``EVI_TRUST_PROXY`` (uvicorn otherwise
    believes any loopback peer)."""
    options: dict = {"server_header": False, "proxy_headers": settings.trust_proxy}
    if settings.trust_proxy:
        options["forwarded_allow_ips"] = "*"
    return options


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
    guide_parameters = ig_search_parameters(ig_directory(settings.profiles_dir))
    runtime = Runtime(
        store=store if store is not None else open_store(settings.storage),
        registry=SearchRegistry.from_spec(extra=guide_parameters),
        default_page_size=settings.default_page_size,
        max_page_size=settings.max_page_size,
        max_bundle_entries=settings.max_bundle_entries,
        max_json_depth=settings.max_json_depth,
        search_limits=SearchLimits(
            max_or_values=settings.max_or_values,
            max_parameters=settings.max_search_parameters,
            max_offset=settings.max_search_offset,
        ),
        profiles_dir=settings.profiles_dir,
        allow_runtime_search_parameters=settings.allow_runtime_searchparameters,
        registry_factory=lambda: SearchRegistry.from_spec(extra=guide_parameters),
        policy=load_policy(settings.access_policy),
    )
    runtime.policy.check(runtime.registry)  # a criterion the server cannot run stops the start
    install_search_parameter_hook(runtime)
    if settings.enforce_profiles:
        install_profile_enforcement(runtime, (*settings.required_profiles, *region.required_profiles))
    load_stored_search_parameters(runtime)
    install_implementation_guide(runtime, ig_directory(settings.profiles_dir), base_url=settings.public_base)
    install_workflow(runtime, region)
    install_notify(runtime, region.relay)
    return runtime


def build_notifier(settings: Settings, runtime: Runtime, authentication=None, audit_writer=None) -> Notifier:
    """The delivery worker of this process (not started): retries as the settings say, the
    registered clients (auth on) to stop Subscriptions whose client is gone, and every
    attempt that carried patient data in the PDL log (``audit_writer``; None: log off)."""
    on_disclosure = None
    if audit_writer is not None:
        on_disclosure = DisclosureRecorder(audit_writer, runtime, settings.public_base, auth_on=authentication is not None)
    policy = DeliveryPolicy(
        retry_hours=settings.notify_retry_hours, first_retry=settings.notify_retry_first_seconds,
        max_retry=max(settings.notify_retry_max_seconds, settings.notify_retry_first_seconds),
        senders=settings.notify_senders,
    )
    registered = None
    if authentication is not None:
        clients = authentication.clients
        registered = lambda client_id: (c.role if (c := clients.get(client_id)) is not None else None)  # noqa: E731
    state = runtime.services["notify"]
    notifier = Notifier(runtime, settings.public_base, policy, state.relays, registered=registered,
                        on_disclosure=on_disclosure or no_disclosure_log)
    state.bell.attach(notifier.wake)
    return notifier


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    install_access_log_filter()  # no query string (a personnummer, say) in the access log
    runtime = build_runtime(settings)
    try:
        authentication = build_authentication(settings, runtime.store.replay)
    except BaseException:
        runtime.store.close()
        raise

    exports = BulkExport(runtime, export_options(settings))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        worker = ExportWorker(exports)  # this process's export jobs (and any whose process died)
        worker.start()
        notifier = (build_notifier(settings, runtime, authentication, app.state.audit_writer).start()
                    if settings.notify_deliver else None)
        app.state.notifier = notifier
        yield
        app.state.workers.shutdown()  # requests under way finish before the store closes
        if notifier is not None:
            notifier.stop()
        if app.state.audit_writer is not None:
            app.state.audit_writer.close()  # what is pending is stored first
        worker.stop()  # the running job stops at its next step and releases its lease
        runtime.store.close()

    # FastAPI's own OpenTelemetry spans are off: they would carry every request's URL and
    # query (a personnummer in a search) to whatever exporter the environment configures,
    # and asking whether a provider is configured cost every request ~10 µs (a twentieth
    # of a read)
    app = FastAPI(title="evi-fhir", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None,
                  telemetry={"tracing": False, "metrics": False, "logs": False})
    app.state.settings = settings
    app.state.runtime = runtime
    #: None with auth off (EVI_AUTH=off)
    app.state.authentication = authentication
    app.state.workers = Workers(settings.read_workers, settings.write_workers)
    #: the PDL log's group-commit writer, one per process (None with EVI_AUDIT=off)
    app.state.audit_writer = (
        AuditWriter(runtime.store.audit, ServerIdentity(settings.public_base), auth_on=authentication is not None)
        if settings.audit else None
    )
    if app.state.audit_writer is None:  # answered before the log was turned off: still belongs in it
        runtime.store.audit.recover(seal_record)
    else:  # the children each export job writes out, in the PDL log
        exports.access_log = ExportAccessRecorder(app.state.audit_writer, runtime, auth_on=authentication is not None)
    app.state.exports = exports
    profiles = supported_profiles(ig_directory(settings.profiles_dir))
    app.state.capabilities = Capabilities(
        lambda base, registry: build_capability_statement(
            base, registry, type_interactions(), system_interactions(), operations(),
            date=app.state.capabilities.date, supported_profiles=profiles,
            token_path=TOKEN_PATH if authentication is not None else None, subscription_topics=topic_canonicals(),
        ),
        date=format_instant(datetime.now(timezone.utc)),
    )
    install_error_handlers(app)
    app.router.routes.extend(build_routes(MOUNT))
    app.state.dashboard = build_dashboard(settings, authentication)
    app.router.routes.extend(ui_routes())
    app.router.redirect_slashes = False
    app.router.default = trailing_slash_redirect(app.router, frozenset({MOUNT + "/"}))
    # outermost last: CORS (answers preflights), then security headers and gzip on
    # every answer, then the catch-all that turns an unexpected error into a 500
    app.add_middleware(Answers)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Accept", "If-Match", "If-None-Match",
                           "If-None-Exist", "If-Modified-Since", "Prefer", "X-Request-Id"],
            expose_headers=["ETag", "Location", "Last-Modified", "Content-Location", "X-Progress", "X-Request-Id"],
            max_age=600,
        )
    return app
