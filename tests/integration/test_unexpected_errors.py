"""A bug in the server must still answer with an OperationOutcome and keep the connection usable."""

import httpx

import fhir_server.api.interactions.read as read_interaction


def test_unexpected_error_is_a_500_outcome_and_the_connection_survives(fresh_server, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(read_interaction.engine, "read", boom)
    with httpx.Client(base_url=fresh_server.base_url) as client:
        r = client.get("/Patient/x")
        assert r.status_code == 500
        assert r.json()["issue"][0]["code"] == "exception"
        assert "simulated bug" not in r.text  # no internals leak to the client
        assert client.get("/metadata").status_code == 200  # same kept-alive connection


def _patient(value: str) -> dict:
    return {"resourceType": "Patient", "meta": {"profile": ["https://evi-fhir.org/fhir/StructureDefinition/evi-patient"]},
            "identifier": [{"system": "http://electronichealth.se/identifier/personnummer", "value": "201203049828"},
                           {"system": "urn:test", "value": value}],
            "birthDate": "2012-03-04", "name": [{"family": "Testsson"}]}


def test_a_fault_inside_profile_validation_is_a_500_not_a_422(fresh_server, monkeypatch):
    """As when a file the validator reads on first use is gone (reinstalling the package under
    a running server did that): the validator's own failure is the server's error. It used
    to come back as a 422 "issue" of the resource, with the FileNotFoundError inside."""
    from fhir_server.conformance.validation.walker import Run

    def gone(*args, **kwargs):
        raise FileNotFoundError(2, "No such file or directory", "/srv/evi/profiles/StructureDefinition-evi-patient.json")

    with httpx.Client(base_url=fresh_server.base_url) as client:
        assert client.post("/Patient", json=_patient("before")).status_code == 201  # validated and stored
        monkeypatch.setattr(Run, "resource", gone)
        for r in (client.post("/Patient", json=_patient("during")),
                  client.post("/Patient/$validate", json=_patient("during"))):
            assert r.status_code == 500, r.text
            assert r.json()["issue"][0]["code"] == "exception" and "evi-patient" not in r.text
        monkeypatch.undo()
        assert client.get("/Patient", params={"identifier": "urn:test|during"}).json()["total"] == 0

