"""HTTP: routes per interaction level, content negotiation, errors as OperationOutcome."""

from fhir_server.api.outcome import install_error_handlers
from fhir_server.api.routes import ROUTES, build_routes, operations, system_interactions, type_interactions

__all__ = ["ROUTES", "build_routes", "install_error_handlers", "operations", "system_interactions", "type_interactions"]
