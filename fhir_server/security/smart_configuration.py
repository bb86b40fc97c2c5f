"""``GET [base]/.well-known/smart-configuration`` (SMART App Launch 2.x, conformance.html):
what a SMART Backend Services client needs to find and use the token endpoint. Exactly
the fields domain.md §5 names; the token endpoint follows the base URL the client used."""

from __future__ import annotations

from fhir_server.security.clients import ASSERTION_ALGORITHMS

__all__ = ["smart_configuration", "TOKEN_PATH"]

#: the token endpoint, under the FHIR base
TOKEN_PATH = "/auth/token"

#: examples of what may be asked for: any resource type in place of ``*``, any of the
#: letters cruds (v2) or read/write/* (v1)
_SCOPES = ("system/*.cruds", "system/*.rs", "system/*.read", "system/*.write", "system/*.*",
           "user/*.cruds", "user/*.rs", "user/*.read")


def smart_configuration(base_url: str) -> dict:
    return {
        "token_endpoint": base_url + TOKEN_PATH,
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "scopes_supported": list(_SCOPES),
        "capabilities": ["client-confidential-asymmetric", "permission-v1", "permission-v2"],
    }
