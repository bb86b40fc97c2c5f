"""HTTP: routes per interaction level, content negotiation, errors as OperationOutcome."""

from fhir_server.api.base import MOUNT
from fhir_server.api.middleware import Answers, trailing_slash_redirect
from fhir_server.api.outcome import install_error_handlers
from fhir_server.api.routes import ROUTES, build_routes, operations, system_interactions, type_interactions
from fhir_server.api.workers import Workers

__all__ = [
    "MOUNT",
    "Answers",
    "ROUTES",
    "Workers",
    "build_routes",
    "install_error_handlers",
    "operations",
    "system_interactions",
    "trailing_slash_redirect",
    "type_interactions",
]
