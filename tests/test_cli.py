import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from fhir_server.cli import main
from fhir_server.settings import Settings
from fhir_server.storage import open_store
from tests.support.live_server import free_port


def _wait_for(url: str, proc: subprocess.Popen) -> httpx.Response:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"evi-fhir serve exited: {proc.stderr.read().decode()}")
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("server did not come up")


def _serve(args: list[str], env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "fhir_server.cli", "serve", "--log-level", "warning", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )


def test_serve_with_flags_exactly_as_documented(tmp_path):
    port = free_port()
    db = tmp_path / "x.db"
    proc = _serve(["--host", "127.0.0.1", "--port", str(port), "--storage", f"sqlite://{db}"])
    try:
        assert _wait_for(f"http://127.0.0.1:{port}/fhir/metadata", proc).status_code == 200
        r = httpx.post(f"http://127.0.0.1:{port}/fhir/Patient", json={"resourceType": "Patient", "active": True})
        assert r.status_code == 201
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert db.exists()  # sqlite:///abs/path is that absolute path
    with open_store(f"sqlite://{db}").unit_of_work(write=False) as uow:
        assert uow.newest_instant() is not None


def test_serve_takes_settings_from_the_environment(tmp_path):
    port = free_port()
    proc = _serve([], env={"EVI_PORT": str(port), "EVI_STORAGE": "sqlite://:memory:", "EVI_BASE_URL": "https://evi.example/fhir"})
    try:
        r = _wait_for(f"http://127.0.0.1:{port}/fhir/metadata", proc)
        assert r.json()["implementation"]["url"] == "https://evi.example/fhir"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_settings_flags_win_over_environment(monkeypatch):
    monkeypatch.setenv("EVI_PORT", "1234")
    monkeypatch.setenv("EVI_MAX_BODY_SIZE", "99")
    s = Settings(port=4321)
    assert (s.port, s.max_body_size, s.public_base) == (4321, 99, "http://127.0.0.1:4321/fhir")


def test_load_a_folder_of_resources_and_bundles(tmp_path, capsys):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "patient.json").write_text(json.dumps({"resourceType": "Patient", "id": "p1", "active": True}))
    (data / "sub" / "bundle.json").write_text(json.dumps({
        "resourceType": "Bundle", "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a",
             "resource": {"resourceType": "Organization", "name": "EVI Kalmar"},
             "request": {"method": "POST", "url": "Organization"}},
            {"resource": {"resourceType": "ServiceRequest", "id": "sr1", "status": "active", "intent": "order",
                          "subject": {"reference": "Patient/p1"},
                          "requester": {"reference": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"}},
             "request": {"method": "PUT", "url": "ServiceRequest/sr1"}},
        ],
    }))
    (data / "broken.json").write_text('{"resourceType": "Patient", "active": "yes"}')
    db = tmp_path / "evi.db"
    code = main(["load", str(data), "--storage", f"sqlite://{db}"])
    err = capsys.readouterr().err
    assert code == 1  # one file failed, and it is named
    assert "loaded 2 of 3 files" in err and "broken.json" in err and "3/3" in err
    store = open_store(f"sqlite://{db}")
    with store.unit_of_work(write=False) as uow:
        assert uow.current("Patient", "p1") is not None
        sr = json.loads(uow.current("ServiceRequest", "sr1").body)
    assert sr["requester"]["reference"].startswith("Organization/")


def test_load_reports_a_missing_path(tmp_path):
    assert main(["load", str(tmp_path / "nope"), "--storage", "sqlite://:memory:"]) == 2


def test_load_retries_files_that_need_a_later_file(tmp_path, capsys):
    """A SIP CarePlan (rule 8) needs its CareTeam and Consent, which sort after it."""
    data = tmp_path / "data"
    data.mkdir()
    valid = Path(__file__).resolve().parents[1] / "examples" / "valid"
    for name in ("CarePlan-sip-oskar", "CareTeam-sip-oskar", "Consent-sip-oskar", "Goal-sip-oskar-skolnarvaro",
                 "Patient-child-oskar", "Organization-bup-uddevalla", "Organization-socialtjansten-uddevalla",
                 "Organization-elevhalsan-uddevalla"):
        (data / f"{name}.json").write_text((valid / f"{name}.json").read_text())
    db = tmp_path / "evi.db"
    assert main(["load", str(data), "--storage", f"sqlite://{db}"]) == 0
    assert "loaded 8 of 8 files" in capsys.readouterr().err


# authentication (domain.md §5): start refusals, clients add, token

from tests.support.auth import ClientKey, auth_server, bearer, client_entry, write_clients  # noqa: E402


def test_serve_refuses_auth_off_on_an_address_that_is_not_loopback(capsys, monkeypatch):
    monkeypatch.delenv("EVI_AUTH", raising=False)
    assert main(["serve", "--host", "0.0.0.0", "--storage", "sqlite://:memory:"]) == 2
    err = capsys.readouterr().err
    assert "authentication is off and 0.0.0.0 is not a loopback address" in err and "--insecure-no-auth" in err


def test_serve_refuses_smart_without_clients_or_a_provider_and_a_bad_clients_file(tmp_path, capsys):
    assert main(["serve", "--auth", "smart", "--storage", "sqlite://:memory:"]) == 2
    assert "--auth smart needs registered clients" in capsys.readouterr().err
    bad = write_clients(tmp_path / "clients.toml", [{**client_entry(ClientKey.new("kalmar-soc")), "role": "boss"}])
    assert main(["serve", "--auth", "smart", "--clients", str(bad), "--storage", "sqlite://:memory:"]) == 2
    assert "client 'kalmar-soc': key 'role': 'boss' is not one of" in capsys.readouterr().err
    (tmp_path / "typo.toml").write_text('[[client]]\nid = "x"\nrolle = "evi"\n')
    assert main(["serve", "--auth", "smart", "--clients", str(tmp_path / "typo.toml")]) == 2
    assert "client 'x': key 'rolle': unknown key" in capsys.readouterr().err


def test_clients_add_then_token_then_an_authenticated_request(tmp_path, capsys):
    clients, pem = tmp_path / "clients.toml", tmp_path / "kalmar-soc.pem"
    assert main(["clients", "add", "--id", "kalmar-soc", "--name", "Kalmar kommun", "--role", "municipality",
                 "--organization", "Organization/kalmar-soc", "--generate-key", str(pem),
                 "--scopes", "system/*.rs system/Task.cu", "--clients", str(clients)]) == 0
    assert "registered kalmar-soc" in capsys.readouterr().err
    assert main(["clients", "add", "--id", "other", "--name", "Other", "--role", "emperor", "--organization",
                 "Organization/o", "--generate-key", str(tmp_path / "other.pem"), "--clients", str(clients)]) == 2
    assert "key 'role'" in capsys.readouterr().err and not (tmp_path / "other.pem").exists()
    with auth_server(tmp_path, [], clients_file=str(clients)) as live:
        assert main(["token", "--client", "kalmar-soc", "--key", str(pem), "--url", live.base_url]) == 0
        out = capsys.readouterr()
        assert "granted system/*.rs system/Task.cu" in out.err
        token = out.out.strip()
        assert httpx.get(live.base_url + "/Patient", headers=bearer(token)).status_code == 200
        assert main(["token", "--client", "nobody", "--key", str(pem), "--url", live.base_url]) == 1
        assert "401: invalid_client" in capsys.readouterr().err
        assert main(["token", "--client", "kalmar-soc", "--key", str(pem), "--url", live.base_url,
                     "--scope", "system/Patient.d"]) == 1
        assert "invalid_scope" in capsys.readouterr().err


def test_clients_add_takes_a_jwks_file_or_url(tmp_path, capsys):
    clients, key = tmp_path / "clients.toml", ClientKey.new("evi", "RS384")
    (tmp_path / "evi.jwks.json").write_text(json.dumps(key.jwks()))
    common = ["--name", "EVI", "--role", "evi", "--organization", "urn:oid:1.2.752.29.4.19|SE-EVI1", "--clients",
              str(clients)]
    assert main(["clients", "add", "--id", "evi", "--jwks", str(tmp_path / "evi.jwks.json"), *common]) == 0
    assert main(["clients", "add", "--id", "far", "--jwks-url", "https://far.example/jwks.json", *common]) == 0
    assert main(["clients", "add", "--id", "both", "--jwks-url", "https://x/j", "--jwks", "f", *common]) == 2
    assert "exactly one of" in capsys.readouterr().err
    text = clients.read_text()
    assert key.kid in text and 'jwks_url = "https://far.example/jwks.json"' in text


def test_serve_with_workers_hands_them_one_made_up_secret(tmp_path):
    key = ClientKey.new("evi", "ES384")
    clients = write_clients(tmp_path / "clients.toml", [client_entry(key)])
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "EVI_TOKEN_SECRET"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fhir_server.cli", "serve", "--port", str(port), "--auth", "smart", "--clients",
         str(clients), "--workers", "2", "--storage", f"sqlite://{tmp_path / 'evi.db'}", "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        _wait_for(f"http://127.0.0.1:{port}/fhir/metadata", proc)
        base = f"http://127.0.0.1:{port}/fhir"
        form = {"grant_type": "client_credentials", "scope": "system/*.rs", "client_assertion": key.assertion(
            base + "/auth/token"), "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}
        token = httpx.post(base + "/auth/token", data=form).json()["access_token"]
        # new connections spread over both processes: each must know the secret
        assert {httpx.get(base + "/Patient", headers=bearer(token)).status_code for _ in range(12)} == {200}
    finally:
        proc.terminate()
        proc.wait(timeout=20)


# -- reporting: load --migrate and report skr (domain.md §8) ---------------------------------

_SD = "https://evi-fhir.org/fhir/StructureDefinition/"


def _migrated_world(tmp_path) -> Path:
    from tests.support.evi import TEST_REGION, example, patient, personnummer, referral
    from datetime import date

    data = tmp_path / "history"
    data.mkdir()
    units = [example(n) for n in ("Organization-evi-vgr", "Organization-bup-akut-vgr", "Organization-bup-uddevalla")]
    child = patient(date(2014, 2, 3), pnr=personnummer(date(2014, 2, 3)))
    child["id"] = "migrated-child"
    sr = referral("Patient/migrated-child", performer="Organization/bup-uddevalla")
    sr["id"] = "migrated-referral"
    sr["extension"].append({"url": _SD + "evi-received", "valueDateTime": "2026-05-04"})
    encounter = {"resourceType": "Encounter", "id": "migrated-first-assessment", "status": "finished",
                 "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                 "type": [{"coding": [{"system": "https://evi-fhir.org/fhir/CodeSystem/evi-wait-milestone",
                                       "code": "first-assessment"}]}],
                 "basedOn": [{"reference": "ServiceRequest/migrated-referral"}],
                 "serviceProvider": {"reference": "Organization/bup-uddevalla"}, "period": {"start": "2026-06-10"}}
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": r} for r in [*units, child, sr, encounter]]}
    (data / "history.json").write_text(json.dumps(bundle))
    return data, TEST_REGION, child["identifier"][0]["value"]


def test_load_migrate_keeps_receipt_times_and_report_skr_writes_the_csv(tmp_path, capsys, monkeypatch):
    data, region, pnr = _migrated_world(tmp_path)
    db = tmp_path / "evi.db"
    assert main(["load", str(data), "--migrate", "--storage", f"sqlite://{db}", "--region", str(region)]) == 0
    store = open_store(f"sqlite://{db}")
    try:
        with store.unit_of_work(write=False) as uow:
            tasks = [json.loads(v.body) for v in uow.load("Task", uow.current_ids("Task", None, 100))]
    finally:
        store.close()
    (task,) = [t for t in tasks if t.get("focus", {}).get("reference") == "ServiceRequest/migrated-referral"]
    assert task["authoredOn"] == "2026-05-03T22:00:00.000000Z"  # 2026-05-04 00:00 in Stockholm
    assert task["restriction"]["period"]["end"].startswith("2026-05-0")
    monkeypatch.delenv("EVI_PSEUDONYM_KEY", raising=False)
    assert main(["report", "skr", "--month", "2026-06", "--storage", f"sqlite://{db}"]) == 2
    assert "EVI_PSEUDONYM_KEY" in capsys.readouterr().err
    monkeypatch.setenv("EVI_PSEUDONYM_KEY", "k" * 40)
    out = tmp_path / "skr.csv"
    args = ["report", "skr", "--month", "2026-06", "--detail", "--storage", f"sqlite://{db}", "--region", str(region)]
    assert main([*args, "--out", str(out)]) == 0
    rows = out.read_text().splitlines()
    assert rows[1].split(",")[:9] == ["summary", "2026-06", "SE2321000131-E000000000201", "first-assessment",
                                      "completed", "1", "1", "0", "1"]  # 2026-05-04 -> 06-10: 37 days
    assert rows[2].startswith("detail,2026-06,SE2321000131-E000000000201,first-assessment,completed")
    assert pnr not in out.read_text()
    assert main(["report", "skr", "--month", "June", "--storage", f"sqlite://{db}"]) == 2


def test_load_migrate_refuses_referrals_without_a_receipt_time(tmp_path, capsys):
    from tests.support.evi import TEST_REGION, referral

    data = tmp_path / "history"
    data.mkdir()
    sr = referral("Patient/nobody")
    sr["id"] = "no-receipt"
    (data / "sr.json").write_text(json.dumps(sr))
    db = tmp_path / "evi.db"
    assert main(["load", str(data), "--migrate", "--storage", f"sqlite://{db}", "--region", str(TEST_REGION)]) == 1
    assert "without evi-received" in capsys.readouterr().err


def test_export_writes_ndjson_files_with_a_progress_bar(tmp_path, capsys, monkeypatch):
    db = tmp_path / "evi.db"
    examples = Path(__file__).resolve().parents[1] / "examples" / "valid"
    region = Path(__file__).resolve().parent / "support" / "region-test.toml"
    assert main(["load", str(examples), "--storage", f"sqlite://{db}", "--region", str(region)]) == 0
    patients = {json.loads(p.read_text())["id"] for p in examples.glob("Patient-*.json")}
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["export", "--storage", f"sqlite://{db}", "--out", str(out), "--type", "Patient,Organization"]) == 0
    err = capsys.readouterr().err
    assert "resources/s" in err and "Patient.ndjson" in err
    assert sorted(p.name for p in out.iterdir()) == ["Organization.ndjson", "Patient.ndjson"]
    lines = [json.loads(line) for line in (out / "Patient.ndjson").read_text().splitlines()]
    assert {r["id"] for r in lines} == patients and len(lines) == len(patients)
    # pseudonymised: refused without a key, then with one the same patients under pseudonyms
    assert main(["export", "--storage", f"sqlite://{db}", "--out", str(out), "--type", "Patient", "--pseudonymize"]) == 2
    assert "EVI_PSEUDONYM_KEY" in capsys.readouterr().err
    monkeypatch.setenv("EVI_PSEUDONYM_KEY", "cli-export-key-" + "c" * 32)
    assert main(["export", "--storage", f"sqlite://{db}", "--out", str(out), "--type", "Patient", "--pseudonymize"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["Patient.ndjson"]  # the earlier files are replaced
    pseudo = [json.loads(line) for line in (out / "Patient.ndjson").read_text().splitlines()]
    assert len(pseudo) == len(patients) and not any("name" in r or r["id"] in patients for r in pseudo)
    assert main(["export", "--storage", f"sqlite://{db}", "--out", str(out), "--since", "last week"]) == 2


def test_export_on_the_command_line_is_in_the_pdl_log(tmp_path, capsys):
    """An export hands children's data to whoever runs it: one ``$export`` event per child,
    naming the command line's account as the client (domain.md §6), as an API $export does."""
    from fhir_server.storage.sqlite.audit import SqliteAuditStore
    from fhir_server.audit import event_body

    db = tmp_path / "evi.db"
    examples = Path(__file__).resolve().parents[1] / "examples" / "valid"
    region = Path(__file__).resolve().parent / "support" / "region-test.toml"
    assert main(["load", str(examples), "--storage", f"sqlite://{db}", "--region", str(region)]) == 0
    patients = {json.loads(p.read_text())["id"] for p in examples.glob("Patient-*.json")}
    before = SqliteAuditStore(f"{db}-audit")
    known = {r.seq for r in before.scan(0, 100_000)}
    before.close()
    assert main(["export", "--storage", f"sqlite://{db}", "--out", str(tmp_path / "out"), "--patients"]) == 0
    capsys.readouterr()
    audit = SqliteAuditStore(f"{db}-audit")
    try:
        events = [json.loads(event_body(r)) for r in audit.scan(0, 100_000) if r.seq not in known]
    finally:
        audit.close()
    logged = {e["entity"][0]["what"]["reference"].removeprefix("Patient/") for e in events}
    assert logged == patients and len(events) == len(patients)  # one per child, none twice
    for event in events:
        assert [c["code"] for c in event["subtype"]][1:] == ["http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"]
        client = next(a for a in event["agent"] if a["requestor"])
        assert client["who"]["display"].startswith("evi-fhir export on the command line (")
    assert main(["audit", "verify", "--storage", f"sqlite://{db}"]) == 0
