"""Who may see what (domain.md §5): callers and their scopes, tokens (SMART Backend
Services, the region's identity provider), the access policy and redaction."""

from fhir_server.security.authentication import (
    Authentication,
    AuthConfigError,
    bearer_token,
    build_authentication,
    new_token_secret,
    unsafe_without_auth,
    with_token_secret,
)
from fhir_server.security.caller import ROLES, Caller
from fhir_server.security.clients import (
    Client,
    Clients,
    ClientsFileError,
    add_client,
    client_table,
    load_clients,
    parse_clients,
)
from fhir_server.security.organizations import HSA_SYSTEM, OrganizationLookup, OrganizationRef, hsa_of
from fhir_server.security.scopes import INTERACTION_LETTERS, Permission, Scopes, parse_scope
from fhir_server.security.smart_configuration import TOKEN_PATH, smart_configuration

__all__ = [
    "AuthConfigError",
    "Authentication",
    "Caller",
    "Client",
    "Clients",
    "ClientsFileError",
    "HSA_SYSTEM",
    "INTERACTION_LETTERS",
    "OrganizationLookup",
    "OrganizationRef",
    "Permission",
    "ROLES",
    "Scopes",
    "TOKEN_PATH",
    "add_client",
    "bearer_token",
    "build_authentication",
    "client_table",
    "hsa_of",
    "load_clients",
    "new_token_secret",
    "parse_clients",
    "parse_scope",
    "smart_configuration",
    "unsafe_without_auth",
    "with_token_secret",
]
