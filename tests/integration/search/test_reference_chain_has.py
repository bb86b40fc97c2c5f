"""reference parameters (R4 search.html#reference), chaining (#chaining) and
reverse chaining with _has (#has).

References: ``Type/id``, a bare id, an absolute url on this server's own base
(local), a foreign absolute url (not local), the ``:Type`` modifier,
``:identifier`` (Reference.identifier). Chains one and two levels deep with and
without a type modifier; _has single, nested, combined.
"""

from __future__ import annotations

import pytest

from tests.integration.search.conftest import HSA, PNR, organization, patient, service_request

FOREIGN = "http://other.example/fhir"


@pytest.fixture(scope="module")
def fhir(own_server):
    base = own_server.base_url
    own_server.seed(
        patient("pat-asa", pnr="191212121212", family="Öberg", given=["Åsa"], managingOrganization={"reference": "Organization/org-sus"}),
        patient("pat-erik", pnr="198001019879", family="Lind", given=["Erik"]),
        patient("pat-ingen", pnr="200001012384", family="Ingensson"),
        organization("org-sus", "Skånes universitetssjukhus", hsa="SE2321000081-1"),
        organization("org-ks", "Karolinska Universitetssjukhuset", hsa="SE2321000016-1"),
        {"resourceType": "Practitioner", "id": "prac-holm", "name": [{"family": "Holm", "given": ["Lena"]}]},
        {"resourceType": "Group", "id": "grp-1", "type": "person", "actual": True},
        service_request("sr-asa-1", "Patient/pat-asa", status="active",
                        requester={"reference": "Organization/org-sus"}, performer=[{"reference": "Organization/org-ks"}]),
        service_request("sr-asa-2", "Patient/pat-asa", status="completed",
                        requester={"reference": "Practitioner/prac-holm"}),
        service_request("sr-erik", "Patient/pat-erik", status="active",
                        requester={"reference": "Organization/org-ks"}, performer=[{"reference": "Organization/org-sus"}]),
        # an absolute reference to this server's own base is local
        service_request("sr-abs", f"{base}/Patient/pat-erik", status="on-hold"),
        # a logical reference (identifier only)
        service_request("sr-ident", {"identifier": {"system": PNR, "value": "191212121212"}}, status="draft"),
        service_request("sr-group", "Group/grp-1", status="active"),
        # a reference to another server is not local, even with the same Type/id
        service_request("sr-ext", f"{FOREIGN}/Patient/pat-asa", status="active"),
        {"resourceType": "Task", "id": "task-1", "status": "requested", "intent": "order",
         "focus": {"reference": "ServiceRequest/sr-asa-1"}, "for": {"reference": "Patient/pat-asa"},
         "owner": {"reference": "Organization/org-ks"}},
        {"resourceType": "Task", "id": "task-2", "status": "accepted", "intent": "order",
         "focus": {"reference": "ServiceRequest/sr-erik"}, "for": {"reference": "Patient/pat-erik"},
         "owner": {"reference": "Organization/org-sus"}},
        {"resourceType": "Task", "id": "task-3", "status": "completed", "intent": "order",
         "focus": {"reference": "ServiceRequest/sr-asa-2"}, "for": {"reference": "Patient/pat-asa"},
         "owner": {"reference": "Practitioner/prac-holm"}},
        {"resourceType": "EpisodeOfCare", "id": "eoc-asa", "status": "active",
         "patient": {"reference": "Patient/pat-asa"}, "managingOrganization": {"reference": "Organization/org-sus"}},
    )
    return own_server


ASA_SR = {"sr-asa-1", "sr-asa-2"}
ERIK_SR = {"sr-erik", "sr-abs"}

REFERENCE_CASES = [
    ("ServiceRequest?subject=Patient/pat-asa", ASA_SR),
    ("ServiceRequest?subject=pat-asa", ASA_SR),
    ("ServiceRequest?subject={base}/Patient/pat-asa", ASA_SR),
    ("ServiceRequest?subject=Patient/pat-erik", ERIK_SR),
    ("ServiceRequest?subject={base}/Patient/pat-erik", ERIK_SR),
    ("ServiceRequest?subject:Patient=pat-erik", ERIK_SR),
    ("ServiceRequest?subject:Group=pat-erik", set()),
    ("ServiceRequest?subject:Group=grp-1", {"sr-group"}),
    ("ServiceRequest?subject=Group/grp-1", {"sr-group"}),
    ("ServiceRequest?subject=Patient/grp-1", set()),
    ("ServiceRequest?subject=Patient/nobody", set()),
    ("ServiceRequest?subject=Patient/pat-asa,Patient/pat-erik", ASA_SR | ERIK_SR),
    ("ServiceRequest?patient=pat-asa", ASA_SR),
    ("ServiceRequest?patient=grp-1", set()),  # patient = subject where it is a Patient
    (f"ServiceRequest?subject={FOREIGN}/Patient/pat-asa", {"sr-ext"}),
    ("ServiceRequest?subject=http://third.example/fhir/Patient/pat-asa", set()),
    (f"ServiceRequest?subject:identifier={PNR}|191212121212", {"sr-ident"}),
    (f"ServiceRequest?subject:identifier={PNR}|198001019879", set()),
    ("ServiceRequest?requester=Organization/org-sus", {"sr-asa-1"}),
    ("ServiceRequest?requester:Practitioner=prac-holm", {"sr-asa-2"}),
    ("ServiceRequest?requester:Organization=prac-holm", set()),
    ("ServiceRequest?performer=org-ks", {"sr-asa-1"}),
    ("ServiceRequest?subject=Patient/pat-asa&status=completed", {"sr-asa-2"}),
    ("Task?owner=Organization/org-ks", {"task-1"}),
    ("Task?focus=ServiceRequest/sr-erik", {"task-2"}),
    ("Task?patient=pat-asa", {"task-1", "task-3"}),
    ("Task?subject=Patient/pat-erik", {"task-2"}),
    ("Patient?organization=org-sus", {"pat-asa"}),
    ("EpisodeOfCare?organization=Organization/org-sus&patient=pat-asa", {"eoc-asa"}),
]

CHAIN_CASES = [
    (f"ServiceRequest?subject.identifier={PNR}|191212121212", ASA_SR),  # not sr-ident, not sr-ext
    ("ServiceRequest?subject.identifier=198001019879", ERIK_SR),
    ("ServiceRequest?subject:Patient.name=öberg", ASA_SR),
    ("ServiceRequest?subject:Patient.name=OBERG", ASA_SR),
    ("ServiceRequest?subject:Patient.name=lind", ERIK_SR),
    ("ServiceRequest?subject.name=nobody", set()),
    ("ServiceRequest?subject:Patient.name=lind,öberg", ASA_SR | ERIK_SR),
    ("ServiceRequest?subject:Patient.name=lind&subject:Patient.name=öberg", set()),
    (f"ServiceRequest?patient.identifier={PNR}|191212121212", ASA_SR),
    ("ServiceRequest?requester:Organization.name=skanes", {"sr-asa-1"}),
    ("ServiceRequest?requester:Practitioner.name=holm", {"sr-asa-2"}),
    ("ServiceRequest?requester:Organization.name=holm", set()),
    ("ServiceRequest?requester.name=karolinska", {"sr-erik"}),
    (f"ServiceRequest?performer:Organization.identifier={HSA}|SE2321000016-1", {"sr-asa-1"}),
    ("ServiceRequest?subject:Patient.organization.name=skanes", ASA_SR),
    # two levels deep from Task
    (f"Task?focus:ServiceRequest.subject.identifier={PNR}|191212121212", {"task-1", "task-3"}),
    ("Task?focus:ServiceRequest.subject:Patient.name=lind", {"task-2"}),
    (f"Task?focus:ServiceRequest.requester:Organization.identifier={HSA}|SE2321000081-1", {"task-1"}),
    ("Task?focus:ServiceRequest.status=completed", {"task-3"}),
    (f"Task?focus:ServiceRequest.subject.identifier={PNR}|000000000000", set()),
    ("Task?owner:Organization.name=karolinska&status=requested", {"task-1"}),
    ("Task?owner:Organization.name=karolinska&status=accepted", set()),
    ("Task?patient.name=åsa", {"task-1", "task-3"}),
]

HAS_CASES = [
    ("Patient?_has:ServiceRequest:subject:status=active", {"pat-asa", "pat-erik"}),
    ("Patient?_has:ServiceRequest:subject:status=completed", {"pat-asa"}),
    ("Patient?_has:ServiceRequest:subject:status=on-hold", {"pat-erik"}),  # via the absolute local reference
    ("Patient?_has:ServiceRequest:subject:status=revoked", set()),
    ("Patient?_has:ServiceRequest:subject:status=draft", set()),  # sr-ident has no literal reference
    ("Patient?_has:ServiceRequest:patient:requester=Practitioner/prac-holm", {"pat-asa"}),
    ("Patient?_has:Task:patient:owner=Organization/org-sus", {"pat-erik"}),
    ("Patient?_has:Task:patient:owner=Organization/org-sus,Practitioner/prac-holm", {"pat-asa", "pat-erik"}),
    ("Patient?_has:ServiceRequest:subject:status=active&_has:ServiceRequest:subject:status=completed", {"pat-asa"}),
    ("Patient?_has:ServiceRequest:subject:status=active&family=lind", {"pat-erik"}),
    ("Patient?_has:EpisodeOfCare:patient:status=active", {"pat-asa"}),
    ("Organization?_has:ServiceRequest:performer:status=active", {"org-sus", "org-ks"}),
    ("Organization?_has:Task:owner:status=completed", set()),
    ("Practitioner?_has:Task:owner:status=completed", {"prac-holm"}),
    ("Group?_has:ServiceRequest:subject:status=active", {"grp-1"}),
    # nested _has
    ("Patient?_has:ServiceRequest:subject:_has:Task:focus:owner=Practitioner/prac-holm", {"pat-asa"}),
    ("Patient?_has:ServiceRequest:subject:_has:Task:focus:status=accepted", {"pat-erik"}),
    ("Patient?_has:ServiceRequest:subject:_has:Task:focus:status=cancelled", set()),
    # a chain inside _has
    ("Patient?_has:ServiceRequest:subject:requester:Organization.name=karolinska", {"pat-erik"}),
    ("Patient?_has:Task:patient:focus:ServiceRequest.status=completed", {"pat-asa"}),
]

CASES = REFERENCE_CASES + CHAIN_CASES + HAS_CASES


@pytest.mark.parametrize("query,expected", CASES, ids=[c[0] for c in CASES])
def test_reference_chain_has(fhir, query, expected):
    assert fhir.ids(query.replace("{base}", fhir.base_url)) == expected


ERRORS = [
    "ServiceRequest?subject:Practitioner=Patient/pat-asa",  # the modifier contradicts the type
    "ServiceRequest?status.name=x",  # a token cannot be chained
    "ServiceRequest?subject:NotAType.name=x",
    "Patient?_has:ServiceRequest:status:status=active",  # status is not a reference
    "Patient?_has:NotAType:subject:status=active",
    "Patient?_has:ServiceRequest:subject",  # incomplete
    "ServiceRequest?subject:exact=Patient/pat-asa",
]


@pytest.mark.parametrize("query", ERRORS)
def test_reference_invalid_is_400(fhir, query):
    r = fhir.get(query)
    assert r.status_code == 400, f"{query}: {r.status_code} {r.text}"
    assert r.json()["resourceType"] == "OperationOutcome"
