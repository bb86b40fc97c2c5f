"""The product's own SearchParameters from profiles/ work like the spec's."""

EVI = "https://evi-fhir.org/fhir"


def _ids(bundle: dict) -> set[str]:
    return {e["resource"]["id"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == "match"}


def test_task_due_supports_date_prefixes(http, uid):
    ids = {}
    for label, due in (("early", "2026-03-16T12:00:00Z"), ("late", "2026-03-20T12:00:00Z")):
        r = http.post("/Task", json={
            "resourceType": "Task", "status": "requested", "intent": "order",
            "identifier": [{"system": "urn:test", "value": uid}],
            "code": {"coding": [{"system": f"{EVI}/CodeSystem/evi-task-type", "code": "intake"}]},
            "restriction": {"period": {"end": due}},
        })
        assert r.status_code == 201, r.text
        ids[label] = r.json()["id"]
    overdue = http.get("/Task", params={"identifier": f"urn:test|{uid}", "code": "intake", "status": "requested", "due": "lt2026-03-18"}).json()
    assert _ids(overdue) == {ids["early"]}
    later = http.get("/Task", params={"identifier": f"urn:test|{uid}", "due": "ge2026-03-18"}).json()
    assert _ids(later) == {ids["late"]}


def test_contact_channel_and_placement_municipality(http, uid):
    org = http.post("/Organization", json={"resourceType": "Organization", "name": f"Socialtjänsten {uid}"}).json()["id"]
    patient = http.post("/Patient", json={
        "resourceType": "Patient", "identifier": [{"system": "urn:test", "value": uid}],
        "extension": [{"url": f"{EVI}/StructureDefinition/evi-placement", "extension": [
            {"url": "type", "valueCoding": {"system": f"{EVI}/CodeSystem/evi-placement-type", "code": "hvb"}},
            {"url": "responsibleMunicipality", "valueReference": {"reference": f"Organization/{org}"}},
        ]}],
    }).json()["id"]
    sr = http.post("/ServiceRequest", json={
        "resourceType": "ServiceRequest", "status": "active", "intent": "proposal",
        "subject": {"reference": f"Patient/{patient}"},
        "extension": [{"url": f"{EVI}/StructureDefinition/evi-contact-channel",
                       "valueCoding": {"system": f"{EVI}/CodeSystem/evi-contact-channel", "code": "phone-other"}}],
    }).json()["id"]
    found = http.get("/Patient", params={"placement-municipality": f"Organization/{org}"}).json()
    assert _ids(found) == {patient}
    by_channel = http.get("/ServiceRequest", params={"subject": f"Patient/{patient}", "contact-channel": f"{EVI}/CodeSystem/evi-contact-channel|phone-other"}).json()
    assert _ids(by_channel) == {sr}
    other = http.get("/ServiceRequest", params={"subject": f"Patient/{patient}", "contact-channel": "referral-paper"}).json()
    assert _ids(other) == set()
    cs = http.get("/metadata").json()
    patient_params = next(r for r in cs["rest"][0]["resource"] if r["type"] == "Patient")["searchParam"]
    assert {"name": "placement-municipality", "definition": f"{EVI}/SearchParameter/Patient-placement-municipality", "type": "reference"} in patient_params
