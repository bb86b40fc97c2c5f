"""Several server processes on one database behave as one server: paging snapshots and
runtime SearchParameters live in the store, not in a process (issue 11)."""

from __future__ import annotations

import httpx
import pytest

from tests.support.live_server import LiveServer

FHIR_JSON = {"Content-Type": "application/fhir+json"}
SYS = "urn:evi:test:scale-out"


def _patients(client: httpx.Client, uid: str, n: int) -> None:
    entries = [
        {"resource": {"resourceType": "Patient", "identifier": [{"system": SYS, "value": uid}],
                      "name": [{"family": f"F{i:03d}"}]},
         "request": {"method": "POST", "url": "Patient"}}
        for i in range(n)
    ]
    r = client.post("", json={"resourceType": "Bundle", "type": "transaction", "entry": entries}, headers=FHIR_JSON)
    assert r.status_code == 200, r.text


def _next(bundle: dict) -> str | None:
    return next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)


def _walk(client: httpx.Client, url: str) -> list[str]:
    names = []
    while url:
        page = client.get(url).json()
        names.extend(e["resource"]["name"][0]["family"] for e in page.get("entry", []) if e["search"]["mode"] == "match")
        url = _next(page)
    return names


@pytest.fixture
def two_servers(tmp_path):
    db = tmp_path / "shared.db"
    with LiveServer(storage=f"sqlite://{db}") as a, LiveServer(storage=f"sqlite://{db}") as b:
        yield a, b


def test_next_links_of_one_server_work_on_another(two_servers, uid):
    a, b = two_servers
    with httpx.Client(base_url=a.base_url, timeout=30) as ca, httpx.Client(timeout=30) as cb:
        _patients(ca, uid, 45)
        first = ca.get("/Patient", params={"identifier": f"{SYS}|{uid}", "_sort": "family", "_count": "10"}).json()
        assert first["total"] == 45
        link = _next(first)
        assert "_getpages" in link
        # the same link, asked of the other server (same path, its own host and port)
        on_b = link.replace(a.base_url, b.base_url)
        names = [e["resource"]["name"][0]["family"] for e in first["entry"]] + _walk(cb, on_b)
        assert names == [f"F{i:03d}" for i in range(45)]
        assert cb.get(on_b).json()["link"][0]["url"].startswith(b.base_url)


def test_next_links_survive_a_restart(tmp_path, uid):
    db = tmp_path / "restart.db"
    with LiveServer(storage=f"sqlite://{db}") as first:
        with httpx.Client(base_url=first.base_url, timeout=30) as c:
            _patients(c, uid, 25)
            page = c.get("/Patient", params={"identifier": f"{SYS}|{uid}", "_sort": "-family", "_count": "10"}).json()
            link = _next(page)
            seen = [e["resource"]["name"][0]["family"] for e in page["entry"]]
    with LiveServer(storage=f"sqlite://{db}") as second:
        with httpx.Client(timeout=30) as c:
            rest = _walk(c, link.replace(first.base_url, second.base_url))
    assert seen + rest == [f"F{i:03d}" for i in reversed(range(25))]


def test_an_unknown_or_forged_page_token_is_410(two_servers):
    a, _ = two_servers
    with httpx.Client(base_url=a.base_url, timeout=30) as c:
        for token in ("0" * 32, "x" * 500, "%00"):
            r = c.get("", params={"_getpages": token, "_getpagesoffset": "10"})
            assert r.status_code == 410, r.text
            assert r.json()["resourceType"] == "OperationOutcome"


def test_a_search_parameter_created_on_one_server_is_known_to_the_other(two_servers, uid):
    a, b = two_servers
    code = f"nick{uid[:8]}"
    parameter = {
        "resourceType": "SearchParameter", "url": f"https://example.org/sp/{code}", "name": code,
        "status": "active", "description": "nickname", "code": code, "base": ["Patient"], "type": "string",
        "expression": "Patient.name.where(use = 'nickname').given",
    }
    patient = {"resourceType": "Patient", "name": [{"use": "nickname", "given": [f"Z{uid}"]}]}
    with httpx.Client(base_url=a.base_url, timeout=30) as ca, httpx.Client(base_url=b.base_url, timeout=30) as cb:
        before = cb.get("/Patient", params={code: f"Z{uid}"}).json()
        assert any(e["search"]["mode"] == "outcome" for e in before.get("entry", []))  # unknown on B
        r = ca.post("/SearchParameter", json=parameter, headers=FHIR_JSON)
        assert r.status_code == 201, r.text
        sp_id = r.json()["id"]
        # written through B: B's index must use the new parameter at once
        assert cb.post("/Patient", json=patient, headers=FHIR_JSON).status_code == 201
        found = cb.get("/Patient", params={code: f"Z{uid}"}).json()
        assert found["total"] == 1, found
        assert ca.get("/Patient", params={code: f"Z{uid}"}).json()["total"] == 1
        assert code in str(cb.get("/metadata").json())
        # retired on B: A stops knowing it
        retired = {**parameter, "id": sp_id, "status": "retired"}
        assert cb.put(f"/SearchParameter/{sp_id}", json=retired, headers=FHIR_JSON).status_code == 200
        after = ca.get("/Patient", params={code: f"Z{uid}"}).json()
        assert any(e["search"]["mode"] == "outcome" for e in after.get("entry", []))
