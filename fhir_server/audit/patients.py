"""What is patient data, and whose.

Patient data is the Patient itself and every resource type of R4's Patient compartment
(``spec`` table ``compartments``; compartmentdefinition-patient.html), plus Task: R4's
compartment leaves Task out, but an EVI intake Task names the child in ``Task.for`` and
``$triage`` / ``$triage-queue`` work on them. AuditEvent is left out: the log is not
logged when it is read (it would grow with every look at it). The guide, terminology
and the directory (Organization, HealthcareService, Schedule, Slot) are not patient data.

A resource's patients are the local ``Patient/{id}`` its compartment parameters point at
(an Observation's ``subject`` and ``performer``, an Appointment's ``actor``): from the
index entries of a write, or by evaluating the same compiled expressions on a body
that is read.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Iterable

from fhir_server.model.meta import is_valid_id
from fhir_server.search.index import IndexSet
from fhir_server.search.registry import SearchRegistry
from fhir_server.spec import load_table

__all__ = ["is_patient_data", "compartment_params", "patients_of", "patients_in_index", "patient_data_types", "by_patient"]

#: types whose patient R4's compartment table does not give (type -> its parameters naming the patient)
_ALSO = {"Task": ("patient",)}
#: never logged as patient data (see the module doc)
_NOT = frozenset({"AuditEvent"})


@lru_cache(maxsize=1)
def _params_by_type() -> dict[str, tuple[str, ...]]:
    table = load_table("compartments")["Patient"]
    found = {t: tuple(codes) for t, codes in table.items() if codes and t != "_source" and t not in _NOT}
    found["Patient"] = ()  # its own id; ``link`` names other patients, not whose record this is
    found.update(_ALSO)
    return found


def patient_data_types() -> frozenset[str]:
    return frozenset(_params_by_type())


def is_patient_data(resource_type: str | None) -> bool:
    return resource_type in _params_by_type()


def compartment_params(resource_type: str) -> tuple[str, ...]:
    return _params_by_type().get(resource_type, ())


def patients_in_index(resource_type: str, rid: str, index: IndexSet | None) -> tuple[str, ...]:
    """The patients of a resource as written, from its index entries."""
    if resource_type == "Patient":
        return (rid,)
    params = compartment_params(resource_type)
    if index is None or not params:
        return ()
    found = (e.target_id for e in index.entries
             if e.kind == "reference" and e.param in params and e.target_type == "Patient" and e.url is None)
    return tuple(dict.fromkeys(found))


def _patient_id(node: object, absolute: str | None) -> str | None:
    """``Patient/{id}`` (or this server's absolute URL of it, versioned or not) -> id."""
    ref = node.get("reference") if isinstance(node, dict) else None
    if not isinstance(ref, str):
        return None
    if ref.startswith("Patient/"):
        rest = ref[8:]
    elif absolute is not None and ref.startswith(absolute):
        rest = ref[len(absolute):]
    else:
        return None
    rid = rest.split("/", 1)[0]
    return rid if is_valid_id(rid) else None


def patients_of(registry: SearchRegistry, resource: dict, base_url: str | None) -> tuple[str, ...]:
    """The patients of a resource's content (a body read from the store): the local
    Patient references its compartment parameters find, as indexing would."""
    rtype = resource.get("resourceType")
    if rtype == "Patient":
        rid = resource.get("id")
        return (rid,) if isinstance(rid, str) else ()
    compartment = compartment_params(rtype) if isinstance(rtype, str) else ()
    if not compartment:
        return ()
    absolute = base_url.rstrip("/") + "/Patient/" if base_url else None
    found: list[str] = []
    # the type's compartment parameters' extractors, kept by the registry beside the rest
    mine = registry.derived(rtype, "patient-compartment",
                            lambda every: tuple(e for e in every if e.definition.code in compartment))
    for extractor in mine:
        try:
            nodes = extractor.evaluate(resource)
        except Exception:  # noqa: BLE001 - what cannot be evaluated names no patient (as in indexing)
            continue
        found.extend(p for p in (_patient_id(n, absolute) for n in nodes) if p)
    return tuple(dict.fromkeys(found))


def by_patient(items: Iterable[tuple[str, tuple[str, ...]]]) -> dict[str | None, list[str]]:
    """(reference, its patients) pairs grouped per patient, in first-seen order; resources
    of no patient under None."""
    groups: dict[str | None, list[str]] = {}
    for ref, patients in items:
        for patient in patients or (None,):
            groups.setdefault(patient, []).append(ref)
    return groups
