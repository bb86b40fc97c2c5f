"""Runtime configuration can be switched off (EVI_ALLOW_RUNTIME_SEARCHPARAMETERS=false):
clients cannot then store, change or delete active SearchParameters nor run $reindex;
the guide's own SearchParameters are still stored at start-up (issue 11)."""

from __future__ import annotations

import httpx
import pytest

from tests.support.live_server import LiveServer

FHIR_JSON = {"Content-Type": "application/fhir+json"}


def _parameter(status: str) -> dict:
    return {"resourceType": "SearchParameter", "url": "https://example.org/sp/locked", "name": "locked",
            "status": status, "description": "x", "code": "locked", "base": ["Patient"], "type": "token",
            "expression": "Patient.gender"}


@pytest.fixture(scope="module")
def locked():
    with LiveServer(storage="sqlite://:memory:", allow_runtime_searchparameters=False) as live:
        with httpx.Client(base_url=live.base_url, timeout=30) as client:
            yield client


def test_an_active_search_parameter_is_403_and_not_stored(locked):
    r = locked.post("/SearchParameter", json=_parameter("active"), headers=FHIR_JSON)
    assert r.status_code == 403, r.text
    assert r.json()["issue"][0]["code"] == "forbidden"
    assert "EVI_ALLOW_RUNTIME_SEARCHPARAMETERS" in r.text
    assert locked.get("/SearchParameter", params={"url": "https://example.org/sp/locked"}).json()["total"] == 0
    assert any(e["search"]["mode"] == "outcome" for e in locked.get("/Patient", params={"locked": "x"}).json()["entry"])


def test_a_draft_may_be_stored_but_not_activated(locked):
    draft = locked.post("/SearchParameter", json=_parameter("draft"), headers=FHIR_JSON)
    assert draft.status_code == 201
    activated = {**_parameter("active"), "id": draft.json()["id"]}
    assert locked.put(f"/SearchParameter/{draft.json()['id']}", json=activated, headers=FHIR_JSON).status_code == 403


def test_reindex_is_403(locked):
    for path in ("/$reindex", "/Patient/$reindex"):
        r = locked.post(path)
        assert r.status_code == 403 and r.json()["issue"][0]["code"] == "forbidden"


def test_the_guide_search_parameters_still_work(locked):
    found = locked.get("/ServiceRequest", params={"contact-channel": "phone-advice"})
    assert found.status_code == 200
    assert not any(e["search"]["mode"] == "outcome" for e in found.json().get("entry", []))
    assert "contact-channel" in locked.get("/metadata").text
