"""The dashboard's routes under ``/ui`` (domain.md §9), served by the same process as
the FHIR API.

Every page runs like a FHIR request: a time and size budget, then (auth on) the
signed-in person's access token made into a Caller by ``security`` exactly as a bearer
token on the API, then the page's reads in a reader thread through the engine with that
caller's RequestContext. A page without a sign-in (auth on) sends the browser to
``logga-in``; with auth off (loopback only, ``serve`` refuses otherwise) it is open.
Errors a visitor can cause are Swedish HTML pages with the error's status code.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from fhir_server.api import MOUNT, audit
from fhir_server.api.authentication import authentication_of, organization_lookup
from fhir_server.api.deps import base_of, context_of, settings_of, state_of
from fhir_server.api.workers import workers_of
from fhir_server.engine import Budget, RequestContext
from fhir_server.errors import BadRequest, FhirError, Unauthorized
from fhir_server.security import Authentication
from fhir_server.settings import Settings
from fhir_server.ui.labels import Labels
from fhir_server.ui.login import Discovery
from fhir_server.ui.pages import STATIC, Pages
from fhir_server.ui.session import SESSION_COOKIE, SessionCookies, cookie_header, is_loopback_http

__all__ = ["UI_PATH", "Dashboard", "View", "build_dashboard", "ui_routes", "page"]

log = logging.getLogger(__name__)

UI_PATH = "/ui"
_STATIC_TYPES = {"css": "text/css; charset=utf-8", "png": "image/png", "svg": "image/svg+xml"}


@dataclass(frozen=True)
class Dashboard:
    """What the dashboard needs for its whole life (``app.state.dashboard``); immutable."""

    settings: Settings
    pages: Pages
    labels: Labels
    #: None with auth off
    cookies: SessionCookies | None
    #: the provider's endpoints; None with auth off or without ``EVI_OIDC_ISSUER``
    discovery: Discovery | None
    #: the reporting functions the measures and SKR pages use (``measures.Reports``);
    #: None: those pages say the server cannot compute them
    reports: object | None = None


def build_dashboard(settings: Settings, authentication: Authentication | None) -> Dashboard:
    from fhir_server.ui.measures import reporting_engine  # the page module builds on this one

    cookies = discovery = None
    if authentication is not None:
        cookies = SessionCookies(authentication.tokens.derived_key("evi-fhir dashboard session"))
        if settings.oidc_issuer:
            discovery = Discovery(settings.oidc_issuer)
    return Dashboard(settings, Pages(), Labels(settings.profiles_dir), cookies, discovery, reporting_engine(settings))


def dashboard_of(request: Request) -> Dashboard:
    return request.app.state.dashboard


@dataclass(frozen=True)
class View:
    """What a page handler gets, in its worker thread."""

    request: Request
    ctx: RequestContext
    dashboard: Dashboard
    #: the dashboard's own URL (``https://host/prefix/ui``) and path (``/prefix/ui``)
    url: str
    path: str
    #: the signed-in person's name (None with auth off)
    person: str | None

    @property
    def runtime(self):
        return self.request.app.state.runtime

    @property
    def query(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for name, value in self.request.query_params.multi_items():
            if name in found:
                raise BadRequest(f"{name} får bara anges en gång", expression=name)
            found[name] = value
        return found

    def render(self, template: str, title: str, section: str, status: int = 200, **values) -> Response:
        return self.dashboard.pages.render(
            template, status, title=title, section=section, ui=self.path, person=self.person, **values)


def ui_url(request: Request) -> str:
    """The dashboard's public URL, beside the FHIR API's (same host, scheme and prefix)."""
    return base_of(request).removesuffix(MOUNT) + UI_PATH


def _error(view_values: dict, dashboard: Dashboard, exc: FhirError) -> Response:
    message = exc.message if exc.status < 500 else "Servern kunde inte svara just nu. Försök igen om en stund."
    return dashboard.pages.render("error.html", exc.status, title="Det gick inte", section="", message=message,
                                  **view_values)


def _login_redirect(request: Request, path: str) -> Response:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = RedirectResponse(f"{path}/logga-in?{urlencode({'next': here})}", status_code=303)
    # an ended sign-in's cookie is of no further use
    if request.cookies.get(SESSION_COOKIE):
        response.headers.append("Set-Cookie", cookie_header(SESSION_COOKIE, "", path=path, max_age=0,
                                                            secure=not is_loopback_http(ui_url(request))))
    return response


async def _caller(request: Request, authentication: Authentication, dashboard: Dashboard):
    """(caller, person's name) of the sign-in, or None when there is none (or it ended)."""
    signed = dashboard.cookies.signed_in(request.cookies.get(SESSION_COOKIE))
    if signed is None:
        return None
    authenticate = functools.partial(authentication.authenticate, wait=True)
    try:
        caller = await workers_of(request).run(
            False, authenticate, f"Bearer {signed.access_token}", organization_lookup(request))
    except Unauthorized:
        return None
    return caller, signed.name


@dataclass(frozen=True)
class _PageAccess:
    """What ``api.audit`` needs of a route: a page reads and searches (interaction
    ``search-type``, the page's address as the query); the engine names each access."""

    path: str
    audit: str = "search-type"
    operation: str | None = None


def page(handler):
    """A dashboard page: ``handler(view) -> Response`` runs in a reader thread."""

    async def endpoint(request: Request) -> Response:
        settings, dashboard = settings_of(request), dashboard_of(request)
        state = state_of(request)
        state["budget"] = Budget.for_request(settings.request_timeout, settings.max_response_entries)
        url = ui_url(request)
        path = urlsplit(url).path
        person = None
        try:
            authentication = authentication_of(request)
            if authentication is not None:
                found = await _caller(request, authentication, dashboard)
                if found is None:
                    return _login_redirect(request, path)
                state["caller"], person = found
            # a page that shows a child's data is an access like any other (domain.md §6, §9):
            # the engine records what the page reads, logged before the page leaves
            route = _PageAccess(request.url.path.replace("{", "").replace("}", ""))
            trail = audit.begin(request, route)
            view = View(request, context_of(request), dashboard, url, path, person)
            try:
                response = await workers_of(request).run(False, handler, view)
            except FhirError as exc:
                if trail is not None:
                    await audit.finish(request, route, trail, exc.status)
                raise
            if trail is not None:
                await audit.finish(request, route, trail, response.status_code)
            return response
        except FhirError as exc:
            if exc.status >= 500:
                log.warning("dashboard page %s: %s", request.url.path, exc.message)
            return _error({"ui": path, "person": person}, dashboard, exc)

    endpoint.__name__ = handler.__name__
    return endpoint


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    kind = _STATIC_TYPES.get(name.rpartition(".")[2])
    resource = STATIC / name
    if kind is None or "/" in name or name.startswith(".") or not resource.is_file():
        return Response("Hittades inte", status_code=404, media_type="text/plain; charset=utf-8")
    # shipped with this version: may be cached for a day (the pages themselves never are)
    return Response(resource.read_bytes(), media_type=kind, headers={"Cache-Control": "public, max-age=86400"})


async def root_redirect(request: Request) -> Response:
    return RedirectResponse(urlsplit(ui_url(request)).path + "/", status_code=308)


def ui_routes() -> list[BaseRoute]:
    from fhir_server.ui import account, measures, views  # the page modules register below

    return [
        Route(UI_PATH, root_redirect, methods=["GET", "HEAD"]),
        Route(UI_PATH + "/", page(views.queue_page), methods=["GET", "HEAD"]),
        Route(UI_PATH + "/remiss/{id}", page(views.referral_page), methods=["GET", "HEAD"]),
        Route(UI_PATH + "/matt", page(measures.measures_page), methods=["GET", "HEAD"]),
        Route(UI_PATH + "/skr", page(measures.skr_page), methods=["GET", "HEAD"]),
        Route(UI_PATH + "/skr.csv", page(measures.skr_csv), methods=["GET", "HEAD"]),
        Route(UI_PATH + "/static/{name}", static, methods=["GET", "HEAD"]),
        Route(UI_PATH + "/logga-in", account.login, methods=["GET"]),
        Route(UI_PATH + "/inloggad", account.callback, methods=["GET"]),
        Route(UI_PATH + "/logga-ut", account.logout, methods=["POST"]),
    ]

