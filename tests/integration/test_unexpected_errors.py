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
