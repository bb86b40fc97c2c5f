"""Shared helpers for the table-driven search suite (R4 search.html), run over HTTP.

Each module seeds its own in-memory server (module scope) with resources whose
ids are their labels (created by ``PUT Type/label`` in one transaction), so every
case row reads ``(query, expected ids)`` and totals are exact.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import httpx
import orjson
import pytest

from tests.support.live_server import LiveServer

FHIR_JSON = "application/fhir+json"
PNR = "http://electronichealth.se/identifier/personnummer"
HSA = "urn:oid:1.2.752.29.4.19"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


class SearchClient:
    """An httpx client on one live server, with helpers that assert as they go."""

    def __init__(self, live: LiveServer):
        self.live = live
        self.base_url = live.base_url
        self.http = httpx.Client(base_url=live.base_url, timeout=30, headers={"Accept": FHIR_JSON})

    def close(self) -> None:
        self.http.close()

    # -- writes ----------------------------------------------------------------
    def seed(self, *resources: dict) -> None:
        """PUT every resource at Type/id in one transaction (ids are the test labels)."""
        entries = [
            {
                "fullUrl": f"{self.base_url}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
            }
            for r in resources
        ]
        r = self.http.post(
            "",
            content=orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries}),
            headers={"Content-Type": FHIR_JSON},
        )
        assert r.status_code == 200, r.text

    def put(self, resource: dict) -> dict:
        r = self.http.put(
            f"/{resource['resourceType']}/{resource['id']}",
            content=orjson.dumps(resource),
            headers={"Content-Type": FHIR_JSON},
        )
        assert r.status_code in (200, 201), r.text
        return r.json()

    def post(self, resource: dict) -> httpx.Response:
        return self.http.post(
            f"/{resource['resourceType']}", content=orjson.dumps(resource), headers={"Content-Type": FHIR_JSON}
        )

    # -- reads -----------------------------------------------------------------
    def get(self, query: str, **headers) -> httpx.Response:
        """GET a relative query such as ``Patient?name=asa`` or an absolute link."""
        if query.startswith("http"):
            return self.http.get(query, headers=headers)
        return self.http.get("/" + query.lstrip("/"), headers=headers)

    def bundle(self, query: str, **headers) -> dict:
        r = self.get(query, **headers)
        assert r.status_code == 200, f"{query}: {r.status_code} {r.text}"
        body = r.json()
        assert body["resourceType"] == "Bundle" and body["type"] == "searchset", body
        return body

    def ids(self, query: str, **headers) -> set[str]:
        """Ids of the matches (all pages), checking no match appears twice."""
        found = all_pages(self, query, **headers)
        ids = [e["resource"]["id"] for e in found if e["search"]["mode"] == "match"]
        assert len(ids) == len(set(ids)), f"{query}: duplicate matches {ids}"
        return set(ids)


def entries(bundle: dict, mode: str | None = None) -> list[dict]:
    return [e for e in bundle.get("entry", ()) if mode is None or e.get("search", {}).get("mode") == mode]


def match_ids(bundle: dict) -> list[str]:
    return [e["resource"]["id"] for e in entries(bundle, "match")]


def included(bundle: dict) -> set[str]:
    return {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in entries(bundle, "include")}


def outcome(bundle: dict) -> dict | None:
    found = entries(bundle, "outcome")
    assert len(found) <= 1, found
    return found[0]["resource"] if found else None


def link(bundle: dict, relation: str) -> str | None:
    for l in bundle.get("link", ()):
        if l["relation"] == relation:
            return l["url"]
    return None


def link_params(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def all_pages(client: SearchClient, query: str, limit: int = 100, **headers) -> list[dict]:
    """Entries of every page, following ``next`` links."""
    out: list[dict] = []
    body = client.bundle(query, **headers)
    out.extend(body.get("entry", ()))
    for _ in range(limit):
        nxt = link(body, "next")
        if not nxt:
            return out
        body = client.bundle(nxt, **headers)
        out.extend(body.get("entry", ()))
    raise AssertionError(f"{query}: more than {limit} pages")


@pytest.fixture(scope="module")
def own_server():
    """An in-memory server for one test module (exact totals, system-wide results)."""
    with LiveServer(storage="sqlite://:memory:") as live:
        client = SearchClient(live)
        try:
            yield client
        finally:
            client.close()


# -- resource builders -----------------------------------------------------------------


def patient(rid: str, *, pnr: str | None = None, family: str | None = None, given: list[str] | None = None,
            birth: str | None = None, city: str | None = None, gender: str | None = None, **extra) -> dict:
    p: dict = {"resourceType": "Patient", "id": rid}
    if pnr:
        p["identifier"] = [{"system": PNR, "value": pnr}]
    if family or given:
        name: dict = {}
        if family:
            name["family"] = family
        if given:
            name["given"] = given
        p["name"] = [name]
    if birth:
        p["birthDate"] = birth
    if city:
        p["address"] = [{"city": city}]
    if gender:
        p["gender"] = gender
    p.update(extra)
    return p


def organization(rid: str, name: str, hsa: str | None = None, **extra) -> dict:
    o: dict = {"resourceType": "Organization", "id": rid, "name": name}
    if hsa:
        o["identifier"] = [{"system": HSA, "value": hsa}]
    o.update(extra)
    return o


def service_request(rid: str, subject: str | dict | None, *, status: str = "active", intent: str = "order",
                    code: tuple[str, str, str] | dict | None = None, **extra) -> dict:
    sr: dict = {"resourceType": "ServiceRequest", "id": rid, "status": status, "intent": intent}
    if isinstance(subject, dict):
        sr["subject"] = subject
    elif subject:
        sr["subject"] = {"reference": subject}
    if isinstance(code, dict):
        sr["code"] = code
    elif code:
        sr["code"] = {"coding": [{"system": code[0], "code": code[1], "display": code[2]}]}
    sr.update(extra)
    return sr


def ref(target: str, **extra) -> dict:
    return {"reference": target, **extra}
