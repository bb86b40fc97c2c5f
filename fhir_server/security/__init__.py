"""Who may see what (domain.md §5): callers and their scopes, tokens (SMART Backend
Services, the region's identity provider), the access policy and redaction."""

from fhir_server.security.caller import ROLES, Caller
from fhir_server.security.scopes import INTERACTION_LETTERS, Permission, Scopes, parse_scope

__all__ = ["Caller", "INTERACTION_LETTERS", "Permission", "ROLES", "Scopes", "parse_scope"]
