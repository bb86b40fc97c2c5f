"""Who may run reports, and the key they need (domain.md §5, §8).

``$evaluate-measure`` and ``$skr-wait-times`` are for the ``reporting``, ``evi`` and
``admin`` roles (and anyone while auth is off); other roles get 403. They return
aggregates, server ids (not personal data) and pseudonyms only, so the ``reporting``
role -- which the access policy lets read nothing through the normal API -- may run them.

Reporting does not start without a pseudonym key of at least 32 bytes
(``EVI_PSEUDONYM_KEY``): every report answers 403 naming the setting, the CLI exits
with the same message; the rest of the server runs as usual.
"""

from __future__ import annotations

from fhir_server.engine import RequestContext
from fhir_server.errors import Forbidden
from fhir_server.reporting.pseudonyms import PseudonymKeyError, Pseudonymizer

__all__ = ["REPORTING_ROLES", "check_reporting", "reporting_pseudonymizer"]

REPORTING_ROLES = frozenset({"reporting", "evi", "admin"})


def check_reporting(ctx: RequestContext, operation: str) -> None:
    caller = ctx.caller
    if caller is not None and caller.role not in REPORTING_ROLES:
        raise Forbidden(f"{operation} is for the reporting, evi and admin roles, not {caller.role}")


def reporting_pseudonymizer(key: str | None) -> Pseudonymizer:
    """The pseudonymizer of the configured key; a missing or short key refuses the report."""
    try:
        return Pseudonymizer(key)
    except PseudonymKeyError as e:
        raise Forbidden(f"Reporting is not available on this server: {e}") from None
