"""Eligibility at intake (rule 2): flags that inform the triager; they decide nothing.

  age-out-of-range   Patient.birthDate outside the region's age range on the day of receipt
                     (in the region's time zone)
  existing-contact   an active EpisodeOfCare managed by a care unit (BUP or primary care),
                     on this server here, upstream in ``upstream.py`` after the commit
  placed-child       the Patient carries evi-placement
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from fhir_server.engine import Work, find_matches
from fhir_server.workflow.codes import EXT_PLACEMENT, PERSONNUMMER, SAMORDNINGSNUMMER
from fhir_server.workflow.region import Region
from fhir_server.workflow.resources import extension, load
from fhir_server.workflow.upstream import is_care_contact

__all__ = ["Eligibility", "evaluate", "age_on", "national_identifiers", "local_contacts", "placement_of"]

_SEARCH_LIMIT = 50


@dataclass
class Eligibility:
    flags: list[str] = field(default_factory=list)
    #: human-readable findings, recorded as Task.note
    notes: list[str] = field(default_factory=list)

    def add(self, flag: str, note: str) -> None:
        if flag not in self.flags:
            self.flags.append(flag)
        self.notes.append(note)

    @property
    def suggested_outcome(self) -> str | None:
        if "existing-contact" in self.flags:
            return "redirect-existing-contact"
        if "age-out-of-range" in self.flags:
            return "not-eligible"
        return None


def age_on(birth_date: str, day: date) -> int | None:
    """Whole years on ``day``; a partial birthDate (YYYY, YYYY-MM) counts from its first day."""
    parts = birth_date.split("-")
    try:
        year = int(parts[0])
        month = int(parts[1]) if len(parts) > 1 else 1
        dom = int(parts[2][:2]) if len(parts) > 2 else 1
    except ValueError:
        return None
    return day.year - year - ((day.month, day.day) < (month, dom))


def national_identifiers(patient: dict | None) -> list[tuple[str, str]]:
    found = []
    for ident in (patient or {}).get("identifier") or ():
        if ident.get("system") in (PERSONNUMMER, SAMORDNINGSNUMMER) and isinstance(ident.get("value"), str):
            found.append((ident["system"], ident["value"]))
    return found


def placement_of(patient: dict | None) -> dict[str, object] | None:
    """The evi-placement sub-extensions by url (type, legalBasis, responsibleMunicipality)."""
    ext = extension(patient, EXT_PLACEMENT)
    if ext is None:
        return None
    parts: dict[str, object] = {}
    for sub in ext.get("extension") or ():
        value = next((v for k, v in sub.items() if k.startswith("value")), None)
        parts[sub.get("url")] = value
    return parts


def local_contacts(work: Work, patient_ref: str, identifiers: list[tuple[str, str]]) -> list[tuple[dict, dict | None]]:
    """(EpisodeOfCare, managing Organization) of the patient's active care contacts on this server."""
    ids = set(find_matches(work, "EpisodeOfCare", [("patient", patient_ref), ("status", "active")], limit=_SEARCH_LIMIT))
    for system, value in identifiers:
        params = [("patient.identifier", f"{system}|{value}"), ("status", "active")]
        ids.update(find_matches(work, "EpisodeOfCare", params, limit=_SEARCH_LIMIT))
    found = []
    for eid in sorted(ids):
        episode = load(work, f"EpisodeOfCare/{eid}")
        if episode is None:
            continue
        organization = load(work, episode.get("managingOrganization"), "Organization")
        if organization is not None and is_care_contact(organization):
            found.append((episode, organization))
    return found


def evaluate(work: Work, region: Region, patient: dict | None, patient_ref: str | None, receipt: datetime) -> Eligibility:
    result = Eligibility()
    if patient is None or patient_ref is None:
        return result
    low, high = region.age_range
    birth = patient.get("birthDate")
    if isinstance(birth, str):
        age = age_on(birth, receipt.astimezone(region.zone).date())
        if age is not None and not low <= age <= high:
            result.add(
                "age-out-of-range",
                f"Age at receipt {age} years (born {birth}) is outside the region's range {low}–{high}.",
            )
    for episode, organization in local_contacts(work, patient_ref, national_identifiers(patient)):
        result.add(
            "existing-contact",
            f"Ongoing care contact: EpisodeOfCare/{episode['id']} at Organization/{organization['id']}"
            f" ({organization.get('name', 'unnamed')}).",
        )
    placement = placement_of(patient)
    if placement is not None:
        municipality = placement.get("responsibleMunicipality")
        ref = municipality.get("reference") if isinstance(municipality, dict) else None
        result.add("placed-child", f"Placed child; responsible municipality {ref or 'not given'}.")
    return result
