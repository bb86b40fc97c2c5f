"""System search ``GET [base]?`` (_type, _id, _lastUpdated, _tag, _profile,
_security, _source), compartment search ``GET [base]/Patient/{id}/{type}`` and
``Patient/{id}/$everything`` (R4 search.html#all, compartmentdefinition.html,
patient-operation-everything.html)."""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest

from fhir_server.conformance import ig_directory
from fhir_server.engine.guide import guide_content
from tests.integration.search.conftest import all_pages, link, organization, patient, service_request

TAG = "urn:evi:test:tag"
PROFILE = "http://electronichealth.se/fhir/StructureDefinition/EviPatient"
SR_PROFILE = "http://electronichealth.se/fhir/StructureDefinition/EviServiceRequest"
CONF = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
SOURCE = "http://evi.example/source/journal#123"


def _meta(tag=None, profile=None, security=None, source=None) -> dict:
    meta: dict = {}
    if tag:
        meta["tag"] = [{"system": TAG, "code": tag}]
    if profile:
        meta["profile"] = [profile]
    if security:
        meta["security"] = [{"system": CONF, "code": security}]
    if source:
        meta["source"] = source
    return meta


@pytest.fixture(scope="module")
def fhir(own_server):
    own_server.seed(
        patient("pat-a", family="Öberg", given=["Åsa"], managingOrganization={"reference": "Organization/org-a"},
                meta=_meta("alpha", PROFILE, "R", SOURCE)),
        patient("pat-b", family="Lind", meta=_meta("beta", security="N")),
        organization("org-a", "Region Skåne", meta=_meta("alpha")),
        {"resourceType": "Practitioner", "id": "prac-a", "name": [{"family": "Holm"}]},
        service_request("sr-a", "Patient/pat-a", status="active", meta=_meta("alpha", SR_PROFILE),
                        requester={"reference": "Practitioner/prac-a"}),
        service_request("sr-b", "Patient/pat-b", status="active"),
        {"resourceType": "Task", "id": "task-a", "status": "requested", "intent": "order",
         "focus": {"reference": "ServiceRequest/sr-a"}, "for": {"reference": "Patient/pat-a"}},
        {"resourceType": "Observation", "id": "obs-a", "status": "final", "code": {"text": "vikt"},
         "subject": {"reference": "Patient/pat-a"}},
        {"resourceType": "Appointment", "id": "appt-a", "status": "booked",
         "start": "2024-09-02T08:00:00Z", "end": "2024-09-02T08:30:00Z",  # app-3: booked has both
         "participant": [{"actor": {"reference": "Patient/pat-a"}, "status": "accepted"}]},
        {"resourceType": "EpisodeOfCare", "id": "eoc-a", "status": "active", "patient": {"reference": "Patient/pat-a"}},
        {"resourceType": "Slot", "id": "slot-1", "schedule": {"reference": "Schedule/sched-1"}, "status": "free",
         "start": "2024-09-02T08:00:00Z", "end": "2024-09-02T08:30:00Z"},
    )
    first = own_server.bundle("?_count=1000&_sort=-_lastUpdated")
    own_server.marker = max(e["resource"]["meta"]["lastUpdated"] for e in first["entry"] if e["search"]["mode"] == "match")
    time.sleep(0.01)
    own_server.seed(
        patient("pat-late", family="Sen", meta=_meta("late")),
        service_request("sr-late", "Patient/pat-a", status="draft", meta=_meta("late")),
    )
    return own_server


def labels(fhir, query: str) -> set[str]:
    found = all_pages(fhir, query)
    out = [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in found if e["search"]["mode"] == "match"]
    assert len(out) == len(set(out)), out
    return set(out)


BATCH_1 = {
    "Patient/pat-a", "Patient/pat-b", "Organization/org-a", "Practitioner/prac-a", "ServiceRequest/sr-a",
    "ServiceRequest/sr-b", "Task/task-a", "Observation/obs-a", "Appointment/appt-a", "EpisodeOfCare/eoc-a", "Slot/slot-1",
}
BATCH_2 = {"Patient/pat-late", "ServiceRequest/sr-late"}
#: the implementation guide, stored at start-up before any batch (engine/guide.py)
GUIDE = {f"{r['resourceType']}/{r['id']}" for r in guide_content(ig_directory()).resources}

SYSTEM_CASES = [
    (f"?_tag={TAG}|alpha", {"Patient/pat-a", "Organization/org-a", "ServiceRequest/sr-a"}),
    ("?_tag=alpha", {"Patient/pat-a", "Organization/org-a", "ServiceRequest/sr-a"}),
    (f"?_tag={TAG}|alpha,{TAG}|beta", {"Patient/pat-a", "Patient/pat-b", "Organization/org-a", "ServiceRequest/sr-a"}),
    (f"?_tag={TAG}|gamma", set()),
    (f"?_tag=urn:other|alpha", set()),
    (f"?_type=Patient,Organization&_tag={TAG}|alpha", {"Patient/pat-a", "Organization/org-a"}),
    (f"?_type=Patient&_tag:not={TAG}|alpha", {"Patient/pat-b", "Patient/pat-late"}),
    ("?_type=Patient", {"Patient/pat-a", "Patient/pat-b", "Patient/pat-late"}),
    ("?_type=Patient&name=öberg", {"Patient/pat-a"}),
    ("?_type=Slot,Appointment", {"Slot/slot-1", "Appointment/appt-a"}),
    ("?_id=pat-a", {"Patient/pat-a"}),
    ("?_id=pat-a,sr-b,nobody", {"Patient/pat-a", "ServiceRequest/sr-b"}),
    ("?_type=Organization&_id=pat-a", set()),
    (f"?_profile={PROFILE}", {"Patient/pat-a"}),
    (f"?_profile={SR_PROFILE}", {"ServiceRequest/sr-a"}),
    ("?_profile=http://electronichealth.se/fhir/StructureDefinition/EviOther", set()),
    (f"?_security={CONF}|R", {"Patient/pat-a"}),
    (f"?_security={CONF}|N", {"Patient/pat-b"}),
    (f"?_security={CONF}|V", set()),
    (f"?_source={quote(SOURCE, safe=':/')}", {"Patient/pat-a"}),
    ("?_source=http://evi.example/source/journal", set()),
    ("?_lastUpdated=gt{marker}", BATCH_2),
    ("?_lastUpdated=le{marker}", GUIDE | BATCH_1),
    ("?_lastUpdated=gt{marker}&_type=ServiceRequest", {"ServiceRequest/sr-late"}),
    ("?_lastUpdated=le{marker}&_type=ServiceRequest", {"ServiceRequest/sr-a", "ServiceRequest/sr-b"}),
    ("?_lastUpdated=gt2000-01-01&_tag=late", BATCH_2),
    ("?_lastUpdated=lt2000-01-01", set()),
    ("?", GUIDE | BATCH_1 | BATCH_2),
]


@pytest.mark.parametrize("query,expected", SYSTEM_CASES, ids=[c[0] for c in SYSTEM_CASES])
def test_system_search(fhir, query, expected):
    assert labels(fhir, query.replace("{marker}", quote(fhir.marker, safe=":"))) == expected


def test_system_search_total(fhir):
    body = fhir.bundle(f"?_tag={TAG}|alpha&_count=1")
    assert body["total"] == 3
    assert link(body, "next")
    assert link(body, "self").startswith(fhir.base_url)


def test_system_search_unknown_type_is_400(fhir):
    r = fhir.get("?_type=NotAType")
    assert r.status_code == 400, r.text


COMPARTMENT_CASES = [
    ("Patient/pat-a/ServiceRequest", {"ServiceRequest/sr-a", "ServiceRequest/sr-late"}),
    ("Patient/pat-a/ServiceRequest?status=active", {"ServiceRequest/sr-a"}),
    ("Patient/pat-a/ServiceRequest?status=completed", set()),
    ("Patient/pat-a/ServiceRequest?_tag=late", {"ServiceRequest/sr-late"}),
    ("Patient/pat-a/Observation", {"Observation/obs-a"}),
    ("Patient/pat-a/Appointment", {"Appointment/appt-a"}),
    ("Patient/pat-a/EpisodeOfCare", {"EpisodeOfCare/eoc-a"}),
    ("Patient/pat-b/ServiceRequest", {"ServiceRequest/sr-b"}),
    ("Patient/nobody/ServiceRequest", set()),
    ("Patient/pat-a/*", {"Patient/pat-a", "ServiceRequest/sr-a", "ServiceRequest/sr-late",
                         "Observation/obs-a", "Appointment/appt-a", "EpisodeOfCare/eoc-a"}),
    ("Practitioner/prac-a/ServiceRequest", {"ServiceRequest/sr-a"}),
]


@pytest.mark.parametrize("query,expected", COMPARTMENT_CASES, ids=[c[0] for c in COMPARTMENT_CASES])
def test_compartment_search(fhir, query, expected):
    assert labels(fhir, query) == expected


def test_compartment_self_link(fhir):
    body = fhir.bundle("Patient/pat-a/ServiceRequest?status=active")
    assert link(body, "self").startswith(f"{fhir.base_url}/Patient/pat-a/ServiceRequest")


@pytest.mark.parametrize("query", ["Patient/pat-a/Organization", "Patient/pat-a/Task"])
def test_type_outside_the_compartment_is_refused(fhir, query):
    """Neither Organization nor Task is in the R4 Patient compartment."""
    r = fhir.get(query)
    assert r.status_code in (400, 404), r.text
    assert r.json()["resourceType"] == "OperationOutcome"


# Task is not in the R4 Patient compartment
EVERYTHING_A = {"Patient/pat-a", "ServiceRequest/sr-a", "ServiceRequest/sr-late", "Observation/obs-a",
                "Appointment/appt-a", "EpisodeOfCare/eoc-a"}


def test_everything_has_the_patient_and_its_compartment(fhir):
    found = labels(fhir, "Patient/pat-a/$everything")
    assert EVERYTHING_A <= found
    assert not {"Patient/pat-b", "ServiceRequest/sr-b", "Slot/slot-1", "Patient/pat-late"} & found


def test_everything_includes_referenced_resources(fhir):
    """The operation SHOULD also return resources the compartment refers to (the
    managing Organization, the requesting Practitioner)."""
    found = labels(fhir, "Patient/pat-a/$everything") | {
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in all_pages(fhir, "Patient/pat-a/$everything") if e["search"]["mode"] == "include"
    }
    assert {"Organization/org-a", "Practitioner/prac-a"} <= found


def test_everything_pages(fhir):
    entries = all_pages(fhir, "Patient/pat-a/$everything?_count=2")
    ids = [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in entries if e["search"]["mode"] == "match"]
    assert len(ids) == len(set(ids))
    assert EVERYTHING_A <= set(ids)


def test_everything_type_and_since(fhir):
    assert labels(fhir, "Patient/pat-a/$everything?_type=ServiceRequest") == {"ServiceRequest/sr-a", "ServiceRequest/sr-late"}
    since = labels(fhir, f"Patient/pat-a/$everything?_since={quote(fhir.marker, safe=':')}")
    assert "ServiceRequest/sr-late" in since
    assert not {"ServiceRequest/sr-a", "Observation/obs-a", "Patient/pat-a"} & since


def test_everything_other_patient(fhir):
    found = labels(fhir, "Patient/pat-b/$everything")
    assert {"Patient/pat-b", "ServiceRequest/sr-b"} <= found
    assert not {"Patient/pat-a", "ServiceRequest/sr-a", "Observation/obs-a"} & found


def test_everything_unknown_patient_is_404(fhir):
    r = fhir.get("Patient/nobody/$everything")
    assert r.status_code == 404, r.text
