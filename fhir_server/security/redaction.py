"""Protected identity (domain.md §5): for a Patient whose ``meta.security`` holds
``sekretessmarkering`` or ``skyddadFolkbokforing``, ``address``, ``telecom``, ``photo``
and every ``contact.address`` / ``contact.telecom`` leave the server only to the ``evi``
role and to the Patient's ``managingOrganization``; everyone else gets the resource
without them, labelled ``REDACTED``. An update from such a view keeps what it could not
see (``restore_hidden``)."""

from __future__ import annotations

from fhir_server.security.caller import Caller

__all__ = [
    "SECURITY_LABEL_SYSTEM", "PROTECTED_LABELS", "REDACTED", "HIDDEN", "is_protected", "may_see_identity",
    "redact", "restore_hidden",
]

SECURITY_LABEL_SYSTEM = "http://hl7.se/fhir/ig/base/CodeSystem/SecurityLabel"
PROTECTED_LABELS = frozenset({"sekretessmarkering", "skyddadFolkbokforing"})
REDACTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "REDACTED"}
#: top-level elements removed, and those removed from each contact
HIDDEN = ("address", "telecom", "photo")
HIDDEN_IN_CONTACT = ("address", "telecom")
#: the search parameters over what is hidden: a search by them must not find a protected
#: Patient for a caller who may not see those elements (it would tell them)
HIDDEN_PARAMETERS = frozenset({
    "address", "address-city", "address-country", "address-postalcode", "address-state", "address-use",
    "email", "phone", "phonetic", "telecom",
})


def is_protected(resource: dict) -> bool:
    if resource.get("resourceType") != "Patient":
        return False
    labels = (resource.get("meta") or {}).get("security") or ()
    return any(
        isinstance(label, dict) and label.get("system") == SECURITY_LABEL_SYSTEM and label.get("code") in PROTECTED_LABELS
        for label in labels
    )


def may_see_identity(caller: Caller | None, resource: dict, base_url: str | None = None) -> bool:
    """The evi role, the managing organisation itself, or the server's own work."""
    if caller is None or caller.role == "evi":
        return True
    if caller.organization is None:
        return False
    managing = (resource.get("managingOrganization") or {}).get("reference")
    if not isinstance(managing, str):
        return False
    if base_url and managing.startswith(base_url.rstrip("/") + "/"):
        managing = managing[len(base_url.rstrip("/")) + 1:]
    return managing == caller.organization


def redact(resource: dict) -> dict:
    """A copy without the hidden elements, labelled REDACTED."""
    shown = {k: v for k, v in resource.items() if k not in HIDDEN}
    contacts = resource.get("contact")
    if isinstance(contacts, list):
        kept = [{k: v for k, v in c.items() if k not in HIDDEN_IN_CONTACT} if isinstance(c, dict) else c for c in contacts]
        kept = [c for c in kept if c]  # a contact that was only an address or a phone is gone with them
        if kept:
            shown["contact"] = kept
        else:
            shown.pop("contact", None)
    meta = dict(shown.get("meta") or {})
    labels = [label for label in meta.get("security") or () if not _is_redacted(label)]
    meta["security"] = [*labels, dict(REDACTED)]
    shown["meta"] = meta
    return shown


def restore_hidden(incoming: dict, stored: dict) -> dict:
    """``incoming`` (written by a caller who saw ``stored`` redacted) with the stored hidden
    elements back in place, and without the REDACTED label its view carried."""
    out = {k: v for k, v in incoming.items() if k not in HIDDEN}
    for key in HIDDEN:
        if key in stored:
            out[key] = stored[key]
    stored_contacts = [c for c in stored.get("contact") or () if isinstance(c, dict)]
    # the view showed the stored contacts that had more than hidden parts, in order; those
    # that were nothing but an address or a phone it never saw, so they stay as they are
    seen = [c for c in stored_contacts if any(k not in HIDDEN_IN_CONTACT for k in c)]
    unseen = [c for c in stored_contacts if all(k in HIDDEN_IN_CONTACT for k in c)]
    contacts = []
    for i, contact in enumerate(incoming.get("contact") or ()):
        if not isinstance(contact, dict):
            contacts.append(contact)
            continue
        merged = {k: v for k, v in contact.items() if k not in HIDDEN_IN_CONTACT}
        if i < len(seen):
            merged.update({k: seen[i][k] for k in HIDDEN_IN_CONTACT if k in seen[i]})
        contacts.append(merged)
    contacts.extend(unseen)
    if contacts:
        out["contact"] = contacts
    meta = incoming.get("meta")
    if isinstance(meta, dict) and isinstance(meta.get("security"), list):
        labels = [label for label in meta["security"] if not _is_redacted(label)]
        out["meta"] = {**meta, "security": labels} if labels else {k: v for k, v in meta.items() if k != "security"}
    return out


def _is_redacted(label: object) -> bool:
    return isinstance(label, dict) and label.get("system") == REDACTED["system"] and label.get("code") == "REDACTED"
