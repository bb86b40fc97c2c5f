"""evi-fhir ig package / ig snapshot / validate."""

import json
import tarfile
from pathlib import Path

from fhir_server.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_package_is_an_npm_fhir_package_with_an_index(tmp_path):
    out = tmp_path / "package.tgz"
    assert main(["ig", "package", "--out", str(out)]) == 0
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("package/package.json"))
        index = json.load(tar.extractfile("package/.index.json"))
    assert manifest["fhirVersions"] == ["4.0.1"] and manifest["canonical"] == "https://evi-fhir.org/fhir"
    assert manifest["dependencies"] == {"hl7.fhir.r4.core": "4.0.1"}
    profiles = sorted(p.name for p in (ROOT / "profiles").glob("*.json"))
    assert {f["filename"] for f in index["files"]} == set(profiles)
    assert {f"package/{p}" for p in profiles} <= names
    patient = next(f for f in index["files"] if f["filename"] == "StructureDefinition-evi-patient.json")
    assert patient["url"] == "https://evi-fhir.org/fhir/StructureDefinition/evi-patient" and patient["type"] == "Patient"
    assert any(n.startswith("package/example/") for n in names)


def test_snapshot_is_up_to_date(tmp_path):
    """profiles/ carries generated snapshots; regenerating them changes nothing."""
    copy = tmp_path / "profiles"
    copy.mkdir()
    for p in (ROOT / "profiles").glob("*.json"):
        (copy / p.name).write_bytes(p.read_bytes())
    assert main(["ig", "snapshot", "--profiles", str(copy)]) == 0
    stale = [p.name for p in copy.glob("StructureDefinition-*.json") if p.read_bytes() != (ROOT / "profiles" / p.name).read_bytes()]
    assert stale == [], "run: evi-fhir ig snapshot"


def test_validate_files_offline(capsys):
    valid = sorted((ROOT / "examples" / "valid").glob("Patient-*.json"))[0]
    invalid = ROOT / "examples" / "invalid" / "appointment-without-care-level.json"
    expected = json.loads(invalid.with_name("appointment-without-care-level.expected.json").read_text())
    assert main(["validate", str(valid)]) == 0
    assert main(["validate", str(invalid), "--profile", expected["profile"]]) == 1
    out = capsys.readouterr().out
    assert f"{valid}: ok" in out and "FAIL" in out and "careLevel" in out
