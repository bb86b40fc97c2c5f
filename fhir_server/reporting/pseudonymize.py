"""Pseudonymised export output (domain.md §8; the rules, with examples, in docs/export.md).

Every resource:
  - ``text`` (the narrative, which names people) and every ``note`` (free-text
    Annotations) are removed;
  - every Reference loses its ``display``; a reference to a person (Patient,
    RelatedPerson, Person, Practitioner) names the person's pseudonymous id instead
    (``Patient/{pseudonym of "Patient/{id}"}``, relative or absolute as written), so that
    references still join up inside the export and across exports;
  - every Identifier of a personal identity number (personnummer, samordningsnummer,
    nationellt reservnummer, in any system URI the server accepts) becomes
    ``{system: PSEUDONYM_SYSTEM, value: HMAC(the number)}``, the pseudonym the SKR
    detail lines use too;
  - the free-text elements of ``FREE_TEXT`` (titles and descriptions people write, such
    as a SIP CarePlan's "SIP för Oskar …" or a CareTeam's name) are removed;
  - ``meta.security`` gains ``PSEUDED`` (v3-ObservationValue: pseudonymized).

A person resource, besides:
  - ``id`` becomes the pseudonym of ``{Type}/{id}`` (64 hex digits, a valid id);
  - every ``identifier`` becomes a pseudonym: of the number for a personal identity
    number, of ``system|value`` for any other (a local patient number);
  - ``name``, ``telecom``, ``address``, ``photo`` and ``contact`` are removed;
  - ``birthDate`` is cut to year-month, ``deceasedDateTime`` likewise;
  - extensions other than the product's own (``https://evi-fhir.org/fhir/StructureDefinition/``)
    are removed: others may carry identity (birth place, mother's maiden name).

What is NOT scrubbed: identity written as free text in other elements (a string
extension, a CodeableConcept's ``text``, a document's attachment). The ``reporting``
role's export view leaves out the types that carry such text (policies/access.toml).
"""

from __future__ import annotations

import re

from fhir_server.reporting.pseudonyms import Pseudonymizer

__all__ = ["Pseudonymization", "PSEUDONYM_SYSTEM", "PERSON_TYPES", "PERSONAL_IDENTITY_SYSTEMS", "PSEUDED", "FREE_TEXT"]

PSEUDONYM_SYSTEM = "https://evi-fhir.org/fhir/sid/evi-pseudonym"
PSEUDED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "PSEUDED"}
PERSON_TYPES = frozenset({"Patient", "RelatedPerson", "Person", "Practitioner"})
#: every system URI the server accepts for a Swedish personal identity number (domain.md §2)
PERSONAL_IDENTITY_SYSTEMS = frozenset({
    "http://electronichealth.se/identifier/personnummer",
    "urn:oid:1.2.752.129.2.1.3.1",
    "https://terminology.hl7.se/sid/se-personnummer",
    "http://electronichealth.se/identifier/samordningsnummer",
    "urn:oid:1.2.752.129.2.1.3.3",
    "http://electronichealth.se/identifier/nationelltReservnummer",
    "http://electronichealth.se/identifier/nationelltReservnumer",
})
#: per type, the top-level elements people fill with free text (names of children in titles)
FREE_TEXT = {
    "CarePlan": ("title", "description"),
    "CareTeam": ("name",),
    "Task": ("description",),
    "ServiceRequest": ("patientInstruction",),
    "Appointment": ("description", "comment", "patientInstruction"),
    "Communication": ("payload",),
    "CommunicationRequest": ("payload",),
    "Consent": ("sourceAttachment",),
    "Group": ("name",),
    "DocumentReference": ("description",),
    "QuestionnaireResponse": ("item",),
}
_PRODUCT_EXTENSIONS = "https://evi-fhir.org/fhir/StructureDefinition/"
#: removed from a person resource (with their ``_name`` primitive extensions)
_PERSON_REMOVED = ("name", "telecom", "address", "photo", "contact", "text")
_PERSON_TRUNCATED = ("birthDate", "deceasedDateTime")
#: a literal reference to a person: optional base, type, id, optional version
_PERSON_REFERENCE = re.compile(
    r"^(?P<base>(?:.*/)?)(?P<type>Patient|RelatedPerson|Person|Practitioner)/(?P<id>[A-Za-z0-9\-.]{1,64})"
    r"(?P<version>/_history/[^/]+)?$"
)


class Pseudonymization:
    def __init__(self, pseudonymizer: Pseudonymizer):
        self._pseudonyms = pseudonymizer

    def apply(self, resource: dict) -> dict:
        """``resource`` (a freshly parsed one: it is changed in place) as the export shows it."""
        self._walk(resource)
        meta = resource.setdefault("meta", {})
        labels = [label for label in meta.get("security") or () if label != PSEUDED]
        meta["security"] = [*labels, dict(PSEUDED)]
        return resource

    def person_id(self, resource_type: str, rid: str) -> str:
        return self._pseudonyms.pseudonym(f"{resource_type}/{rid}")

    def _walk(self, node: object, contained: bool = False) -> None:
        if isinstance(node, list):
            for item in node:
                self._walk(item, contained)
            return
        if not isinstance(node, dict):
            return
        rtype = node.get("resourceType")
        if isinstance(rtype, str):
            for key in ("text", *FREE_TEXT.get(rtype, ())):
                node.pop(key, None)
                node.pop("_" + key, None)
            if rtype in PERSON_TYPES:
                self._person(node, rtype, own_id=not contained)
        node.pop("note", None)
        node.pop("_note", None)
        if rtype is None:
            if isinstance(node.get("reference"), str) or isinstance(node.get("identifier"), dict):
                self._reference(node)
            elif node.get("system") in PERSONAL_IDENTITY_SYSTEMS and isinstance(node.get("value"), str):
                self._identity_number(node)
                return
        for key, value in node.items():
            if isinstance(value, (dict, list)):
                # a contained resource's id is local to its container (``#id``): not a person's id
                self._walk(value, contained or (rtype is not None and key == "contained"))

    def _person(self, resource: dict, rtype: str, *, own_id: bool) -> None:
        if own_id and isinstance(resource.get("id"), str):
            resource["id"] = self.person_id(rtype, resource["id"])
        for key in _PERSON_REMOVED:
            resource.pop(key, None)
            resource.pop("_" + key, None)
        for key in _PERSON_TRUNCATED:
            value = resource.get(key)
            if isinstance(value, str) and len(value) > 7:
                resource[key] = value[:7]
            resource.pop("_" + key, None)
        identifiers = [self._identifier(i) for i in resource.get("identifier") or () if isinstance(i, dict)]
        identifiers = [i for i in identifiers if i is not None]
        if identifiers:
            resource["identifier"] = identifiers
        else:
            resource.pop("identifier", None)
        kept = [e for e in resource.get("extension") or ()
                if isinstance(e, dict) and str(e.get("url", "")).startswith(_PRODUCT_EXTENSIONS)]
        if kept:
            resource["extension"] = kept
        else:
            resource.pop("extension", None)

    def _identifier(self, identifier: dict) -> dict | None:
        system, value = identifier.get("system"), identifier.get("value")
        if not isinstance(value, str):
            return None
        key = value if system in PERSONAL_IDENTITY_SYSTEMS else f"{system or ''}|{value}"
        return {"system": PSEUDONYM_SYSTEM, "value": self._pseudonyms.pseudonym(key)}

    def _identity_number(self, identifier: dict) -> None:
        value = identifier["value"]
        identifier.clear()
        identifier.update({"system": PSEUDONYM_SYSTEM, "value": self._pseudonyms.pseudonym(value)})

    def _reference(self, reference: dict) -> None:
        reference.pop("display", None)
        reference.pop("_display", None)
        target = reference.get("reference")
        if isinstance(target, str):
            match = _PERSON_REFERENCE.match(target)
            if match:
                pseudonym = self.person_id(match["type"], match["id"])
                reference["reference"] = f"{match['base']}{match['type']}/{pseudonym}{match['version'] or ''}"
