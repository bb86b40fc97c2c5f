"""What handlers need from the app: the Runtime and a RequestContext per request."""

from __future__ import annotations

import uuid

from starlette.requests import Request

from fhir_server.api.prefer import Preference, parse_prefer
from fhir_server.engine import RequestContext, Runtime
from fhir_server.errors import NotFound
from fhir_server.model import is_resource_type
from fhir_server.settings import Settings

__all__ = ["runtime_of", "settings_of", "context_of", "preference_of", "query_pairs", "check_type", "is_pretty"]


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def preference_of(request: Request) -> Preference:
    return parse_prefer(request.headers.get("prefer"))


def context_of(request: Request, preference: Preference | None = None) -> RequestContext:
    preference = preference or preference_of(request)
    return RequestContext(
        base_url=settings_of(request).public_base,
        request_id=request.headers.get("x-request-id") or uuid.uuid4().hex,
        strict_handling=preference.strict,
        follow_ups=follow_ups_of(request),
    )


def follow_ups_of(request: Request) -> list:
    """The request's list of after-commit follow-ups; ``routes`` runs them in a worker
    thread once the handler is done, so a slow one (a call to another server) never
    blocks the event loop. Every context of one request shares the list."""
    found = getattr(request.state, "follow_ups", None)
    if found is None:
        found = request.state.follow_ups = []
    return found


def query_pairs(request: Request) -> list[tuple[str, str]]:
    return list(request.query_params.multi_items())


def is_pretty(request: Request) -> bool:
    return request.query_params.get("_pretty") == "true"


def check_type(resource_type: str) -> None:
    if not is_resource_type(resource_type):
        raise NotFound(f"Unknown resource type '{resource_type}'")
