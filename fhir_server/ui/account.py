"""Signing in and out (the flow is described in ``login.py``; the cookies in ``session.py``)."""

from __future__ import annotations

import hmac
import time
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from fhir_server.api.authentication import authentication_of, organization_lookup
from fhir_server.api.workers import workers_of
from fhir_server.errors import FhirError, Unauthorized
from fhir_server.security import Authentication
from fhir_server.ui.login import code_challenge, exchange_code, new_pending_values
from fhir_server.ui.routes import Dashboard, dashboard_of, ui_url
from fhir_server.ui.session import (
    LOGIN_COOKIE, LOGIN_SECONDS, SESSION_COOKIE, PendingLogin, SignedIn, cookie_header, is_loopback_http,
)

__all__ = ["login", "callback", "logout", "safe_next"]


def safe_next(raw: str | None, path: str) -> str:
    """Where to go after signing in: a page of the dashboard, never another site."""
    if raw and raw.startswith(path + "/") and "//" not in raw and "\\" not in raw and raw.isprintable():
        return raw
    return path + "/"


def _message(dashboard: Dashboard, path: str, status: int, message: str, title: str = "Inloggning") -> Response:
    return dashboard.pages.render("message.html", status, title=title, section="", ui=path, person=None,
                                  message=message, login=True)


def _cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    url = ui_url(request)
    response.headers.append("Set-Cookie", cookie_header(name, value, path=urlsplit(url).path, max_age=max_age,
                                                        secure=not is_loopback_http(url)))


def _configured(request: Request) -> tuple[Dashboard, Authentication | None, str, str | None]:
    dashboard = dashboard_of(request)
    path = urlsplit(ui_url(request)).path
    authentication = authentication_of(request)
    problem = None
    if authentication is not None and (dashboard.discovery is None or authentication.provider is None
                                       or not dashboard.settings.ui_client_id):
        problem = ("Inloggning är inte inställd på den här servern: den behöver regionens "
                   "identitetsutfärdare (EVI_OIDC_ISSUER, EVI_OIDC_JWKS_URL, EVI_OIDC_AUDIENCE) "
                   "och översiktens klient-id där (EVI_UI_CLIENT_ID).")
    return dashboard, authentication, path, problem


async def login(request: Request) -> Response:
    dashboard, authentication, path, problem = _configured(request)
    if authentication is None:  # auth off: the dashboard is open
        return RedirectResponse(path + "/", status_code=303)
    if problem:
        return _message(dashboard, path, 503, problem)
    try:
        endpoints = await workers_of(request).run(False, dashboard.discovery.endpoints)
    except FhirError as exc:
        return _message(dashboard, path, 503, f"Regionens inloggning svarar inte just nu ({exc.message}).")
    state, nonce, verifier = new_pending_values()
    pending = PendingLogin(state, nonce, verifier, safe_next(request.query_params.get("next"), path))
    params = {
        "response_type": "code", "client_id": dashboard.settings.ui_client_id,
        "redirect_uri": ui_url(request) + "/inloggad", "scope": dashboard.settings.ui_scopes,
        "state": state, "nonce": nonce, "code_challenge": code_challenge(verifier), "code_challenge_method": "S256",
    }
    separator = "&" if "?" in endpoints.authorization else "?"
    response = RedirectResponse(endpoints.authorization + separator + urlencode(params), status_code=303)
    _cookie(response, request, LOGIN_COOKIE, dashboard.cookies.seal(pending), LOGIN_SECONDS)
    return response


def _sign_in(request: Request, dashboard: Dashboard, authentication: Authentication, pending: PendingLogin,
             code: str, lookup) -> SignedIn:
    """In a worker thread: code → tokens → verified ID token → the person's Caller."""
    settings = dashboard.settings
    endpoints = dashboard.discovery.endpoints()
    answer = exchange_code(endpoints.token, code, pending.verifier, ui_url(request) + "/inloggad",
                           settings.ui_client_id, settings.ui_client_secret)
    claims = authentication.provider.id_token_claims(answer["id_token"], settings.ui_client_id, pending.nonce)
    caller = authentication.authenticate(f"Bearer {answer['access_token']}", lookup, wait=True)
    if claims.get("hsa_id") not in (None, caller.user):
        raise Unauthorized("The ID token and the access token name different people")
    lifetime = answer.get("expires_in")
    lifetime = lifetime if isinstance(lifetime, int) and lifetime > 0 else 300
    expires = time.time() + min(lifetime, settings.ui_session_hours * 3600)
    name = claims.get("name") if isinstance(claims.get("name"), str) else caller.user or str(claims["sub"])
    return SignedIn(answer["access_token"], name, expires)


async def callback(request: Request) -> Response:
    dashboard, authentication, path, problem = _configured(request)
    if authentication is None:
        return RedirectResponse(path + "/", status_code=303)
    if problem:
        return _message(dashboard, path, 503, problem)
    query = request.query_params
    if query.get("error"):
        return _message(dashboard, path, 401, f"Inloggningen avbröts av identitetsutfärdaren ({query['error'][:100]}).")
    pending = dashboard.cookies.pending(request.cookies.get(LOGIN_COOKIE))
    state, code = query.get("state", ""), query.get("code", "")
    if pending is None or not hmac.compare_digest(pending.state.encode(), state.encode()) or not code:
        return _message(dashboard, path, 400, "Inloggningen kunde inte slutföras: den startades inte här, "
                                              "eller för länge sedan. Försök igen.")
    try:
        signed = await workers_of(request).run(
            False, _sign_in, request, dashboard, authentication, pending, code, organization_lookup(request))
    except FhirError as exc:
        return _message(dashboard, path, 401 if exc.status < 500 else 503, f"Inloggningen misslyckades: {exc.message}")
    response = RedirectResponse(pending.next, status_code=303)
    _cookie(response, request, LOGIN_COOKIE, "", 0)
    _cookie(response, request, SESSION_COOKIE, dashboard.cookies.seal(signed), int(signed.expires - time.time()))
    return response


async def logout(request: Request) -> Response:
    dashboard, authentication, path, _ = _configured(request)
    origin = request.headers.get("origin")
    if origin and origin != "null" and not ui_url(request).startswith(origin + "/"):
        return _message(dashboard, path, 403, "Utloggning från en annan webbplats tas inte emot.")
    response = _message(dashboard, path, 200, "Du är utloggad.", title="Utloggad")
    _cookie(response, request, SESSION_COOKIE, "", 0)
    return response

