"""Absolute URLs in answers follow the address the client used (issue 11): fhirpy pages
with whatever host name it was given, and a proxy's Forwarded headers count only when
the server trusts its proxy."""

from __future__ import annotations

import httpx
import pytest
from fhirpy import AsyncFHIRClient, SyncFHIRClient

from tests.support.live_server import LiveServer

FHIR_JSON = {"Content-Type": "application/fhir+json"}
SYS = "urn:evi:test:links"


@pytest.fixture(scope="module")
def default_server(tmp_path_factory):
    """A server started with defaults (no --base-url), holding 130 tagged Patients."""
    db = tmp_path_factory.mktemp("links") / "evi.db"
    with LiveServer(storage=f"sqlite://{db}") as live:
        entries = [{"resource": {"resourceType": "Patient", "identifier": [{"system": SYS, "value": f"p{i:03d}"}]},
                    "request": {"method": "POST", "url": "Patient"}} for i in range(130)]
        r = httpx.post(live.base_url, json={"resourceType": "Bundle", "type": "transaction", "entry": entries},
                       headers=FHIR_JSON, timeout=60)
        assert r.status_code == 200, r.text
        yield live


def test_fhirpy_sync_pages_through_130_results_as_localhost(default_server):
    client = SyncFHIRClient(f"http://localhost:{default_server.port}/fhir")
    found = client.resources("Patient").search(identifier=f"{SYS}|").limit(20).fetch_all()
    assert len(found) == 130
    assert len({p.id for p in found}) == 130


async def test_fhirpy_async_pages_through_130_results_as_localhost(default_server):
    client = AsyncFHIRClient(f"http://localhost:{default_server.port}/fhir")
    found = await client.resources("Patient").search(identifier=f"{SYS}|").limit(20).fetch_all()
    assert len({p.id for p in found}) == 130


def test_every_absolute_url_uses_the_host_the_client_named(default_server):
    base = f"http://localhost:{default_server.port}/fhir"
    with httpx.Client(base_url=base, timeout=30) as c:
        created = c.post("/Patient", json={"resourceType": "Patient"}, headers=FHIR_JSON)
        assert created.headers["location"].startswith(f"{base}/Patient/")
        page = c.get("/Patient", params={"identifier": f"{SYS}|", "_count": "5"}).json()
        assert all(link["url"].startswith(base) for link in page["link"])
        assert all(e["fullUrl"].startswith(f"{base}/Patient/") for e in page["entry"])
        batch = {"resourceType": "Bundle", "type": "transaction",
                 "entry": [{"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}}]}
        answer = c.post("", json=batch, headers=FHIR_JSON).json()
        assert answer["entry"][0]["fullUrl"].startswith(f"{base}/Patient/")
        assert c.get("/metadata").json()["implementation"]["url"] == base


def test_forwarded_headers_are_ignored_unless_the_proxy_is_trusted(default_server):
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "fhir.region.example"}
    page = httpx.get(f"{default_server.base_url}/Patient", params={"_count": "1"}, headers=headers).json()
    assert page["link"][0]["url"].startswith(default_server.base_url)


def test_behind_a_trusted_proxy_links_name_the_proxy(tmp_path):
    with LiveServer(storage="sqlite://:memory:", trust_proxy=True) as live:
        headers = {"Forwarded": 'proto=https;host="fhir.region.example"', "X-Forwarded-Prefix": "/evi", **FHIR_JSON}
        r = httpx.post(f"{live.base_url}/Patient", json={"resourceType": "Patient"}, headers=headers)
        assert r.headers["location"].startswith("https://fhir.region.example/evi/fhir/Patient/")


def test_a_pinned_base_url_is_used_whatever_the_host(tmp_path):
    with LiveServer(storage="sqlite://:memory:", base_url="https://fhir.region.example/r4") as live:
        r = httpx.post(f"http://127.0.0.1:{live.port}/fhir/Patient", json={"resourceType": "Patient"},
                       headers={**FHIR_JSON, "Host": "localhost"})
        assert r.headers["location"].startswith("https://fhir.region.example/r4/Patient/")
