"""HTTP: routes per interaction level, content negotiation, errors as OperationOutcome."""

from fhir_server.api.outcome import install_error_handlers
from fhir_server.api.routes import ROUTES, build_router, system_interactions, type_interactions

__all__ = ["ROUTES", "build_router", "install_error_handlers", "system_interactions", "type_interactions"]
