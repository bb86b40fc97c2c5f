"""evi-fhir ig package / ig snapshot / validate."""

import json
import tarfile
from pathlib import Path

from fhir_server.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _package(tmp_path, *options: str) -> tuple[set[str], dict, dict, dict, dict]:
    out = tmp_path / "package.tgz"
    assert main(["ig", "package", "--out", str(out), *options]) == 0
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("package/package.json"))
        index = json.load(tar.extractfile("package/.index.json"))
        examples = json.load(tar.extractfile("package/example/.index.json"))
        guide = json.load(tar.extractfile("package/ImplementationGuide-evi-fhir.json"))
        patient = json.load(tar.extractfile("package/StructureDefinition-evi-patient.json"))
    return names, manifest, index, examples, {"guide": guide, "patient": patient}


def test_package_is_an_npm_fhir_package_with_an_index(tmp_path):
    names, manifest, index, examples, _ = _package(tmp_path)
    assert manifest["fhirVersions"] == ["4.0.1"] and manifest["canonical"] == "https://evi-fhir.org/fhir"
    assert manifest["dependencies"] == {"hl7.fhir.r4.core": "4.0.1"}
    assert manifest["jurisdiction"] == "urn:iso:std:iso:3166#SE" and manifest["type"] == "fhir.ig"
    assert manifest["author"] and "not configured" in manifest["author"].lower()  # evi-fhir is no organisation
    profiles = sorted(p.name for p in (ROOT / "profiles").glob("*.json"))
    assert index["index-version"] == 2 and examples["index-version"] == 2
    assert {f["filename"] for f in index["files"]} == set(profiles)
    assert {f"package/{p}" for p in profiles} <= names
    patient = next(f for f in index["files"] if f["filename"] == "StructureDefinition-evi-patient.json")
    assert patient["url"] == "https://evi-fhir.org/fhir/StructureDefinition/evi-patient" and patient["type"] == "Patient"
    valid = sorted(p.name for p in (ROOT / "examples" / "valid").glob("*.json"))
    assert {f["filename"] for f in examples["files"]} == set(valid)
    assert {f"package/example/{p}" for p in valid} <= names


def test_the_implementation_guide_resource_lists_everything_and_is_the_one_version(tmp_path):
    _, manifest, index, examples, read = _package(tmp_path)
    guide = read["guide"]
    source = json.loads((ROOT / "profiles" / "ImplementationGuide-evi-fhir.json").read_text())
    assert manifest["version"] == guide["version"] == source["version"] != "0.0.0"
    assert manifest["name"] == guide["packageId"] and guide["jurisdiction"][0]["coding"][0]["code"] == "SE"
    assert {f["version"] for f in index["files"] if "url" in f} == {guide["version"]}
    listed = {e["reference"]["reference"]: e for e in guide["definition"]["resource"]}
    canonical = {f"{f['resourceType']}/{f['id']}" for f in index["files"] if f["resourceType"] != "ImplementationGuide"}
    shown = {f"{f['resourceType']}/{f['id']}" for f in examples["files"]}
    assert set(listed) == canonical | shown
    assert all(listed[r].get("exampleBoolean") is False for r in canonical)
    assert all(listed[r].get("exampleBoolean") is True or listed[r].get("exampleCanonical") for r in shown)
    from fhir_server.model import validate_resource

    validate_resource(guide)


def test_publisher_contact_and_copyright_are_settings_of_the_build(tmp_path, monkeypatch):
    monkeypatch.setenv("EVI_IG_PUBLISHER", "Region Exempel, enheten för e-hälsa")
    monkeypatch.setenv("EVI_IG_CONTACT_URL", "mailto:fhir@region.example")
    _, manifest, _, _, read = _package(tmp_path, "--contact-name", "Förvaltning FHIR", "--copyright", "© Region Exempel")
    assert manifest["author"] == "Region Exempel, enheten för e-hälsa"
    assert manifest["maintainers"] == [{"name": "Förvaltning FHIR", "email": "fhir@region.example"}]
    for resource in read.values():
        assert resource["publisher"] == "Region Exempel, enheten för e-hälsa"
        assert resource["contact"] == [{"name": "Förvaltning FHIR",
                                        "telecom": [{"system": "email", "value": "fhir@region.example"}]}]
        assert resource["copyright"] == "© Region Exempel"


def test_a_resource_off_the_guide_version_stops_the_build(tmp_path, capsys):
    copy = tmp_path / "profiles"
    copy.mkdir()
    for p in (ROOT / "profiles").glob("*.json"):
        (copy / p.name).write_bytes(p.read_bytes())
    stale = copy / "SearchParameter-Task-due.json"
    stale.write_text(stale.read_text().replace('"version": "0.1.0"', '"version": "0.0.9"'))
    assert main(["ig", "package", "--profiles", str(copy), "--out", str(tmp_path / "p.tgz")]) == 2
    assert "SearchParameter-Task-due.json" in capsys.readouterr().err
    assert not (tmp_path / "p.tgz").exists()


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
