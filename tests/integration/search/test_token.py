"""token parameters (R4 search.html#token): system|code, |code, system|, code,
:not, :text, :of-type, :in / :not-in, escaping, AND / OR."""

from __future__ import annotations

import pytest

from tests.integration.search.conftest import LOINC, PNR, SNOMED, patient, service_request

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
MRN = "urn:evi:mrn"
REMISSTYP = "http://evi.example/fhir/CodeSystem/remisstyp"
VS_IMAGING = "http://evi.example/fhir/ValueSet/bilddiagnostik"
VS_REMISSTYP = "http://evi.example/fhir/ValueSet/remisstyp"
VS_REMISSTYP_NOT_B1 = "http://evi.example/fhir/ValueSet/remisstyp-utan-b1"
VS_NESTED = "http://evi.example/fhir/ValueSet/nested"


def _category(system: str, code: str) -> list[dict]:
    return [{"coding": [{"system": system, "code": code}]}]


@pytest.fixture(scope="module")
def fhir(own_server):
    own_server.seed(
        patient(
            "pat-asa", family="Öberg", given=["Åsa"], gender="female", active=True,
            identifier=[
                {"system": PNR, "value": "191212121212",
                 "type": {"coding": [{"system": V2_0203, "code": "NI"}], "text": "Personnummer"}},
                {"system": MRN, "value": "MRN-1", "type": {"coding": [{"system": V2_0203, "code": "MR"}]}},
            ],
        ),
        patient(
            "pat-erik", family="Lind", given=["Erik"], gender="male", active=False,
            identifier=[
                {"system": PNR, "value": "198001019879"},
                {"value": "LOCAL-7"},
                {"system": "urn:evi:misc", "value": "X,Y"},
                {"system": "urn:evi:misc", "value": "A|B"},
            ],
        ),
        patient("pat-noid", family="Utan"),
        service_request(
            "sr-ct", "Patient/pat-asa", status="active", priority="routine",
            code=(SNOMED, "77477000", "Computerized axial tomography"), category=_category(REMISSTYP, "A"),
        ),
        service_request(
            "sr-mr", "Patient/pat-asa", status="completed", priority="urgent",
            code=(SNOMED, "113091000", "Magnetic resonance imaging"), category=_category(REMISSTYP, "B1"),
        ),
        service_request(
            "sr-lab", "Patient/pat-erik", status="draft", intent="plan", priority="stat",
            code={"coding": [{"system": LOINC, "code": "2345-7"}], "text": "Blodsocker"},
            category=_category("urn:evi:other", "Z"),
        ),
        service_request("sr-local", "Patient/pat-erik", status="revoked", code={"coding": [{"code": "X1", "display": "Lokal kod"}]}),
        {
            "resourceType": "CodeSystem", "id": "cs-remisstyp", "url": REMISSTYP, "status": "active", "content": "complete",
            "concept": [{"code": "A", "display": "Akut"}, {"code": "B", "display": "Planerad", "concept": [{"code": "B1"}]}],
        },
        {
            "resourceType": "ValueSet", "id": "vs-imaging", "url": VS_IMAGING, "status": "active",
            "compose": {"include": [{"system": SNOMED, "concept": [{"code": "77477000"}, {"code": "113091000"}]}]},
        },
        {
            "resourceType": "ValueSet", "id": "vs-remisstyp", "url": VS_REMISSTYP, "status": "active",
            "compose": {"include": [{"system": REMISSTYP}]},
        },
        {
            "resourceType": "ValueSet", "id": "vs-remisstyp-utan-b1", "url": VS_REMISSTYP_NOT_B1, "status": "active",
            "compose": {"include": [{"system": REMISSTYP}], "exclude": [{"system": REMISSTYP, "concept": [{"code": "B1"}]}]},
        },
        {
            "resourceType": "ValueSet", "id": "vs-nested", "url": VS_NESTED, "status": "active",
            "compose": {"include": [{"valueSet": [VS_IMAGING]}, {"system": LOINC, "concept": [{"code": "2345-7"}]}]},
        },
    )
    return own_server


ALL_PATIENTS = {"pat-asa", "pat-erik", "pat-noid"}
ALL_SR = {"sr-ct", "sr-mr", "sr-lab", "sr-local"}

CASES = [
    # identifier: system|code, code, system|, |code
    (f"Patient?identifier={PNR}|191212121212", {"pat-asa"}),
    ("Patient?identifier=191212121212", {"pat-asa"}),
    (f"Patient?identifier={PNR}|", {"pat-asa", "pat-erik"}),
    ("Patient?identifier=|LOCAL-7", {"pat-erik"}),
    ("Patient?identifier=LOCAL-7", {"pat-erik"}),
    ("Patient?identifier=|191212121212", set()),  # the identifier has a system
    ("Patient?identifier=urn:other|191212121212", set()),
    (f"Patient?identifier={PNR}|000000000000", set()),
    (f"Patient?identifier={PNR}|19121212121", set()),  # no partial match on codes
    ("Patient?identifier=MRN-1", {"pat-asa"}),
    # OR (comma) and AND (repeated parameter)
    ("Patient?identifier=191212121212,198001019879", {"pat-asa", "pat-erik"}),
    (f"Patient?identifier={PNR}|191212121212,|LOCAL-7", {"pat-asa", "pat-erik"}),
    (f"Patient?identifier={PNR}|191212121212&identifier={MRN}|MRN-1", {"pat-asa"}),
    (f"Patient?identifier={PNR}|191212121212&identifier={PNR}|198001019879", set()),
    # escaped separators in a value
    (r"Patient?identifier=urn:evi:misc|X\,Y", {"pat-erik"}),
    (r"Patient?identifier=urn:evi:misc|A\|B", {"pat-erik"}),
    ("Patient?identifier=urn:evi:misc|X", set()),
    # code-typed and boolean tokens
    ("Patient?gender=female", {"pat-asa"}),
    ("Patient?gender=male", {"pat-erik"}),
    ("Patient?gender=other", set()),
    ("Patient?active=true", {"pat-asa"}),
    ("Patient?active=false", {"pat-erik"}),
    # :not includes resources without a value (R4 search.html#token)
    ("Patient?gender:not=female", {"pat-erik", "pat-noid"}),
    ("Patient?gender:not=male", {"pat-asa", "pat-noid"}),
    ("Patient?gender:not=female,male", {"pat-noid"}),
    ("Patient?gender:not=unknown", ALL_PATIENTS),
    (f"Patient?identifier:not={PNR}|191212121212", {"pat-erik", "pat-noid"}),
    # :of-type (Identifier.type coding | value)
    (f"Patient?identifier:of-type={V2_0203}|MR|MRN-1", {"pat-asa"}),
    (f"Patient?identifier:of-type={V2_0203}|NI|191212121212", {"pat-asa"}),
    (f"Patient?identifier:of-type={V2_0203}|MR|191212121212", set()),  # wrong type for that value
    (f"Patient?identifier:of-type={V2_0203}|NI|198001019879", set()),  # identifier without a type
    (f"Patient?identifier:of-type=urn:other|NI|191212121212", set()),
    # :text on Identifier.type.text
    ("Patient?identifier:text=personnummer", {"pat-asa"}),
    # CodeableConcept codes
    (f"ServiceRequest?code={SNOMED}|77477000", {"sr-ct"}),
    ("ServiceRequest?code=77477000", {"sr-ct"}),
    (f"ServiceRequest?code={LOINC}|77477000", set()),
    (f"ServiceRequest?code={SNOMED}|", {"sr-ct", "sr-mr"}),
    ("ServiceRequest?code=|X1", {"sr-local"}),
    (f"ServiceRequest?code={SNOMED}|X1", set()),
    ("ServiceRequest?code=77477000,2345-7", {"sr-ct", "sr-lab"}),
    ("ServiceRequest?code=7747700", set()),
    # :text: display or CodeableConcept.text, starts-with, case/accent-insensitive
    ("ServiceRequest?code:text=computerized", {"sr-ct"}),
    ("ServiceRequest?code:text=MAGNETIC", {"sr-mr"}),
    ("ServiceRequest?code:text=blodsocker", {"sr-lab"}),
    ("ServiceRequest?code:text=blod", {"sr-lab"}),
    ("ServiceRequest?code:text=lokal", {"sr-local"}),
    ("ServiceRequest?code:text=ultraljud", set()),
    ("ServiceRequest?code:text=magnetic,blodsocker", {"sr-mr", "sr-lab"}),
    # code-typed tokens with :not and OR
    ("ServiceRequest?status=active", {"sr-ct"}),
    ("ServiceRequest?status=active,completed", {"sr-ct", "sr-mr"}),
    ("ServiceRequest?status:not=active", {"sr-mr", "sr-lab", "sr-local"}),
    ("ServiceRequest?status=on-hold", set()),
    ("ServiceRequest?intent=plan", {"sr-lab"}),
    ("ServiceRequest?intent=order&status=active", {"sr-ct"}),
    ("ServiceRequest?priority=stat", {"sr-lab"}),
    ("ServiceRequest?priority=urgent,stat", {"sr-mr", "sr-lab"}),
    ("ServiceRequest?priority:not=routine", {"sr-mr", "sr-lab", "sr-local"}),
    # :in / :not-in against stored ValueSets
    (f"ServiceRequest?code:in={VS_IMAGING}", {"sr-ct", "sr-mr"}),
    (f"ServiceRequest?code:not-in={VS_IMAGING}", {"sr-lab", "sr-local"}),
    (f"ServiceRequest?code:in={VS_NESTED}", {"sr-ct", "sr-mr", "sr-lab"}),
    (f"ServiceRequest?category:in={VS_REMISSTYP}", {"sr-ct", "sr-mr"}),  # whole CodeSystem incl. nested B1
    (f"ServiceRequest?category:in={VS_REMISSTYP_NOT_B1}", {"sr-ct"}),
    (f"ServiceRequest?category:not-in={VS_REMISSTYP}", {"sr-lab", "sr-local"}),
    (f"ServiceRequest?code:in={VS_REMISSTYP}", set()),
    # _id is a token too
    ("Patient?_id=pat-asa", {"pat-asa"}),
    ("Patient?_id=pat-asa,pat-noid", {"pat-asa", "pat-noid"}),
    ("Patient?_id=sr-ct", set()),
    ("Patient?_id:not=pat-asa", {"pat-erik", "pat-noid"}),
]


@pytest.mark.parametrize("query,expected", CASES, ids=[c[0] for c in CASES])
def test_token_search(fhir, query, expected):
    assert fhir.ids(query) == expected


ERRORS = [
    "Patient?gender:exact=female",  # :exact is a string modifier
    "Patient?gender:contains=fem",
    "Patient?identifier=|",
    "Patient?identifier:of-type=MR|MRN-1",  # needs type-system|type-code|value
    "ServiceRequest?code:in=http://unknown.example/ValueSet/none",
    "Patient?gender:missing=maybe",
]


@pytest.mark.parametrize("query", ERRORS)
def test_token_invalid_is_400(fhir, query):
    r = fhir.get(query)
    assert r.status_code == 400, f"{query}: {r.status_code} {r.text}"
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["severity"] in ("error", "fatal")
