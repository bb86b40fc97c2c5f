"""Consent on record (domain.md §2: evi-consent), shared by the SIP and care-transfer rules.

A Consent covers an Organization for a patient when it is ``active``, its
``provision.type`` is not ``deny``, its ``provision.period`` (if any) includes now,
and ``provision.actor`` lists the Organization with role IRCP
(http://terminology.hl7.org/CodeSystem/v3-ParticipationType). A nested provision
that denies an actor takes that actor out again.
"""

from __future__ import annotations

from datetime import datetime, timezone

from fhir_server.engine import Work, find_matches
from fhir_server.workflow.resources import load, reference_of

__all__ = ["IRCP_SYSTEM", "active_consents", "covered_organizations", "consent_covering"]

IRCP_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
_LIMIT = 100


def _in_period(period: dict | None, now: datetime) -> bool:
    if not period:
        return True
    start, end = period.get("start"), period.get("end")
    stamp = now.isoformat()
    # FHIR dateTimes compare correctly as text only at the same precision; dates are enough here
    today = stamp[:10]
    if start and start[:10] > today:
        return False
    if end and end[:10] < today:
        return False
    return True


def _actors(provision: dict) -> set[str]:
    found = set()
    for actor in provision.get("actor") or ():
        roles = ((actor.get("role") or {}).get("coding")) or []
        if any(c.get("system") == IRCP_SYSTEM and c.get("code") == "IRCP" for c in roles):
            ref = reference_of(actor.get("reference"))
            if ref and ref.startswith("Organization/"):
                found.add(ref)
    return found


def covered_organizations(consent: dict, now: datetime | None = None) -> set[str]:
    """``Organization/{id}`` references the Consent lets share and receive, now."""
    now = now or datetime.now(timezone.utc)
    if consent.get("status") != "active":
        return set()
    provision = consent.get("provision") or {}
    if provision.get("type") == "deny" or not _in_period(provision.get("period"), now):
        return set()
    covered = _actors(provision)
    for nested in provision.get("provision") or ():
        if nested.get("type") == "deny" and _in_period(nested.get("period"), now):
            covered -= _actors(nested)
    return covered


def active_consents(work: Work, patient_ref: str) -> list[dict]:
    ids = find_matches(work, "Consent", [("patient", patient_ref), ("status", "active")], limit=_LIMIT)
    found = [load(work, f"Consent/{i}") for i in ids]
    return [c for c in found if c is not None]


def consent_covering(work: Work, patient_ref: str, organizations: set[str]) -> tuple[dict | None, set[str]]:
    """The first active Consent covering every one of ``organizations`` (None, and what the
    best one misses, when there is none)."""
    best_missing = set(organizations)
    for consent in active_consents(work, patient_ref):
        missing = organizations - covered_organizations(consent)
        if not missing:
            return consent, set()
        if len(missing) < len(best_missing):
            best_missing = missing
    return None, best_missing
