"""Who is asking: the caller every RequestContext carries when authentication is on
(domain.md §5). ``RequestContext.caller`` is None with auth off and for the server's own
work (the guide at start-up, ``evi-fhir load``, rules' follow-ups): unrestricted."""

from __future__ import annotations

from dataclasses import dataclass

from fhir_server.security.scopes import Scopes

__all__ = ["Caller", "ROLES"]

#: the roles of domain.md §5, as the access policy (policies/access.toml) names them
ROLES = ("evi", "care-unit", "municipality", "reporting", "admin")


@dataclass(frozen=True)
class Caller:
    #: one of ROLES
    role: str
    #: what the token allows (SMART v1/v2 system/ and user/ scopes)
    scopes: Scopes
    #: the registered client (SMART Backend Services), or the client a person's token was issued to
    client_id: str | None = None
    client_name: str | None = None
    #: the person (HSA-id), for tokens from the region's identity provider
    user: str | None = None
    #: the caller's organisation as a literal reference ``Organization/{id}`` (what
    #: ``%organization`` stands for in the policy), None when it could not be resolved
    organization: str | None = None
    #: the organisation's HSA-id value, where known (for the PDL log)
    organization_hsa: str | None = None

    @property
    def label(self) -> str:
        """For messages: never personal data beyond the caller's own identifiers."""
        who = f"user {self.user} via {self.client_id}" if self.user else f"client {self.client_id}"
        return f"{who} ({self.role})"
