"""Pseudonymised export output: exactly what is removed, replaced and kept (docs/export.md)."""

import copy

from fhir_server.reporting import PSEUDONYM_SYSTEM, Pseudonymization, Pseudonymizer

KEY = "k" * 48
PNR = "http://electronichealth.se/identifier/personnummer"
PSEUDONYMS = Pseudonymizer(KEY)
PSEUDED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "PSEUDED"}


def apply(resource: dict) -> dict:
    return Pseudonymization(PSEUDONYMS).apply(copy.deepcopy(resource))


PATIENT = {
    "resourceType": "Patient", "id": "child-oskar",
    "meta": {"versionId": "3", "profile": ["https://evi-fhir.org/fhir/StructureDefinition/evi-patient"]},
    "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Oskar Svensson</div>"},
    "extension": [
        {"url": "https://evi-fhir.org/fhir/StructureDefinition/evi-placement",
         "extension": [{"url": "responsibleMunicipality", "valueReference": {"reference": "Organization/soc",
                                                                             "display": "Socialtjänsten"}}]},
        {"url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace", "valueAddress": {"city": "Kalmar"}},
    ],
    "identifier": [{"use": "official", "system": PNR, "value": "201203041234"},
                   {"system": "urn:oid:1.2.752.97.1", "value": "MRN-77"}],
    "name": [{"family": "Svensson", "given": ["Oskar"]}],
    "telecom": [{"system": "phone", "value": "070-1234567"}],
    "gender": "male",
    "birthDate": "2012-03-04",
    "_birthDate": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
                                  "valueDateTime": "2012-03-04T05:06:00+01:00"}]},
    "address": [{"city": "Kalmar", "district": "0880"}],
    "photo": [{"contentType": "image/png", "data": "AAAA"}],
    "contact": [{"relationship": [{"text": "mother"}], "name": {"family": "Svensson"}}],
    "managingOrganization": {"reference": "Organization/bup", "display": "BUP Kalmar"},
    "link": [{"other": {"reference": "Patient/old-record"}, "type": "replaces"}],
}


def test_a_patient_keeps_no_direct_identity():
    out = apply(PATIENT)
    assert out["id"] == PSEUDONYMS.pseudonym("Patient/child-oskar") and len(out["id"]) == 64
    for gone in ("text", "name", "telecom", "address", "photo", "contact", "_birthDate"):
        assert gone not in out
    assert out["birthDate"] == "2012-03"
    assert out["gender"] == "male"
    assert out["identifier"] == [
        {"system": PSEUDONYM_SYSTEM, "value": PSEUDONYMS.pseudonym("201203041234")},  # as the SKR detail's pseudonym
        {"system": PSEUDONYM_SYSTEM, "value": PSEUDONYMS.pseudonym("urn:oid:1.2.752.97.1|MRN-77")},
    ]
    assert [e["url"] for e in out["extension"]] == ["https://evi-fhir.org/fhir/StructureDefinition/evi-placement"]
    assert out["extension"][0]["extension"][0]["valueReference"] == {"reference": "Organization/soc"}
    assert out["managingOrganization"] == {"reference": "Organization/bup"}
    assert out["link"][0]["other"]["reference"] == "Patient/" + PSEUDONYMS.pseudonym("Patient/old-record")
    assert out["meta"]["security"] == [PSEUDED] and out["meta"]["versionId"] == "3"


def test_pseudonyms_are_stable_and_depend_on_the_key():
    assert apply(PATIENT) == apply(PATIENT)
    other = Pseudonymization(Pseudonymizer("o" * 48)).apply(copy.deepcopy(PATIENT))
    assert other["id"] != apply(PATIENT)["id"]
    assert other["identifier"] != apply(PATIENT)["identifier"]


def test_references_to_people_anywhere_follow_the_pseudonymous_id():
    task = {
        "resourceType": "Task", "id": "t1", "status": "requested", "intent": "order",
        "for": {"reference": "Patient/child-oskar", "display": "Oskar Svensson"},
        "owner": {"reference": "Organization/evi", "display": "EVI"},
        "requester": {"reference": "http://evi.example/fhir/RelatedPerson/guardian-anna/_history/2"},
        "restriction": {"recipient": [{"reference": "Practitioner/p9"}]},
        "input": [{"type": {"text": "x"}, "valueReference": {"identifier": {"system": PNR, "value": "201203041234"},
                                                              "display": "Oskar"}}],
        "note": [{"text": "Mamma Anna ringde, 070-1234567"}],
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Oskar</div>"},
    }
    out = apply(task)
    assert out["id"] == "t1"  # not a person: its id stays
    assert out["for"] == {"reference": "Patient/" + PSEUDONYMS.pseudonym("Patient/child-oskar")}
    assert out["owner"] == {"reference": "Organization/evi"}
    assert out["requester"] == {"reference": "http://evi.example/fhir/RelatedPerson/"
                                + PSEUDONYMS.pseudonym("RelatedPerson/guardian-anna") + "/_history/2"}
    assert out["restriction"]["recipient"][0]["reference"] == "Practitioner/" + PSEUDONYMS.pseudonym("Practitioner/p9")
    assert out["input"][0]["valueReference"] == {
        "identifier": {"system": PSEUDONYM_SYSTEM, "value": PSEUDONYMS.pseudonym("201203041234")}}
    assert "note" not in out and "text" not in out
    assert out["meta"]["security"] == [PSEUDED]


def test_the_same_patient_has_the_same_pseudonym_as_subject_and_as_itself():
    patient = apply(PATIENT)
    task = apply({"resourceType": "Task", "status": "requested", "intent": "order",
                  "for": {"reference": "Patient/child-oskar"}})
    assert task["for"]["reference"] == f"Patient/{patient['id']}"


def test_other_people_lose_the_same_elements():
    guardian = apply({"resourceType": "RelatedPerson", "id": "guardian-anna", "patient": {"reference": "Patient/child-oskar"},
                      "relationship": [{"coding": [{"code": "GUARD"}]}], "name": [{"family": "Svensson"}],
                      "telecom": [{"value": "070"}], "address": [{"city": "Kalmar"}], "birthDate": "1980-01-02",
                      "identifier": [{"system": PNR, "value": "198001021234"}]})
    assert guardian["id"] == PSEUDONYMS.pseudonym("RelatedPerson/guardian-anna")
    assert guardian["patient"]["reference"] == "Patient/" + PSEUDONYMS.pseudonym("Patient/child-oskar")
    assert set(guardian) == {"resourceType", "id", "patient", "relationship", "birthDate", "identifier", "meta"}
    assert guardian["birthDate"] == "1980-01"
    practitioner = apply({"resourceType": "Practitioner", "id": "p9", "name": [{"text": "Dr X"}],
                          "identifier": [{"system": "urn:oid:1.2.752.29.4.19", "value": "SE2321000032-P9"}]})
    assert practitioner["identifier"][0]["value"] == PSEUDONYMS.pseudonym("urn:oid:1.2.752.29.4.19|SE2321000032-P9")
    assert "name" not in practitioner


def test_a_contained_person_loses_its_identity_but_keeps_its_local_id():
    request = apply({"resourceType": "ServiceRequest", "status": "active", "intent": "order",
                     "contained": [{"resourceType": "Patient", "id": "p", "name": [{"family": "X"}],
                                    "identifier": [{"system": PNR, "value": "201203041234"}]}],
                     "subject": {"reference": "#p"}})
    contained = request["contained"][0]
    assert contained["id"] == "p" and request["subject"] == {"reference": "#p"}
    assert "name" not in contained
    assert contained["identifier"] == [{"system": PSEUDONYM_SYSTEM, "value": PSEUDONYMS.pseudonym("201203041234")}]


def test_codings_and_organisation_identifiers_are_kept():
    org = {"resourceType": "Organization", "id": "bup", "name": "BUP Kalmar",
           "identifier": [{"system": "urn:oid:1.2.752.29.4.19", "value": "SE2321000032-BUP"}],
           "type": [{"coding": [{"system": "https://evi-fhir.org/fhir/CodeSystem/evi-organization-type",
                                 "code": "bup-clinic", "display": "BUP-mottagning"}]}]}
    out = apply(org)
    assert {k: v for k, v in out.items() if k != "meta"} == org
    assert out["meta"] == {"security": [PSEUDED]}


def test_an_existing_pseudonymised_label_is_not_doubled():
    once = apply(PATIENT)
    assert Pseudonymization(PSEUDONYMS).apply(once)["meta"]["security"] == [PSEUDED]


def test_free_text_that_names_the_child_is_removed_and_the_rest_kept():
    care_plan = {"resourceType": "CarePlan", "id": "sip-oskar", "status": "active", "intent": "plan",
                 "title": "SIP för Oskar Svensson", "description": "Oskar och hans vårdnadshavare",
                 "subject": {"reference": "Patient/child-oskar"}, "period": {"start": "2025-01-02"}}
    team = {"resourceType": "CareTeam", "id": "sip-oskar", "name": "SIP Oskar Svensson", "status": "active"}
    assert apply(care_plan) == {
        "resourceType": "CarePlan", "id": "sip-oskar", "status": "active", "intent": "plan",
        "subject": {"reference": "Patient/" + PSEUDONYMS.pseudonym("Patient/child-oskar")},
        "period": {"start": "2025-01-02"}, "meta": {"security": [PSEUDED]}}
    assert "name" not in apply(team) and apply(team)["status"] == "active"
