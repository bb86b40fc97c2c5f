"""Reports with auth on: the reporting, evi and admin roles run them, care units and
municipalities get 403; without a pseudonym key reporting answers 403 while the rest of
the server runs (domain.md §5, §8)."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.support.auth import ClientKey, access_token, auth_server, bearer, client_entry
from tests.support.evi import EXAMPLES, FHIR_JSON, PNR, TEST_REGION
from tests.support.live_server import LiveServer

KEY = "access-test-key-" + "y" * 32
ROLES = {
    "admin": ("admin", "Organization/evi-vgr"),
    "evi": ("evi", "Organization/evi-vgr"),
    "reporting": ("reporting", "Organization/evi-vgr"),
    "bup": ("care-unit", "Organization/bup-uddevalla"),
    "uddevalla": ("municipality", "Organization/socialtjansten-uddevalla"),
}
JANUARY = {"periodStart": "2026-01-01", "periodEnd": "2026-01-31"}


@pytest.fixture(scope="module")
def clients(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reporting-access")
    keys = {name: ClientKey.new(f"r-{name}") for name in ROLES}
    entries = [client_entry(keys[n], role=r, organization=o, scopes=("system/*.rs",) if r == "reporting"
                            else ("system/*.cruds",)) for n, (r, o) in ROLES.items()]
    with auth_server(tmp, entries, storage=f"sqlite://{tmp / 'evi.db'}", region_file=str(TEST_REGION),
                     pseudonym_key=KEY) as live:
        tokens = {n: access_token(live, keys[n], "system/*.rs" if n == "reporting" else "system/*.cruds")
                  for n in ROLES}
        resources = [json.loads(p.read_text()) for p in sorted((EXAMPLES / "valid").glob("*.json"))]
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in resources]}
        loaded = httpx.post(live.base_url, json=bundle, headers={**bearer(tokens["admin"]), **FHIR_JSON}, timeout=120)
        assert loaded.status_code == 200, loaded.text[:500]
        made = {n: httpx.Client(base_url=live.base_url, headers=bearer(t), timeout=60) for n, t in tokens.items()}
        yield made
        for c in made.values():
            c.close()


def _count(report: dict) -> int:
    return report["group"][0]["population"][0]["count"]


def test_reporting_evi_and_admin_get_the_same_aggregates(clients):
    counts = {}
    for name in ("admin", "evi", "reporting"):
        r = clients[name].get("/Measure/evi-contacts/$evaluate-measure", params=JANUARY)
        assert r.status_code == 200, (name, r.text)
        counts[name] = _count(r.json())
    assert counts["admin"] >= 2 and len(set(counts.values())) == 1
    # the reporting role reads nothing through the normal API
    patients = clients["reporting"].get("/Patient")
    assert patients.status_code == 403 or patients.json().get("total", 0) == 0


def test_reporting_gets_pseudonyms_never_personnummer(clients):
    r = clients["reporting"].get("/$skr-wait-times", params={"month": "2026-02", "detail": "true", "_format": "csv"})
    assert r.status_code == 200, r.text
    assert "detail," in r.text
    numbers = [i["value"] for p in sorted((EXAMPLES / "valid").glob("Patient-*.json"))
               for i in json.loads(p.read_text()).get("identifier", []) if i.get("system") == PNR]
    assert numbers and not any(n in r.text for n in numbers)
    listed = clients["reporting"].get("/Measure/evi-contacts/$evaluate-measure",
                                      params={**JANUARY, "reportType": "subject-list"})
    assert listed.status_code == 200
    assert not any(n in listed.text for n in numbers)


@pytest.mark.parametrize("name", ["bup", "uddevalla"])
def test_care_units_and_municipalities_are_refused(clients, name):
    for path, params in [("/Measure/evi-contacts/$evaluate-measure", JANUARY), ("/$skr-wait-times", {"month": "2026-02"})]:
        r = clients[name].get(path, params=params)
        assert r.status_code == 403, r.text
        assert r.json()["resourceType"] == "OperationOutcome"


def test_without_a_key_reporting_refuses_and_the_server_runs():
    with LiveServer(storage="sqlite://:memory:") as live, httpx.Client(base_url=live.base_url, timeout=30) as c:
        r = c.get("/$skr-wait-times", params={"month": "2026-02"})
        assert r.status_code == 403
        assert "EVI_PSEUDONYM_KEY" in r.json()["issue"][0]["diagnostics"]
        r = c.get("/Measure/evi-contacts/$evaluate-measure", params=JANUARY)
        assert r.status_code == 403
        assert c.get("/metadata").status_code == 200
        assert c.get("/Patient").status_code == 200


def _intake_of(client, sr_id: str) -> dict:
    bundle = client.get("/Task", params={"focus": f"ServiceRequest/{sr_id}",
                                         "code": "https://evi-fhir.org/fhir/CodeSystem/evi-task-type|intake"}).json()
    (task,) = [e["resource"] for e in bundle["entry"]]
    return task


def test_evi_received_is_taken_from_admin_only(clients):
    from tests.support.evi import SD, referral

    def post(name: str, received: str) -> httpx.Response:
        sr = referral("Patient/child-maja")
        sr["extension"].append({"url": SD + "evi-received", "valueDateTime": received})
        return clients[name].post("/ServiceRequest", json=sr, headers=FHIR_JSON)

    r = post("admin", "2026-03-02T08:00:00+01:00")
    assert r.status_code == 201, r.text
    assert _intake_of(clients["admin"], r.json()["id"])["authoredOn"] == "2026-03-02T07:00:00.000000Z"
    r = post("evi", "2026-03-02T08:00:00+01:00")
    assert r.status_code == 201, r.text
    stored = r.json()
    assert not any(e["url"] == SD + "evi-received" for e in stored.get("extension", []))
    assert _intake_of(clients["admin"], stored["id"])["authoredOn"] == stored["meta"]["lastUpdated"]
    before = clients["admin"].get("/ServiceRequest", params={"_summary": "count"}).json()["total"]
    r = post("admin", "2999-01-01T00:00:00+01:00")
    assert r.status_code == 422 and r.json()["resourceType"] == "OperationOutcome"
    assert clients["admin"].get("/ServiceRequest", params={"_summary": "count"}).json()["total"] == before
