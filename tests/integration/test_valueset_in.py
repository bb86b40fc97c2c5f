"""token :in / :not-in with a ValueSet of the implementation guide (profiles/), not stored."""

EVI = "https://evi-fhir.org/fhir"


def test_in_uses_the_guides_value_sets(http, uid):
    ids = {}
    for code in ("phone-acute", "referral-paper"):
        r = http.post("/ServiceRequest", json={
            "resourceType": "ServiceRequest", "status": "active", "intent": "proposal",
            "identifier": [{"system": "urn:test", "value": uid}], "subject": {"reference": "Patient/x"},
            "extension": [{"url": f"{EVI}/StructureDefinition/evi-contact-channel",
                           "valueCoding": {"system": f"{EVI}/CodeSystem/evi-contact-channel", "code": code}}],
        })
        assert r.status_code == 201, r.text
        ids[code] = r.json()["id"]
    # a code outside the extension's required binding is not stored (it claims no
    # profile, but $validate checks the guide's extension definitions: so does the write)
    outside = http.post("/ServiceRequest", json={
        "resourceType": "ServiceRequest", "status": "active", "intent": "proposal",
        "identifier": [{"system": "urn:test", "value": uid}], "subject": {"reference": "Patient/x"},
        "extension": [{"url": f"{EVI}/StructureDefinition/evi-contact-channel",
                       "valueCoding": {"system": "urn:other", "code": "phone-acute"}}],
    })
    assert outside.status_code == 400 and "evi-contact-channel" in outside.text, outside.text
    # one without a channel: :not-in, like :not, matches it
    other = http.post("/ServiceRequest", json={
        "resourceType": "ServiceRequest", "status": "active", "intent": "proposal",
        "identifier": [{"system": "urn:test", "value": uid}], "subject": {"reference": "Patient/x"},
    }).json()["id"]

    def found(modifier: str) -> set[str]:
        bundle = http.get("/ServiceRequest", params={"identifier": f"urn:test|{uid}", f"contact-channel:{modifier}": f"{EVI}/ValueSet/evi-contact-channel"}).json()
        return {e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"}

    assert found("in") == {ids["phone-acute"], ids["referral-paper"]}
    assert found("not-in") == {other}
    r = http.get("/ServiceRequest", params={"contact-channel:in": f"{EVI}/ValueSet/nope"})
    assert r.status_code == 400 and "Unknown ValueSet" in r.text


def test_conditional_criteria_expand_in_too(http, uid):
    """A conditional update matched nothing with :in before the criteria were expanded."""
    body = {"resourceType": "ServiceRequest", "status": "active", "intent": "proposal",
            "identifier": [{"system": "urn:test:cond-in", "value": uid}], "subject": {"reference": "Patient/x"},
            "extension": [{"url": f"{EVI}/StructureDefinition/evi-contact-channel",
                           "valueCoding": {"system": f"{EVI}/CodeSystem/evi-contact-channel", "code": "phone-acute"}}]}
    created = http.post("/ServiceRequest", json=body)
    assert created.status_code == 201
    query = f"identifier=urn:test:cond-in|{uid}&contact-channel:in={EVI}/ValueSet/evi-contact-channel"
    updated = http.put(f"/ServiceRequest?{query}", json={**body, "status": "revoked"},
                       headers={"Content-Type": "application/fhir+json"})
    assert updated.status_code == 200, updated.text
    assert updated.json()["id"] == created.json()["id"]
