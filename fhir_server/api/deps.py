"""What handlers need from the app: the Runtime and a RequestContext per request."""

from __future__ import annotations

import re
import os

from starlette.requests import Request

from fhir_server.api.base import request_base
from fhir_server.api.prefer import Preference, parse_prefer
from fhir_server.engine import Budget, RequestContext, Runtime
from fhir_server.errors import NotFound
from fhir_server.model import is_resource_type
from fhir_server.reporting import BulkExport
from fhir_server.settings import Settings

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

__all__ = ["runtime_of", "settings_of", "exports_of", "state_of", "context_of", "base_of", "budget_of", "request_id_of", "preference_of", "query_pairs", "check_type", "is_pretty"]


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def exports_of(request: Request) -> BulkExport:
    """The Bulk Data export of this app (its jobs, and this process's worker)."""
    return request.app.state.exports


def preference_of(request: Request) -> Preference:
    return parse_prefer(request.headers.get("prefer"))


def context_of(request: Request, preference: Preference | None = None) -> RequestContext:
    """The RequestContext of a request: its caller is the one ``api.authentication``
    authenticated (None with auth off)."""
    preference = preference or preference_of(request)
    return RequestContext(
        base_url=base_of(request),
        request_id=request_id_of(request),
        caller=state_of(request).get("caller"),
        from_client=True,
        inline=state_of(request).get("inline", False),
        strict_handling=preference.strict,
        follow_ups=follow_ups_of(request),
        budget=budget_of(request),
        audit=state_of(request).get("audit"),
    )


def state_of(request: Request) -> dict:
    """What the request carries from one step to the next (the ASGI scope's ``state``:
    Starlette's ``request.state`` wraps the same dict, with an exception per miss)."""
    return request.scope.setdefault("state", {})


def base_of(request: Request) -> str:
    state = state_of(request)
    found = state.get("base_url")
    if found is None:
        found = state["base_url"] = request_base(request, settings_of(request))
    return found


def request_id_of(request: Request) -> str:
    """The client's ``X-Request-Id`` when it is a plain token, else a new one."""
    state = state_of(request)
    found = state.get("request_id")
    if found is None:
        given = request.headers.get("x-request-id", "")
        found = state["request_id"] = given if _REQUEST_ID.match(given) else os.urandom(16).hex()  # a uuid4().hex without the UUID object
    return found


def budget_of(request: Request) -> Budget:
    """The request's budget, set when it arrived (``api.routes``), shared by all its contexts."""
    state = state_of(request)
    found = state.get("budget")
    if found is None:
        settings = settings_of(request)
        found = state["budget"] = Budget.for_request(settings.request_timeout, settings.max_response_entries)
    return found


def follow_ups_of(request: Request) -> list:
    """The request's list of after-commit follow-ups; ``routes`` runs them in a worker
    thread once the handler is done, so a slow one (a call to another server) never
    blocks the event loop. Every context of one request shares the list."""
    return state_of(request).setdefault("follow_ups", [])


def query_pairs(request: Request) -> list[tuple[str, str]]:
    return list(request.query_params.multi_items())


def is_pretty(request: Request) -> bool:
    return request.query_params.get("_pretty") == "true"


def check_type(resource_type: str) -> None:
    if not is_resource_type(resource_type):
        raise NotFound(f"Unknown resource type '{resource_type}'")
