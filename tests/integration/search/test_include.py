"""_include (with target type and ``*``), _include:iterate and _revinclude
(R4 search.html#include): included resources come with search.mode=include, are
not counted in total, appear once, and never repeat a match."""

from __future__ import annotations

import pytest

from tests.integration.search.conftest import entries, included, match_ids, organization, patient, service_request


@pytest.fixture(scope="module")
def fhir(own_server):
    own_server.seed(
        organization("org-parent", "Region Skåne"),
        organization("org-1", "Skånes universitetssjukhus", partOf={"reference": "Organization/org-parent"}),
        organization("org-2", "Labmedicin Skåne"),
        patient("pat-1", family="Öberg", managingOrganization={"reference": "Organization/org-1"}),
        patient("pat-2", family="Lind", managingOrganization={"reference": "Organization/org-1"}),
        {"resourceType": "Practitioner", "id": "prac-1", "name": [{"family": "Holm"}]},
        {"resourceType": "Group", "id": "grp-1", "type": "person", "actual": True},
        service_request("sr-1", "Patient/pat-1", requester={"reference": "Practitioner/prac-1"},
                        performer=[{"reference": "Organization/org-2"}]),
        service_request("sr-2", "Patient/pat-2"),
        service_request("sr-3", "Group/grp-1"),
        service_request("sr-dangling", "Patient/does-not-exist"),
        {"resourceType": "Task", "id": "task-1", "status": "requested", "intent": "order",
         "focus": {"reference": "ServiceRequest/sr-1"}, "for": {"reference": "Patient/pat-1"},
         "owner": {"reference": "Organization/org-2"}},
        {"resourceType": "Task", "id": "task-2", "status": "requested", "intent": "order",
         "focus": {"reference": "ServiceRequest/sr-2"}, "partOf": [{"reference": "Task/task-1"}]},
        {"resourceType": "Schedule", "id": "sched-1", "actor": [{"reference": "Practitioner/prac-1"}]},
        {"resourceType": "Slot", "id": "slot-1", "schedule": {"reference": "Schedule/sched-1"}, "status": "busy",
         "start": "2024-09-02T08:00:00+02:00", "end": "2024-09-02T08:30:00+02:00"},
        {"resourceType": "Appointment", "id": "appt-1", "status": "booked", "slot": [{"reference": "Slot/slot-1"}],
         "start": "2024-09-02T08:00:00+02:00", "end": "2024-09-02T08:30:00+02:00",  # app-3: booked has both
         "basedOn": [{"reference": "ServiceRequest/sr-1"}],
         "participant": [{"actor": {"reference": "Patient/pat-1"}, "status": "accepted"},
                         {"actor": {"reference": "Practitioner/prac-1"}, "status": "accepted"}]},
    )
    return own_server


CASES = [
    # (query, matches, included)
    ("ServiceRequest?_id=sr-1&_include=ServiceRequest:subject", {"sr-1"}, {"Patient/pat-1"}),
    ("ServiceRequest?_id=sr-1&_include=ServiceRequest:subject:Patient", {"sr-1"}, {"Patient/pat-1"}),
    ("ServiceRequest?_id=sr-1&_include=ServiceRequest:subject:Group", {"sr-1"}, set()),
    ("ServiceRequest?_id=sr-1,sr-3&_include=ServiceRequest:subject:Group", {"sr-1", "sr-3"}, {"Group/grp-1"}),
    ("ServiceRequest?_id=sr-1&_include=ServiceRequest:requester", {"sr-1"}, {"Practitioner/prac-1"}),
    ("ServiceRequest?_id=sr-1&_include=ServiceRequest:requester&_include=ServiceRequest:performer",
     {"sr-1"}, {"Practitioner/prac-1", "Organization/org-2"}),
    ("ServiceRequest?_id=sr-1&_include=ServiceRequest:*", {"sr-1"},
     {"Patient/pat-1", "Practitioner/prac-1", "Organization/org-2"}),
    ("ServiceRequest?_id=sr-1&_include=*", {"sr-1"}, {"Patient/pat-1", "Practitioner/prac-1", "Organization/org-2"}),
    # a reference to a resource that does not exist includes nothing
    ("ServiceRequest?_id=sr-dangling&_include=ServiceRequest:subject", {"sr-dangling"}, set()),
    # two patients share an organization: included once
    ("Patient?_id=pat-1,pat-2&_include=Patient:organization", {"pat-1", "pat-2"}, {"Organization/org-1"}),
    # without :iterate an include only starts from the matches
    ("ServiceRequest?_id=sr-1&_include=ServiceRequest:subject&_include=Patient:organization", {"sr-1"}, {"Patient/pat-1"}),
    ("ServiceRequest?_id=sr-1&_include=ServiceRequest:subject&_include:iterate=Patient:organization",
     {"sr-1"}, {"Patient/pat-1", "Organization/org-1"}),
    ("Task?_id=task-1&_include=Task:focus&_include:iterate=ServiceRequest:subject"
     "&_include:iterate=Patient:organization&_include:iterate=Organization:partof",
     {"task-1"}, {"ServiceRequest/sr-1", "Patient/pat-1", "Organization/org-1", "Organization/org-parent"}),
    ("Appointment?_id=appt-1&_include=Appointment:slot&_include:iterate=Slot:schedule&_include:iterate=Schedule:actor",
     {"appt-1"}, {"Slot/slot-1", "Schedule/sched-1", "Practitioner/prac-1"}),
    ("Appointment?_id=appt-1&_include=Appointment:patient", {"appt-1"}, {"Patient/pat-1"}),
    ("Appointment?_id=appt-1&_include=Appointment:actor", {"appt-1"}, {"Patient/pat-1", "Practitioner/prac-1"}),
    # self-referencing type: a match is never repeated as an include
    ("Task?_id=task-2&_include=Task:part-of", {"task-2"}, {"Task/task-1"}),
    ("Task?_id=task-1,task-2&_include=Task:part-of", {"task-1", "task-2"}, set()),
    # _revinclude
    ("Patient?_id=pat-1&_revinclude=ServiceRequest:subject", {"pat-1"}, {"ServiceRequest/sr-1"}),
    ("Patient?_id=pat-1&_revinclude=ServiceRequest:patient", {"pat-1"}, {"ServiceRequest/sr-1"}),
    ("Patient?_id=pat-1&_revinclude=Task:patient", {"pat-1"}, {"Task/task-1"}),
    ("Patient?_id=pat-1&_revinclude=Appointment:actor", {"pat-1"}, {"Appointment/appt-1"}),
    ("Patient?_id=pat-1&_revinclude=ServiceRequest:subject&_revinclude:iterate=Task:focus",
     {"pat-1"}, {"ServiceRequest/sr-1", "Task/task-1"}),
    ("Patient?_id=pat-1&_revinclude=ServiceRequest:subject&_revinclude=Task:focus",
     {"pat-1"}, {"ServiceRequest/sr-1"}),
    ("Organization?_id=org-1&_revinclude=Patient:organization", {"org-1"}, {"Patient/pat-1", "Patient/pat-2"}),
    ("Organization?_id=org-parent&_revinclude=Organization:partof", {"org-parent"}, {"Organization/org-1"}),
    ("Organization?_id=org-parent&_revinclude:iterate=Organization:partof&_revinclude:iterate=Patient:organization",
     {"org-parent"}, {"Organization/org-1", "Patient/pat-1", "Patient/pat-2"}),
    ("Group?_id=grp-1&_revinclude=ServiceRequest:subject", {"grp-1"}, {"ServiceRequest/sr-3"}),
    ("Patient?_id=pat-2&_revinclude=Appointment:actor", {"pat-2"}, set()),
    # include and revinclude together
    ("ServiceRequest?_id=sr-1&_include=ServiceRequest:subject&_revinclude=Task:focus",
     {"sr-1"}, {"Patient/pat-1", "Task/task-1"}),
    # no matches, nothing included
    ("ServiceRequest?subject=Patient/nobody&_include=ServiceRequest:subject", set(), set()),
]


@pytest.mark.parametrize("query,matches,expected_included", CASES, ids=[c[0] for c in CASES])
def test_include(fhir, query, matches, expected_included):
    body = fhir.bundle(query)
    assert set(match_ids(body)) == matches
    assert included(body) == expected_included
    # total counts matches only; every resource appears once
    assert body["total"] == len(matches)
    keys = [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in entries(body) if e["search"]["mode"] != "outcome"]
    assert len(keys) == len(set(keys)), keys
    for e in entries(body, "include"):
        assert e["fullUrl"] == f"{fhir.base_url}/{e['resource']['resourceType']}/{e['resource']['id']}"


def test_include_on_every_page(fhir):
    """Each page carries the includes of its own matches."""
    body = fhir.bundle("ServiceRequest?_id=sr-1,sr-2,sr-3&_include=ServiceRequest:subject&_sort=_id&_count=1")
    seen = []
    while True:
        assert len(match_ids(body)) == 1
        seen.append((match_ids(body)[0], included(body)))
        nxt = next((l["url"] for l in body["link"] if l["relation"] == "next"), None)
        if not nxt:
            break
        body = fhir.bundle(nxt)
    assert seen == [("sr-1", {"Patient/pat-1"}), ("sr-2", {"Patient/pat-2"}), ("sr-3", {"Group/grp-1"})]


ERRORS = [
    "ServiceRequest?_include=ServiceRequest:status",  # not a reference parameter
    "ServiceRequest?_include=NotAType:subject",
    "ServiceRequest?_include=ServiceRequest",
    "ServiceRequest?_include=ServiceRequest:subject:NotAType",
    "ServiceRequest?_include:deep=ServiceRequest:subject",
    "Patient?_revinclude=ServiceRequest:status",
]


@pytest.mark.parametrize("query", ERRORS)
def test_include_invalid_is_400(fhir, query):
    r = fhir.get(query)
    assert r.status_code == 400, f"{query}: {r.status_code} {r.text}"
