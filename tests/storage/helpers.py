"""Helpers for the shared storage suite: store resource dicts, run searches.

Everything goes through the Store protocol (``unit_of_work``, ``write``, ``search``,
...) so that every backend runs the same tests unchanged.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from functools import lru_cache

from fhir_server.model.meta import stamp_meta
from fhir_server.search import SearchRegistry, extract_index, parse_search
from fhir_server.search.index import IndexSet
from fhir_server.storage import ResourceVersion

#: this server's base url: absolute references to it are local ones
BASE = "http://evi.example/fhir"


@lru_cache(maxsize=1)
def registry() -> SearchRegistry:
    """The spec's parameters, every supported one indexed (shared: building it is cheap, extractors are cached)."""
    return SearchRegistry.from_spec()


def instant(n: int) -> str:
    """A fixed-width UTC instant, ``n`` seconds after 2026-01-01T00:00:00Z (n < 86400)."""
    h, rest = divmod(n, 3600)
    m, s = divmod(rest, 60)
    return f"2026-01-01T{h:02d}:{m:02d}:{s:02d}.000000Z"


def stamp(resource: dict, version_id: int, last_updated: str) -> dict:
    """The resource as the server stores it: id first, meta.versionId/lastUpdated set."""
    return stamp_meta(resource, resource["id"], version_id, last_updated)


def index_of(resource: dict, reg: SearchRegistry | None = None) -> IndexSet:
    return extract_index(reg or registry(), resource, BASE)


def version_of(resource: dict, version_id: int, last_updated: str, method: str = "PUT") -> ResourceVersion:
    return ResourceVersion(
        resource["resourceType"], resource["id"], version_id, last_updated, False, method,
        json.dumps(resource, sort_keys=False).encode(),
    )


def put(uow, resource: dict, *, version_id: int = 1, last_updated: str | None = None, reg: SearchRegistry | None = None) -> dict:
    """Stamp ``resource`` (a dict with resourceType and id), index it and write it as ``version_id``."""
    stored = stamp(copy.deepcopy(resource), version_id, last_updated or instant(version_id))
    method = "POST" if version_id == 1 else "PUT"
    uow.write(version_of(stored, version_id, stored["meta"]["lastUpdated"], method), index_of(stored, reg))
    return stored


def delete(uow, resource_type: str, id: str, *, version_id: int, last_updated: str) -> None:
    """Write a deletion as version ``version_id`` (no index)."""
    uow.write(ResourceVersion(resource_type, id, version_id, last_updated, True, "DELETE", None), None)


def plan(resource_type: str | None, params: list[tuple[str, str]], *, extra_clauses: tuple = (), types: tuple = (),
         reg: SearchRegistry | None = None):
    """The search plan of a query (unknown parameters fail the test); ``extra_clauses`` go first."""
    p = parse_search(resource_type, list(params), reg or registry(), base_url=BASE, max_count=10_000)
    assert not p.unknown, f"the plan has unknown parameters: {p.unknown}"
    if extra_clauses or types:
        p = dataclasses.replace(p, clauses=(*extra_clauses, *p.clauses), types=types or p.types)
    return p


def search(store, resource_type: str | None, params: list[tuple[str, str]], *, with_total: bool = True,
           limit: int | None = None, offset: int | None = None, extra_clauses: tuple = (), types: tuple = (),
           reg: SearchRegistry | None = None):
    p = plan(resource_type, params, extra_clauses=extra_clauses, types=types, reg=reg)
    with store.unit_of_work(write=False) as uow:
        return uow.search(p, with_total=with_total, limit=limit, offset=offset)


def search_ids(store, resource_type: str, params: list[tuple[str, str]], **kw) -> list[str]:
    return search(store, resource_type, params, **kw).ids


def search_refs(store, resource_type: str | None, params: list[tuple[str, str]], **kw) -> list[tuple[str, str]]:
    return [tuple(r) for r in search(store, resource_type, params, **kw).refs]


# -- a small realistic dataset (a child/adolescent mental-health referral flow) ------------

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
HSA = "urn:oid:1.2.752.29.4.19"
PNR = "http://electronichealth.se/identifier/personnummer"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
CANONICAL = "http://canonical.example/fhir/PlanDefinition/bup-intake"

ORGANIZATIONS = [
    {"resourceType": "Organization", "id": "org-a", "active": True,
     "identifier": [{"system": HSA, "value": "SE2321000016-1000"}],
     "name": "Barn- och ungdomspsykiatri Stockholm",
     "address": [{"city": "Stockholm", "postalCode": "11122"}],
     "partOf": {"reference": "Organization/org-region"}},
    {"resourceType": "Organization", "id": "org-b", "active": False,
     "identifier": [{"system": HSA, "value": "SE2321000016-2000"}],
     "name": "Ängelholms vårdcentral",
     "address": [{"city": "Ängelholm"}],
     "partOf": {"reference": "Organization/org-region"}},
    {"resourceType": "Organization", "id": "org-region", "name": "Region Stockholm"},
]

PATIENTS = [
    {"resourceType": "Patient", "id": "pat-1", "active": True,
     "identifier": [{"system": PNR, "value": "201203042385",
                     "type": {"coding": [{"system": V2_0203, "code": "NI"}], "text": "Personnummer"}}],
     "name": [{"use": "official", "family": "Öberg", "given": ["Åsa", "Maria"]}],
     "telecom": [{"system": "email", "value": "asa@example.se"}],
     "gender": "female", "birthDate": "2012-03-04",
     "address": [{"line": ["Storgatan 1"], "city": "Stockholm", "postalCode": "11122"}],
     "managingOrganization": {"reference": "Organization/org-a"}},
    {"resourceType": "Patient", "id": "pat-2", "active": False,
     "identifier": [{"system": "urn:oid:1.2.752.129.2.1.3.1", "value": "191212121212",
                     "type": {"coding": [{"system": V2_0203, "code": "MR"}]}}],
     "name": [{"family": "Oberg", "given": ["Erik"]}],
     "gender": "male", "birthDate": "2010",
     # an absolute reference to this server's own base: a local reference
     "managingOrganization": {"reference": f"{BASE}/Organization/org-b"}},
    {"resourceType": "Patient", "id": "pat-3", "active": True,
     "identifier": [{"system": PNR, "value": "201506152386"}],
     "name": [{"family": "Andersson", "given": ["Lisa"]}],
     "gender": "female", "birthDate": "2015-06"},
    {"resourceType": "Patient", "id": "pat-4",
     "name": [{"text": "Nils Berg", "family": "Berg", "given": ["Nils"]}],
     "birthDate": "2011-12-31",
     # an absolute reference to another server: never a local one
     "managingOrganization": {"reference": "http://other.example/fhir/Organization/org-a"}},
]

#: written, then deleted: must never match
DELETED_PATIENT = {
    "resourceType": "Patient", "id": "pat-del", "active": True,
    "identifier": [{"system": PNR, "value": "201203042385"}],
    "name": [{"family": "Öberg", "given": ["Åsa"]}], "gender": "female", "birthDate": "2012-03-04",
    "managingOrganization": {"reference": "Organization/org-a"},
}

SERVICE_REQUESTS = [
    {"resourceType": "ServiceRequest", "id": "sr-1", "status": "active", "intent": "order",
     "identifier": [{"system": "urn:evi:referral", "value": "R-1"}],
     "instantiatesCanonical": [f"{CANONICAL}|1.0"],
     "code": {"coding": [{"system": SNOMED, "code": "386053000", "display": "Evaluation procedure"}]},
     "subject": {"reference": "Patient/pat-1"},
     "authoredOn": "2026-03-01T09:30:00+01:00",
     "occurrencePeriod": {"start": "2026-03-10", "end": "2026-03-20"},
     "requester": {"reference": "Organization/org-b"},
     "performer": [{"reference": "Organization/org-a"}]},
    {"resourceType": "ServiceRequest", "id": "sr-2", "status": "completed", "intent": "order",
     "identifier": [{"system": "urn:evi:referral", "value": "R-2"}],
     "contained": [{"resourceType": "Practitioner", "id": "p1", "name": [{"family": "Lund"}]}],
     "code": {"coding": [{"system": SNOMED, "code": "386053000"}], "text": "Neuropsychiatric assessment"},
     "subject": {"reference": "Patient/pat-2"},
     "authoredOn": "2026-02-15",
     "occurrenceDateTime": "2026-02-20T14:00:00Z",
     # a logical reference (identifier only) and a contained one: neither is a local target
     "requester": {"identifier": {"system": HSA, "value": "SE2321000016-1000"}, "display": "BUP Stockholm"},
     "performer": [{"reference": "#p1"}]},
    {"resourceType": "ServiceRequest", "id": "sr-3", "status": "draft", "intent": "plan",
     "instantiatesCanonical": [f"{BASE}/PlanDefinition/local-intake|2.0"],
     "code": {"text": "Family therapy"},
     "subject": {"reference": "Patient/pat-3"},
     "basedOn": [{"reference": "ServiceRequest/sr-1"}],
     "occurrenceTiming": {"event": ["2026-04-08T10:00:00Z", "2026-04-01T10:00:00Z"]}},
]

TASKS = [
    {"resourceType": "Task", "id": "task-1", "status": "requested", "intent": "order",
     "focus": {"reference": "ServiceRequest/sr-1"}, "for": {"reference": "Patient/pat-1"},
     "owner": {"reference": "Organization/org-a"},
     "authoredOn": "2026-03-02T08:00:00Z", "executionPeriod": {"start": "2026-03-02"}},
    {"resourceType": "Task", "id": "task-2", "status": "completed", "intent": "order",
     "focus": {"reference": "ServiceRequest/sr-2"}, "for": {"reference": "Patient/pat-2"},
     "owner": {"reference": "Organization/org-b"},
     "authoredOn": "2026-02-16T10:00:00Z",
     "executionPeriod": {"start": "2026-02-16", "end": "2026-02-20"}},
    {"resourceType": "Task", "id": "task-3", "status": "cancelled", "intent": "order",
     "focus": {"reference": "ServiceRequest/sr-3"}, "for": {"reference": "Patient/pat-3"},
     "partOf": [{"reference": "Task/task-1"}],
     "authoredOn": "2026-03-02T08:00:00Z"},
]


def _obs(id: str, code: str, display: str, subject: str, **rest) -> dict:
    return {"resourceType": "Observation", "id": id, "status": rest.pop("status", "final"),
            "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
            "subject": {"reference": subject}, **rest}


OBSERVATIONS = [
    _obs("obs-1", "8302-2", "Body height", "Patient/pat-1", effectiveDateTime="2026-03-05T10:00:00Z",
         valueQuantity={"value": 152, "unit": "cm", "system": UCUM, "code": "cm"}),
    _obs("obs-2", "29463-7", "Body weight", "Patient/pat-1/_history/1", effectiveDateTime="2026-03-05",
         valueQuantity={"value": 42.5, "unit": "kg", "system": UCUM, "code": "kg"}),
    _obs("obs-3", "85354-9", "Blood pressure panel", "Patient/pat-2",
         effectivePeriod={"start": "2026-01-10T08:00:00Z", "end": "2026-01-10T08:30:00Z"},
         component=[
             {"code": {"coding": [{"system": LOINC, "code": "8480-6", "display": "Systolic blood pressure"}]},
              "valueQuantity": {"value": 120, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}},
             {"code": {"coding": [{"system": LOINC, "code": "8462-4", "display": "Diastolic blood pressure"}]},
              "valueQuantity": {"value": 80, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}},
         ]),
    _obs("obs-4", "29463-7", "Body weight", "Patient/pat-3", effectiveDateTime="2025-12-24",
         valueQuantity={"value": 5000, "unit": "g", "system": UCUM, "code": "g"}),
    _obs("obs-5", "93832-4", "Sleep duration", "Patient/pat-2", effectiveDateTime="2026-02-01T07:00:00+01:00",
         valueQuantity={"value": 90, "unit": "min", "system": UCUM, "code": "min"}),
    _obs("obs-6", "72166-2", "Mood", "Patient/pat-1", status="preliminary", valueString="Trött och nedstämd"),
    _obs("obs-7", "44261-6", "PHQ-9 total score", "Patient/pat-3",
         valueQuantity={"value": 7, "unit": "points"}),
    # the subject is deleted: chains through it never match
    _obs("obs-8", "29463-7", "Body weight", "Patient/pat-del",
         valueQuantity={"value": 30, "unit": "kg", "system": UCUM, "code": "kg"}),
]

#: written, then deleted: must never match (its subject pat-4 must not gain a _has match)
DELETED_OBSERVATION = _obs("obs-del", "29463-7", "Body weight", "Patient/pat-4",
                           valueQuantity={"value": 40, "unit": "kg", "system": UCUM, "code": "kg"})

RISK_ASSESSMENTS = [
    {"resourceType": "RiskAssessment", "id": "ra-1", "status": "final", "subject": {"reference": "Patient/pat-1"},
     "prediction": [{"probabilityDecimal": 0.8}]},
    {"resourceType": "RiskAssessment", "id": "ra-2", "status": "final", "subject": {"reference": "Patient/pat-2"},
     "prediction": [{"probabilityRange": {"low": {"value": 0.2}, "high": {"value": 0.4}}}]},
    {"resourceType": "RiskAssessment", "id": "ra-3", "status": "final", "subject": {"reference": "Patient/pat-3"},
     "prediction": [{"probabilityDecimal": 0.25}]},
]

VALUE_SETS = [
    {"resourceType": "ValueSet", "id": "vs-1", "url": "http://evi.example/fhir/ValueSet/referral-reasons",
     "version": "1.0", "name": "ReferralReasons", "status": "active"},
    {"resourceType": "ValueSet", "id": "vs-2", "url": "http://evi.example/fhir/ValueSet/referral-reasons/child",
     "version": "1.0", "name": "ChildReferralReasons", "status": "draft"},
    {"resourceType": "ValueSet", "id": "vs-3", "url": "http://hl7.org/fhir/ValueSet/administrative-gender",
     "version": "4.0.1", "name": "AdministrativeGender", "status": "active"},
    {"resourceType": "ValueSet", "id": "vs-4", "url": "http://evi.example/fhir/ValueSet/anthropometry",
     "name": "Anthropometry", "status": "active",
     "compose": {"include": [{"system": LOINC, "concept": [{"code": "8302-2"}, {"code": "29463-7"}]}]}},
]

DATASET = [*ORGANIZATIONS, *PATIENTS, *SERVICE_REQUESTS, *TASKS, *OBSERVATIONS, *RISK_ASSESSMENTS, *VALUE_SETS]


@lru_cache(maxsize=1)
def _dataset_writes() -> tuple:
    """The dataset's versions and index sets, built once (extraction is the slow part)."""
    writes = []
    for n, resource in enumerate([*DATASET, DELETED_PATIENT, DELETED_OBSERVATION]):
        stored = stamp(copy.deepcopy(resource), 1, instant(n))
        writes.append((version_of(stored, 1, stored["meta"]["lastUpdated"], "POST"), index_of(stored)))
    n = len(writes)
    deletions = (
        ResourceVersion("Patient", "pat-del", 2, instant(n), True, "DELETE", None),
        ResourceVersion("Observation", "obs-del", 2, instant(n + 1), True, "DELETE", None),
    )
    return tuple(writes), deletions


def store_dataset(store) -> None:
    """Write the dataset (version 1 each, one second apart from instant(0)), then delete pat-del and obs-del."""
    writes, deletions = _dataset_writes()
    with store.unit_of_work(write=True) as uow:
        for version, index in writes:
            uow.write(version, index)
    with store.unit_of_work(write=True) as uow:
        for version in deletions:
            uow.write(version, None)


# -- table-driven cases ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    resource_type: str | None
    params: list
    expected: list


def case(resource_type: str | None, params, expected: list, id: str) -> Case:
    """One row of a table: a query (one (name, value) pair or a list) and the exact ids expected, in order."""
    return Case(id, resource_type, [params] if isinstance(params, tuple) else list(params), expected)


def check_cases(store, cases: list[Case]) -> None:
    """Run every case against ``store`` (one store and dataset for the whole table: the
    backends' setup dominates the suite's time) and report every mismatch at once."""
    failures = []
    for c in cases:
        try:
            got = search_ids(store, c.resource_type, c.params)
        except Exception as exc:  # noqa: BLE001 - reported with the case it belongs to
            got = f"{type(exc).__name__}: {exc}"
        if got != c.expected:
            failures.append(f"[{c.id}] {c.resource_type}?{'&'.join(f'{k}={v}' for k, v in c.params)}\n"
                            f"    expected {c.expected}\n    got      {got}")
    assert not failures, f"{len(failures)} of {len(cases)} cases failed:\n" + "\n".join(failures)
