"""The PDL access log with auth on (domain.md §5, §6): who the events name (client,
care unit, requestor), refused requests logged (401 without a caller, 403 for a scope,
404 by the access rules), append-only for every role, and who may read the log and take
a patient's extract."""

from __future__ import annotations

import csv
import io

import httpx
import pytest

from tests.support.auth import ClientKey, access_token, auth_server, bearer, client_entry

FHIR_JSON = {"Content-Type": "application/fhir+json"}
ROLES = {
    "admin": ("admin", "Organization/evi-vgr", "system/*.cruds"),
    "evi": ("evi", "Organization/evi-vgr", "system/*.cruds"),
    "unit": ("care-unit", "Organization/bup-uddevalla", "system/*.cruds"),
    "kalmar": ("municipality", "Organization/socialtjansten-kalmar", "system/*.rs"),
    "reporting": ("reporting", "Organization/evi-vgr", "system/*.rs"),
    "narrow": ("evi", "Organization/evi-vgr", "system/Patient.rs"),
}
CHILD = {"resourceType": "Patient", "id": "audit-child", "name": [{"family": "Loggad"}],
         "managingOrganization": {"reference": "Organization/bup-uddevalla"}}
OTHER = {"resourceType": "Patient", "id": "audit-other", "name": [{"family": "Annan"}]}
UNITS = [{"resourceType": "Organization", "id": o.split("/")[1], "name": o} for o in
         {"Organization/evi-vgr", "Organization/bup-uddevalla", "Organization/socialtjansten-kalmar"}]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("audit-roles")
    keys = {name: ClientKey.new(f"c-{name}") for name in ROLES}
    clients = [client_entry(keys[n], role=r, organization=o, scopes=tuple(s.split())) for n, (r, o, s) in ROLES.items()]
    with auth_server(tmp, clients, storage=f"sqlite://{tmp / 'evi.db'}") as live:
        tokens = {n: access_token(live, keys[n], ROLES[n][2]) for n in ROLES}
        http = {n: httpx.Client(base_url=live.base_url, headers=bearer(t), timeout=30) for n, t in tokens.items()}
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in [*UNITS, CHILD, OTHER]]}
        assert http["admin"].post("", json=bundle, headers=FHIR_JSON).status_code == 200
        yield live, http
        for client in http.values():
            client.close()


def _last(http, pid: str) -> dict:
    body = http["admin"].get("/AuditEvent", params={"patient": pid, "_count": "1000"}).json()
    return body["entry"][-1]["resource"]


def _agent(event, code: str) -> dict:
    return next(a for a in event["agent"] if a["type"]["coding"][0]["code"] == code)


def test_a_read_names_client_and_care_unit_with_the_client_as_requestor(world):
    _, http = world
    assert http["unit"].get("/Patient/audit-child").status_code == 200
    event = _last(http, "audit-child")
    client = event["agent"][0]
    assert client["who"]["identifier"] == {"value": "c-unit"} and client["requestor"]
    assert [a for a in event["agent"] if a["requestor"]] == [client]
    assert _agent(event, "PROV")["who"]["reference"] == "Organization/bup-uddevalla"
    assert (event["action"], event["outcome"]) == ("R", "0")


def test_a_read_refused_by_the_access_rules_is_logged(world):
    _, http = world
    assert http["kalmar"].get("/Patient/audit-child").status_code == 404
    event = _last(http, "audit-child")
    assert (event["action"], event["outcome"]) == ("R", "4") and "HTTP 404" in event["outcomeDesc"]
    assert event["agent"][0]["who"]["identifier"]["value"] == "c-kalmar"


def test_a_scope_refusal_is_logged(world):
    _, http = world
    r = http["narrow"].get("/Patient/audit-other/Observation")
    assert r.status_code == 403
    event = _last(http, "audit-other")
    assert (event["subtype"][0]["code"], event["outcome"]) == ("search-type", "4")
    assert event["agent"][0]["who"]["identifier"]["value"] == "c-narrow"


def test_no_token_is_logged_without_a_caller(world):
    live, http = world
    for headers in ({}, {"Authorization": "Bearer garbage"}):
        r = httpx.get(f"{live.base_url}/Patient/audit-other", headers=headers)
        assert r.status_code == 401
        event = _last(http, "audit-other")
        assert (event["action"], event["outcome"]) == ("R", "4") and "HTTP 401" in event["outcomeDesc"]
        client = event["agent"][0]
        assert client["who"]["display"].startswith("unauthenticated") and client["requestor"]
        assert client["network"]["address"] == "127.0.0.1"


@pytest.mark.parametrize("name", list(ROLES))
def test_no_role_writes_an_audit_event(world, name):
    _, http = world
    body = {"resourceType": "AuditEvent", "type": {"code": "rest"}, "recorded": "2026-01-01T00:00:00Z",
            "agent": [{"requestor": True}], "source": {"observer": {"display": "me"}}}
    before = http["admin"].get("/AuditEvent", params={"_count": "0"}).json()["total"]
    for method, path in (("POST", "/AuditEvent"), ("PUT", "/AuditEvent/1"), ("DELETE", "/AuditEvent/1"),
                         ("PATCH", "/AuditEvent/1")):
        r = http[name].request(method, path, json=[] if method == "PATCH" else body)
        assert r.status_code == 405, (name, method, r.text)
    in_bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": body, "request": {"method": "POST", "url": "AuditEvent"}}]}
    assert http[name].post("", json=in_bundle, headers=FHIR_JSON).status_code == 405
    stored = http["admin"].get("/AuditEvent", params={"_count": "1000"}).json()["entry"][before:]
    assert all(e["resource"]["agent"][0]["type"] for e in stored)  # the server's own events
    assert [e["resource"]["subtype"][0]["code"] for e in stored] == ["transaction"]  # the refused Bundle


@pytest.mark.parametrize("name, status", [("admin", 200), ("evi", 403), ("unit", 403), ("kalmar", 403),
                                          ("reporting", 403)])
def test_only_admin_reads_the_log(world, name, status):
    _, http = world
    assert http[name].get("/AuditEvent", params={"patient": "audit-child"}).status_code == status
    assert http[name].get("/AuditEvent/1").status_code == status


@pytest.mark.parametrize("name, status", [("admin", 200), ("evi", 200), ("unit", 403), ("kalmar", 403),
                                          ("reporting", 403)])
def test_the_extract_is_for_admin_and_evi(world, name, status):
    _, http = world
    r = http[name].get("/Patient/audit-child/$access-log", headers={"Accept": "text/csv"})
    assert r.status_code == status, r.text
    if status == 200:
        rows = list(csv.reader(io.StringIO(r.text)))
        assert rows[0] == ["time", "action", "user", "care_unit", "client", "resource"]
        assert ["c-admin"] == [row[4] for row in rows[1:2]]  # the admin's PUT came first
        assert "Organization/evi-vgr" == rows[1][3]


def test_a_persons_token_makes_the_user_the_requestor(tmp_path):
    from tests.support.auth import IdentityProvider

    person = {"hsa_id": "SE2321000032-USR1", "role": "evi", "care_unit": "SE2321000032-EVI1", "scope": "user/*.cruds"}
    with IdentityProvider(tmp_path) as idp, auth_server(tmp_path, [], **idp.settings()) as live:
        http = httpx.Client(base_url=live.base_url, headers=bearer(idp.mint(**person)), timeout=30)
        pid = http.post("/Patient", json={"resourceType": "Patient"}, headers=FHIR_JSON).json()["id"]
        assert http.get(f"/Patient/{pid}").status_code == 200
        assert http.get("/AuditEvent", params={"patient": pid}).status_code == 403  # evi does not read the log
        rows = list(csv.reader(io.StringIO(http.get(f"/Patient/{pid}/$access-log", params={"_format": "csv"}).text)))
    assert [row[1:4] for row in rows[1:]] == [["C", "SE2321000032-USR1", "SE2321000032-EVI1"],
                                               ["R", "SE2321000032-USR1", "SE2321000032-EVI1"]]
