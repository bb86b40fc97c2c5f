def test_metadata_is_an_r4_capability_statement(http):
    r = http.get("/metadata")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/fhir+json")
    cs = r.json()
    assert cs["resourceType"] == "CapabilityStatement"
    assert cs["fhirVersion"] == "4.0.1"
    types = {res["type"]: res for res in cs["rest"][0]["resource"]}
    assert "ServiceRequest" in types and "Task" in types
    codes = {i["code"] for i in types["Patient"]["interaction"]}
    assert {"read", "vread", "update", "patch", "delete", "create", "search-type", "history-instance"} <= codes
    assert {"transaction", "batch", "history-system"} <= {i["code"] for i in cs["rest"][0]["interaction"]}
    names = {p["name"] for p in types["Patient"]["searchParam"]}
    assert {"_id", "_lastUpdated", "identifier"} <= names
