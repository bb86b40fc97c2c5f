"""The README's commands work as written: the quick start's serve and load commands with
the examples, the $triage worked example against what they loaded, and .ci/run running
exactly the README's test command (in its own environment)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import httpx
import pytest

from fhir_server.cli import _parser, main
from fhir_server.cli.common import settings_of as _settings
from tests.support.live_server import LiveServer

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _line(prefix: str) -> str:
    found = [line.strip() for line in README.splitlines() if line.strip().startswith(prefix)]
    assert found, f"README has no line starting with {prefix!r}"
    return found[0]


def test_ci_runs_exactly_the_readmes_test_command_in_its_own_environment():
    # the test command first installs the browser the dashboard's tests drive (Debian packages)
    serve, test = _line("python3 -m venv .venv &&"), _line("apt-get install -y chromium chromium-driver &&")
    assert "python3 -m venv .venv-test &&" in test
    assert test in (ROOT / ".ci" / "run").read_text().splitlines()
    assert ".venv/" not in test.replace(".venv-test/", "") and ".venv-test" not in serve


def _serve_settings():
    command = _line("python3 -m venv .venv &&").split("&&")[-1].split()
    assert command[:2] == [".venv/bin/evi-fhir", "serve"]
    return _settings(_parser().parse_args(command[1:]))


def _triage_example() -> tuple[str, dict]:
    found = re.search(r"curl -s -X POST 'localhost:8080/fhir/(Task/[^/]+/\$triage)' .*? -d '(.*?)'\n", README, re.S)
    assert found, "README has no $triage example"
    return found.group(1), json.loads(found.group(2))


@pytest.fixture
def loaded(tmp_path, monkeypatch, capsys):
    """The README's load command, run from the checkout as the README says, on a fresh store."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("EVI_STORAGE", f"sqlite://{tmp_path / 'evi.db'}")
    command = shlex.split(_line(".venv/bin/evi-fhir load "))
    assert "examples/invalid" not in command and "--region" in command
    assert main(command[1:]) == 0
    assert re.search(r"loaded (\d+) of \1 files", capsys.readouterr().err)
    return tmp_path / "evi.db"


def test_the_quick_start_serves_and_triages_what_the_readme_loads(loaded):
    settings = _serve_settings()
    assert settings.region_file == "regions/vgr.toml"
    path, body = _triage_example()
    with LiveServer(storage=f"sqlite://{loaded}", region_file=settings.region_file) as live:
        with httpx.Client(base_url=live.base_url, timeout=30) as http:
            queue = http.get("/Task/$triage-queue", params={"owner": "Organization/evi-vgr"}).json()
            assert "Task/" + path.split("/")[1] in {f"Task/{e['resource']['id']}" for e in queue["entry"]}
            done = http.post("/" + path, json=body, headers={"Content-Type": "application/fhir+json"})
            assert done.status_code == 200, done.text
            out = {p["name"]: p["resource"] for p in done.json()["parameter"]}
            assert out["task"]["status"] == "completed" and out["created"]["resourceType"] == "Appointment"
            again = http.post("/" + path, json=body, headers={"Content-Type": "application/fhir+json"})
            assert again.status_code == 409
            # besides the two hand-written ones, the intake Tasks the workflow made for the loaded
            # referrals, owned by the region's EVI unit
            tasks = http.get("/Task", params={"code": "https://evi-fhir.org/fhir/CodeSystem/evi-task-type|intake",
                                              "owner": "Organization/evi-vgr"}).json()
            assert tasks["total"] > 2


def test_without_the_region_the_examples_two_evi_units_are_ambiguous(tmp_path, capsys):
    """Why the README names --region: the examples hold the EVI units of VGR and Kalmar."""
    files = [str(ROOT / "examples" / "valid" / f"Organization-evi-{r}.json") for r in ("vgr", "kalmar")]
    files.append(str(ROOT / "examples" / "scenarios" / "self-referral-guardian.json"))
    assert main(["load", *files, "--storage", f"sqlite://{tmp_path / 'a.db'}"]) == 1
    assert "ambiguous" in capsys.readouterr().err
    region = str(ROOT / "regions" / "vgr.toml")
    assert main(["load", *files, "--storage", f"sqlite://{tmp_path / 'b.db'}", "--region", region]) == 0


def test_load_skips_and_lists_what_is_not_a_fhir_resource(tmp_path, capsys):
    db = f"sqlite://{tmp_path / 'evi.db'}"
    name = "patient-missing-birthdate"
    assert main(["load", str(ROOT / "examples" / "invalid" / f"{name}.expected.json"),
                 str(ROOT / "examples" / "valid" / "Organization-evi-vgr.json"), "--storage", db]) == 0
    err = capsys.readouterr().err
    assert "loaded 1 of 1 files" in err and f"skipped {ROOT / 'examples' / 'invalid' / name}.expected.json" in err
    # the invalid examples themselves are refused (they break their profiles): named, exit 1
    assert main(["load", str(ROOT / "examples" / "invalid" / f"{name}.json"), "--storage", db]) == 1
    assert f"failed {ROOT / 'examples' / 'invalid' / name}.json" in capsys.readouterr().err


def _auth_section() -> list[str]:
    section = README.split("## Running with authentication", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_running_with_authentication_works_as_written(tmp_path, monkeypatch, capsys):
    """The section's commands, in order: register with a new key, serve with auth on,
    get a token, an authenticated request, and a 401 without it."""
    add, serve, token, with_token, without = _auth_section()
    monkeypatch.chdir(tmp_path)
    assert main(shlex.split(add)[1:]) == 0
    settings = _settings(_parser().parse_args(shlex.split(serve)[1:]))
    assert (settings.auth, settings.clients_file, settings.region_file) == ("smart", "clients.toml", "regions/vgr.toml")
    command = shlex.split(token.removeprefix("TOKEN=$(").removesuffix(")"))
    with LiveServer(storage="sqlite://:memory:", auth="smart", clients_file="clients.toml",
                    region_file=str(ROOT / settings.region_file)) as live:
        capsys.readouterr()
        assert main([*command[1:], "--url", live.base_url]) == 0
        access = capsys.readouterr().out.strip()
        path = re.search(r"localhost:8080/fhir(/\S+)", with_token).group(1)
        assert '-H "Authorization: Bearer $TOKEN"' in with_token and path in without
        answer = httpx.get(live.base_url + path, headers={"Authorization": f"Bearer {access}"})
        assert answer.status_code == 200 and answer.json()["resourceType"] == "Bundle"
        refused = httpx.get(live.base_url + path)
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")


def test_the_readmes_swedish_identifiers_pass_their_checks():
    """Every identifier the README writes out (system, value) is one the server accepts."""
    from fhir_server.model import identifier_problem

    found = re.findall(r'"system":\s*"([^"]+)",\s*"value":\s*"([^"]+)"', README)
    found += [tuple(m) for m in re.findall(r"identifier=([^|\s']+)\|([^'&\s]+)", README)]
    assert any(s.endswith("/personnummer") for s, _ in found), found
    assert [(s, v, identifier_problem(s, v)) for s, v in found if identifier_problem(s, v)] == []
