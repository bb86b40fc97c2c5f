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
