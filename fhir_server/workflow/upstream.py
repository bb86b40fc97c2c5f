"""The existing-contact check against the region's upstream FHIR server (rule 2), with fhirpy.

Asked by personnummer / samordningsnummer: active EpisodeOfCare of the patient, with
their managing Organizations included. An episode counts as a care contact unless its
Organization says (by evi-organization-type) that it is not a care unit, because an
upstream EHR's Organizations need not carry our types, and a flag only informs.
"""

from __future__ import annotations

from dataclasses import dataclass

from fhirpy import SyncFHIRClient

from fhir_server.workflow.codes import CARE_CONTACT_UNIT_TYPES
from fhir_server.workflow.resources import organization_types, reference_of

__all__ = ["UpstreamContact", "UpstreamError", "find_upstream_contacts", "is_care_contact"]


class UpstreamError(Exception):
    pass


@dataclass(frozen=True)
class UpstreamContact:
    episode: str  # EpisodeOfCare/{id} on the upstream server
    organization: str | None  # Organization/{id} on the upstream server
    organization_name: str | None


def is_care_contact(organization: dict | None) -> bool:
    types = organization_types(organization)
    return not types or bool(types & CARE_CONTACT_UNIT_TYPES)


def find_upstream_contacts(url: str, identifiers: list[tuple[str, str]], timeout: float) -> list[UpstreamContact]:
    """Active care contacts upstream for any of the (system, value) identifiers."""
    client = SyncFHIRClient(url, requests_config={"timeout": timeout}, extra_headers={"Accept": "application/fhir+json"})
    found: dict[str, UpstreamContact] = {}
    for system, value in identifiers:
        try:
            bundle = (
                client.resources("EpisodeOfCare")
                .search(**{"patient.identifier": f"{system}|{value}", "status": "active"})
                .include("EpisodeOfCare", "organization")
                .limit(50)
                .fetch_raw()
            )
        except Exception as exc:  # network, HTTP 4xx/5xx, bad JSON: all mean "could not check"
            raise UpstreamError(f"{type(exc).__name__}: {exc}") from None
        entries = [e.get("resource") or {} for e in (bundle.get("entry") or [])]
        organizations = {
            f"Organization/{r.get('id')}": r for r in entries if r.get("resourceType") == "Organization"
        }
        for episode in entries:
            if episode.get("resourceType") != "EpisodeOfCare" or episode.get("status") != "active":
                continue
            org_ref = reference_of(episode.get("managingOrganization"))
            organization = organizations.get(org_ref) if org_ref else None
            if not is_care_contact(organization):
                continue
            key = f"EpisodeOfCare/{episode.get('id')}"
            found[key] = UpstreamContact(key, org_ref, (organization or {}).get("name"))
    return list(found.values())
