"""The PDL log's eyes in the engine: every read, search, history page and write a client's
request makes on patient data adds its accesses to the request's ``AuditTrail``
(``RequestContext.audit``), one per patient (``fhir_server.audit``). The API turns them
into AuditEvents once the answer's status is known.

Only the request's own work counts: what server rules read and write for it (``Work.cause``
set) is the server's. A context without a trail (the log off, the server's own work)
costs one attribute check per interaction. A version's patients are kept with it when it
is written (``ResourceVersion.patients``, from its index entries: ``engine.write``);
versions stored before they were kept are read from their body (the compartment
parameters' compiled expressions, ``audit.patients``); a Patient is its own.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable, Iterator

import orjson

from fhir_server.audit import Access, AuditTrail, by_patient, is_patient_data, patients_of
from fhir_server.engine.work import Work
from fhir_server.errors import FhirError
from fhir_server.search.registry import SearchRegistry
from fhir_server.storage.base import ResourceVersion

__all__ = [
    "trail_of", "record_read", "record_write", "record_deletion", "record_listed", "covers_patient_data",
    "logged_step", "step_access", "version_patients",
]

_WRITES = {"POST": "create", "PUT": "update", "PATCH": "patch"}


def trail_of(work: Work) -> AuditTrail | None:
    trail = work.ctx.audit
    return trail if trail is not None and work.cause is None else None


def _ref(version: ResourceVersion) -> str:
    return f"{version.resource_type}/{version.id}/_history/{version.version_id}"


def version_patients(registry: SearchRegistry, version: ResourceVersion, base_url: str | None) -> tuple[str, ...]:
    """The patients of a stored version: a Patient's own id, else the local Patients its
    compartment parameters name in its body (also for deliveries and export jobs:
    engine/disclosures.py)."""
    if version.resource_type == "Patient":
        return (version.id,)
    if version.body is None:
        return ()
    if version.patients is not None:  # kept with the version when it was written
        return version.patients
    return patients_of(registry, orjson.loads(version.body), base_url)


def _patients(work: Work, version: ResourceVersion | None) -> tuple[str, ...]:
    if version is None:
        return ()
    # the registry as built (spec + guide): compartment parameters are the spec's, and a read
    # by id must not ask the store whether stored SearchParameters changed
    return version_patients(work.runtime.registry, version, work.ctx.base_url)


def record_read(work: Work, version: ResourceVersion, interaction: str = "read") -> None:
    """A read or vread of ``version`` (also one the access rules then answer 404)."""
    trail = trail_of(work)
    if trail is None or not is_patient_data(version.resource_type):
        return
    ref = _ref(version)
    for patient in _patients(work, version) or (None,):
        trail.add(Access(interaction, patient, (ref,)))


def record_write(work: Work, version: ResourceVersion, previous: ResourceVersion | None) -> None:
    """A create, update or patch the request made: the patients of what it wrote, and of
    what it replaced (a resource moved from one patient to another touched both)."""
    trail = trail_of(work)
    if trail is None or not is_patient_data(version.resource_type):
        return
    patients = _patients(work, version)
    if previous is not None and not previous.deleted and version.resource_type != "Patient":
        patients = tuple(dict.fromkeys((*patients, *_patients(work, previous))))
    ref = _ref(version)
    for patient in patients or (None,):
        trail.add(Access(_WRITES.get(version.method, "update"), patient, (ref,)))


def record_deletion(work: Work, previous: ResourceVersion) -> None:
    trail = trail_of(work)
    if trail is None or not is_patient_data(previous.resource_type):
        return
    ref = f"{previous.resource_type}/{previous.id}"
    for patient in _patients(work, previous) or (None,):
        trail.add(Access("delete", patient, (ref,)))


def covers_patient_data(resource_type: str | None, types: tuple[str, ...] = ()) -> bool:
    """Whether a search or history of ``resource_type`` (None: system-wide, of ``types`` or
    of every type) can find patient data."""
    if resource_type is not None:
        return is_patient_data(resource_type)
    return not types or any(is_patient_data(t) for t in types)


def record_listed(
    work: Work, interaction: str, versions: Iterable[ResourceVersion], *, patient: str | None = None,
    covers: bool = True,
) -> None:
    """A search page, history page or operation answer: one access per patient its
    patient data belongs to. ``patient``: the patient the request names (a compartment,
    ``$everything``), logged even when nothing was found; ``covers``: whether the request
    could find patient data at all (when it found none, one access without a patient)."""
    trail = trail_of(work)
    if trail is None:
        return
    # a deletion shows no content: it names a patient only in that patient's own history
    shown = (v for v in versions if is_patient_data(v.resource_type) and (v.body or v.resource_type == "Patient"))
    groups = by_patient((_ref(v), _patients(work, v)) for v in shown)
    if patient is not None:
        groups.setdefault(patient, [])
    if not groups and covers:
        groups[None] = []
    for who, refs in groups.items():
        trail.add(Access(interaction, who, tuple(refs), trail.query, trail.path))


def step_access(
    method: str, resource_type: str | None, rid: str | None, url: str, *,
    version: str | None = None, history: bool = False,
) -> Access | None:
    """What one request (a Bundle entry) was about, for when it recorded nothing itself
    (refused before it read anything, or it found nothing to change): None when it was
    not about patient data."""
    if not is_patient_data(resource_type):
        return None
    if method in ("GET", "HEAD"):
        if history:
            interaction = "history-instance" if rid else "history-type"
        else:
            interaction = "vread" if version else "read" if rid else "search-type"
    else:
        interaction = {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, "delete")
    path, _, query = url.partition("?")
    return Access(interaction, rid if resource_type == "Patient" and rid else None,
                  (f"{resource_type}/{rid}",) if rid else (), query or None, path)


@contextmanager
def logged_step(trail: AuditTrail | None, url: str, fallback: Access | None, *, last: bool = True) -> Iterator[None]:
    """One Bundle entry (or one step of it): its searches log the entry's query; a failure
    is the outcome of what it recorded (or of ``fallback`` when it recorded nothing).
    Recorded without an outcome, a success takes the whole request's (a transaction
    that fails later fails all of its entries); ``fallback`` stands for the entry's
    success only after its ``last`` step."""
    if trail is None:
        yield
        return
    since, outer = trail.mark(), (trail.path, trail.query)
    trail.path, _, trail.query = url.partition("?")
    try:
        yield
    except FhirError as exc:
        trail.settle(since, exc.status, fallback)
        raise
    else:
        if last and trail.mark() == since and fallback is not None:
            trail.add(fallback)
    finally:
        trail.path, trail.query = outer
