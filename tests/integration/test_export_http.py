"""The Bulk Data export over HTTP with real tokens (Bulk Data Access IG 2.0, domain.md §8):
kick-off, polling, manifest, download and cancel at the three levels, ``_since``,
``_typeFilter``, who may see a job and its files, what a municipality's export holds and
the reporting role's pseudonymised output. Restart after kill -9: test_export_restart.py;
the engine-level cases on both backends: tests/reporting/test_bulk_export.py."""

from __future__ import annotations

import json
import re
import time
import uuid

import httpx
import orjson
import pytest

from tests.support.auth import ClientKey, access_token, auth_server, bearer, client_entry
from tests.support.evi import EXAMPLES, PNR, TEST_REGION

FHIR_JSON = {"Content-Type": "application/fhir+json"}
ASYNC = {"Prefer": "respond-async"}
KEY = "export-http-pseudonym-key-" + "k" * 24
ROLES = {
    # name: (role, organization, scopes)
    "admin": ("admin", "Organization/evi-vgr", "system/*.cruds"),
    "evi": ("evi", "Organization/evi-vgr", "system/*.cruds"),
    "evi2": ("evi", "Organization/evi-vgr", "system/*.cruds"),
    "kalmar": ("municipality", "Organization/socialtjansten-kalmar", "system/*.rs"),
    "reporting": ("reporting", "Organization/evi-vgr", "system/*.rs"),
}
GROUP = {
    "resourceType": "Group", "id": "export-cohort", "type": "person", "actual": True,
    "member": [{"entity": {"reference": "Patient/child-saga"}}, {"entity": {"reference": "Patient/child-ella"}},
               {"entity": {"reference": "Patient/child-hugo"}, "inactive": True}],
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A server with auth on holding the example data and a Group; a client per role."""
    tmp = tmp_path_factory.mktemp("export-http")
    keys = {name: ClientKey.new(f"x-{name}") for name in ROLES}
    clients = [client_entry(keys[n], role=r, organization=o, scopes=tuple(s.split())) for n, (r, o, s) in ROLES.items()]
    with auth_server(tmp, clients, storage=f"sqlite://{tmp / 'evi.db'}", region_file=str(TEST_REGION),
                     pseudonym_key=KEY, export_dir=str(tmp / "exports"), export_batch_size=5) as live:
        tokens = {n: access_token(live, keys[n], ROLES[n][2]) for n in ROLES}
        resources = [json.loads(p.read_text()) for p in sorted((EXAMPLES / "valid").glob("*.json"))] + [GROUP]
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in resources]}
        loaded = httpx.post(live.base_url, json=bundle, headers={**bearer(tokens["admin"]), **FHIR_JSON}, timeout=120)
        assert loaded.status_code == 200, loaded.text[:500]
        http = {n: httpx.Client(base_url=live.base_url, headers=bearer(t), timeout=30) for n, t in tokens.items()}
        yield live, http
        for c in http.values():
            c.close()


def kick_off(client: httpx.Client, path: str = "/$export", **params) -> str:
    r = client.get(path, params=params, headers=ASYNC)
    assert r.status_code == 202, r.text
    assert r.content == b""
    return r.headers["content-location"]


def wait(client: httpx.Client, status_url: str, timeout: float = 60) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(status_url)
        if r.status_code != 202:
            return r
        assert r.headers["retry-after"].isdigit() and len(r.headers["x-progress"]) < 100
        assert time.monotonic() < deadline, "the export did not finish"
        time.sleep(0.1)


def manifest_of(client: httpx.Client, path: str = "/$export", **params) -> dict:
    r = wait(client, kick_off(client, path, **params))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    return r.json()


def download(client: httpx.Client, manifest: dict) -> dict[str, list[dict]]:
    found = {}
    for item in manifest["output"]:
        r = client.get(item["url"])
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/fhir+ndjson")
        lines = r.content.splitlines()
        assert len(lines) == item["count"] > 0
        found[item["type"]] = [orjson.loads(line) for line in lines]
        assert {res["resourceType"] for res in found[item["type"]]} == {item["type"]}
    return found


def ids(found: dict[str, list[dict]]) -> dict[str, set[str]]:
    return {t: {r["id"] for r in rs} for t, rs in found.items()}


def searched(client: httpx.Client, rtype: str, **params) -> set[str]:
    bundle = client.get(f"/{rtype}", params={**params, "_count": "1000", "_elements": "id"}).json()
    assert "next" not in {link["relation"] for link in bundle.get("link", [])}
    return {e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"}


LEVELS = {"system": "/$export", "patient": "/Patient/$export", "group": f"/Group/{GROUP['id']}/$export"}


# ----------------------------------------------------------------------- the protocol


@pytest.mark.parametrize("path", LEVELS.values())
def test_kick_off_needs_prefer_respond_async(world, path):
    _, http = world
    r = http["evi"].get(path)
    assert r.status_code == 400
    assert r.json()["resourceType"] == "OperationOutcome" and "respond-async" in r.text


@pytest.mark.parametrize("params", [{"_outputFormat": "text/csv"}, {"_since": "yesterday"},
                                    {"_typeFilter": "Patient?_sort=name"}, {"_type": "Nonsense"},
                                    {"_elements": "id"}])
def test_bad_kick_off_parameters_are_400_and_start_nothing(world, params):
    _, http = world
    r = http["evi"].get("/$export", params=params, headers=ASYNC)
    assert r.status_code == 400, r.text
    assert r.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("level", LEVELS)
def test_kick_off_poll_manifest_download_and_delete_at_each_level(world, level):
    live, http = world
    client = http["evi"]
    status_url = kick_off(client, LEVELS[level], _outputFormat="application/fhir+ndjson")
    assert re.fullmatch(re.escape(live.base_url) + r"/\$export-status/[0-9a-f]{32}", status_url)
    r = wait(client, status_url)
    assert r.status_code == 200, r.text
    manifest = r.json()
    assert set(manifest) == {"transactionTime", "request", "requiresAccessToken", "output", "deleted", "error"}
    assert manifest["request"].startswith(live.base_url + LEVELS[level]) and "_outputFormat=" in manifest["request"]
    assert manifest["requiresAccessToken"] is True and manifest["error"] == manifest["deleted"] == []
    found = ids(download(client, manifest))
    if level == "system":
        assert found["Organization"] == searched(client, "Organization") and "Group" in found
    else:
        assert "Organization" not in found  # not patient data (the Patient compartment and Task)
        patients = {"child-saga", "child-ella"} if level == "group" else searched(client, "Patient")
        assert found["Patient"] == patients
    # a file needs the token; the same role's other client sees neither job nor files (404)
    url = manifest["output"][0]["url"]
    assert httpx.get(url, timeout=30).status_code == 401
    assert http["evi2"].get(status_url).status_code == 404
    assert http["evi2"].get(url).status_code == 404
    assert http["evi2"].delete(status_url).status_code == 404
    # DELETE: the job and its files are gone
    assert client.delete(status_url).status_code == 202
    assert client.get(status_url).status_code == 404
    assert client.get(url).status_code == 404


@pytest.mark.parametrize("level", LEVELS)
def test_a_job_cancelled_before_it_ends_is_gone(world, level):
    _, http = world
    client = http["evi"]
    status_url = kick_off(client, LEVELS[level])
    assert client.delete(status_url).status_code == 202
    assert client.get(status_url).status_code == 404
    assert client.delete(status_url).status_code == 404


def test_a_post_kick_off_takes_a_parameters_body(world):
    live, http = world
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "_type", "valueString": "Organization,HealthcareService"},
        {"name": "_outputFormat", "valueString": "ndjson"}]}
    r = http["evi"].post("/$export", json=body, headers={**ASYNC, **FHIR_JSON})
    assert r.status_code == 202, r.text
    manifest = wait(http["evi"], r.headers["content-location"]).json()
    assert manifest["request"] == live.base_url + "/$export"
    assert {item["type"] for item in manifest["output"]} == {"Organization", "HealthcareService"}


def test_unknown_files_and_jobs_are_404(world):
    live, http = world
    assert http["evi"].get(f"/$export-status/{uuid.uuid4().hex}").status_code == 404
    assert http["evi"].get("/$export-status/..%2f..%2fetc").status_code == 404
    manifest = manifest_of(http["evi"], _type="Organization")
    job_files = manifest["output"][0]["url"].rsplit("/", 1)[0]
    for name in ("Patient.ndjson", "passwd", "..%2fevi.db"):
        assert http["evi"].get(f"{job_files}/{name}").status_code == 404


# ------------------------------------------------------------------ _since, _typeFilter


def test_since_exports_only_what_changed_after_it_and_lists_what_was_deleted(world):
    _, http = world
    client = http["evi"]
    closing = {"resourceType": "Organization", "id": f"closing-{uuid.uuid4().hex[:8]}", "name": "Stängs"}
    assert client.put(f"/Organization/{closing['id']}", json=closing, headers=FHIR_JSON).status_code == 201
    since = manifest_of(client, _type="Patient")["transactionTime"]
    time.sleep(0.01)
    saga = client.get("/Patient/child-saga").json()
    saga["gender"] = "female"
    assert client.put("/Patient/child-saga", json=saga, headers=FHIR_JSON).status_code == 200
    assert client.delete(f"/Organization/{closing['id']}").status_code in (200, 204)
    manifest = manifest_of(client, _type="Patient,Organization", _since=since)
    assert ids(download(client, manifest)) == {"Patient": {"child-saga"}}
    (item,) = manifest["deleted"]
    assert item["type"] == "Bundle" and item["count"] == 1
    bundle = client.get(item["url"]).json()
    assert bundle["type"] == "transaction"
    assert bundle["entry"] == [{"request": {"method": "DELETE", "url": f"Organization/{closing['id']}"}}]


def test_type_filters_are_searches_of_their_type(world):
    _, http = world
    client = http["evi"]
    manifest = manifest_of(client, _type="Patient,Organization",
                           _typeFilter="Patient?gender=female,Patient?gender=male&birthdate=lt2012")
    found = ids(download(client, manifest))
    assert found["Patient"] == searched(client, "Patient", gender="female") | searched(
        client, "Patient", gender="male", birthdate="lt2012")
    assert found["Organization"] == searched(client, "Organization")


# ------------------------------------------------------------------------------ access


def test_a_municipality_export_holds_exactly_what_it_may_search(world):
    _, http = world
    client = http["kalmar"]
    found = ids(download(client, manifest_of(client)))
    assert found and "AuditEvent" not in found
    for rtype, exported in found.items():
        assert exported == searched(client, rtype), rtype
    assert found["Patient"] < searched(http["evi"], "Patient")


def test_the_reporting_role_gets_pseudonymised_output_only(world):
    _, http = world
    client = http["reporting"]
    assert client.get("/Patient").json().get("total", 0) == 0  # it searches nothing
    manifest = manifest_of(client)
    files = download(client, manifest)
    text = b"".join(client.get(item["url"]).content for item in manifest["output"]).decode()
    patients = http["evi"].get("/Patient", params={"_count": "1000"}).json()["entry"]
    for entry in patients:
        patient = entry["resource"]
        numbers = [i["value"] for i in patient.get("identifier", []) if i.get("system") == PNR]
        assert not any(n in text for n in numbers)
        assert f"Patient/{patient['id']}\"" not in text
        for name in patient.get("name", []):
            assert " ".join([*name.get("given", []), name["family"]]) not in text
    assert len(files["Patient"]) == len(patients)
    for patient in files["Patient"]:
        assert re.fullmatch(r"[0-9a-f]{64}", patient["id"])
        assert not {"name", "telecom", "address", "photo", "contact"} & set(patient)
        assert len(patient.get("birthDate", "2000-01")) == 7
        assert "PSEUDED" in {s["code"] for s in patient["meta"]["security"]}
    pseudonyms = {p["id"] for p in files["Patient"]}
    subjects = {r["subject"]["reference"].removeprefix("Patient/") for r in files.get("ServiceRequest", [])}
    assert subjects and subjects <= pseudonyms  # references still join up


def test_anyone_may_ask_for_pseudonymised_output(world):
    _, http = world
    plain = download(http["evi"], manifest_of(http["evi"], _type="Patient"))
    pseudo = download(http["evi"], manifest_of(http["evi"], _type="Patient", _pseudonymize="true"))
    assert len(plain["Patient"]) == len(pseudo["Patient"])
    assert all("name" not in p for p in pseudo["Patient"]) and any("name" in p for p in plain["Patient"])


def test_the_capability_statement_declares_bulk_data(world):
    _, http = world
    statement = http["evi"].get("/metadata").json()
    assert statement["instantiates"] == ["http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"]
    rest = statement["rest"][0]
    definitions = {op["definition"] for op in rest["operation"] if op["name"] == "export"}
    for resource in rest["resource"]:
        if resource["type"] in ("Patient", "Group"):
            definitions |= {op["definition"] for op in resource.get("operation", []) if op["name"] == "export"}
    assert definitions == {"http://hl7.org/fhir/uv/bulkdata/OperationDefinition/" + name
                           for name in ("export", "patient-export", "group-export")}


# ----------------------------------------------------------------------- the PDL access log

EXPORT = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"


def _export_events(admin: httpx.Client, patient: str, job: str) -> list[dict]:
    bundle = admin.get("/AuditEvent", params={"patient": patient, "_count": "200"}).json()
    return [e["resource"] for e in bundle.get("entry", [])
            if any(s.get("code") == EXPORT for s in e["resource"]["subtype"])
            and {"identifier": {"value": job}} in [x.get("what") for x in e["resource"]["entity"]]]


@pytest.mark.parametrize("level", ["system", "group"])
def test_every_child_an_export_writes_out_is_in_the_access_log(world, level):
    """domain.md §6: an operation that returns several patients' data writes one
    AuditEvent per patient; a job logs each child of a batch before writing it."""
    _, http = world
    client = http["evi"]
    status_url = kick_off(client, LEVELS[level])
    r = wait(client, status_url)
    assert r.status_code == 200, r.text
    job = status_url.rsplit("/", 1)[1]
    found = download(client, r.json())
    exported = ids(found)["Patient"]
    assert exported
    for patient in exported:
        [event] = _export_events(http["admin"], patient, job)  # one per child and job
        assert event["action"] == "E" and event["outcome"] == "0"
        assert {"reference": f"Patient/{patient}"} in [x.get("what") for x in event["entity"]]
        assert event["agent"][0]["who"]["identifier"]["value"] == "x-evi"  # the client that asked
    if level == "group":  # a child outside the Group is logged only where what was written names them
        named = {m for rs in found.values() for r in rs for m in re.findall(r'"Patient/([A-Za-z0-9.-]+)"', json.dumps(r))}
        others = searched(http["admin"], "Patient") - exported
        logged = {p for p in others if _export_events(http["admin"], p, job)}
        assert others - logged and logged <= named
