"""The guide package in HL7's FHIR Shorthand tools (run when they are installed, else skipped).

Install them with npm (README "For EHR vendors"): ``npm install -g fsh-sushi gofsh``, or into
any folder and point ``EVI_FSH_TOOLS`` at its ``node_modules/.bin``. SUSHI needs the R4 core
package in a FHIR package cache: the user's ``~/.fhir/packages`` when it holds
``hl7.fhir.r4.core#4.0.1``, else ``../shared/fhir-spec`` of a development checkout.

Two checks, each in a private package cache (a temporary HOME) holding R4 core and the built
package ``org.evi-fhir.ig``:
* a vendor's SUSHI project that depends on the package builds instances of its profiles
  with 0 errors, and the profiles' fixed identifier systems land in them;
* GoFSH turns the package's resources into FSH and SUSHI builds that FSH again with 0 errors:
  the profiles, extensions and terminology round-trip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from fhir_server.cli import main

ROOT = Path(__file__).resolve().parents[2]
CORE = "hl7.fhir.r4.core#4.0.1"


def _tool(name: str) -> str | None:
    folder = os.environ.get("EVI_FSH_TOOLS")
    if folder and (Path(folder) / name).exists():
        return str(Path(folder) / name)
    return shutil.which(name)


def _core() -> Path | None:
    cached = Path.home() / ".fhir" / "packages" / CORE
    if (cached / "package" / "package.json").exists():
        return cached
    shared = ROOT.parent / "shared" / "fhir-spec" / "hl7.fhir.r4.core-4.0.1"
    return shared if (shared / "package" / "package.json").exists() else None


SUSHI, GOFSH = _tool("sushi"), _tool("gofsh")
pytestmark = pytest.mark.skipif(SUSHI is None or _core() is None,
                                reason="SUSHI (npm fsh-sushi) or the R4 core package is not installed")


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> dict:
    """A temporary HOME whose FHIR package cache holds R4 core and the built guide."""
    home = tmp_path_factory.mktemp("home")
    packages = home / ".fhir" / "packages"
    packages.mkdir(parents=True)
    (packages / CORE).symlink_to(_core(), target_is_directory=True)
    tgz = home / "package.tgz"
    assert main(["ig", "package", "--out", str(tgz)]) == 0
    with tarfile.open(tgz) as tar:
        manifest = json.load(tar.extractfile("package/package.json"))
        guide = packages / f"{manifest['name']}#{manifest['version']}"
        tar.extractall(guide, filter="data")
    return {"home": home, "manifest": manifest, "package": guide / "package"}


def _sushi(project: Path, home: Path) -> str:
    done = subprocess.run([SUSHI, "build", str(project)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HOME": str(home)})
    out = done.stdout + done.stderr
    found = re.search(r"(\d+) Errors?", out)
    assert found is not None, out[-3000:]
    assert found.group(1) == "0" and done.returncode == 0, "\n".join(
        line for line in out.splitlines() if "error" in line.lower())[:5000]
    return out


VENDOR_FSH = """
Instance: child
InstanceOf: https://evi-fhir.org/fhir/StructureDefinition/evi-patient
* identifier[personnummer].value = "201203042385"
* birthDate = "2012-03-04"

Instance: bup
InstanceOf: https://evi-fhir.org/fhir/StructureDefinition/evi-organization
* identifier[hsaId].value = "SE2321000131-E000000000101"
* type = https://evi-fhir.org/fhir/CodeSystem/evi-organization-type#bup-clinic
* name = "BUP Göteborg Centrum"
"""


def test_a_vendor_sushi_project_builds_on_the_package(cache, tmp_path):
    manifest = cache["manifest"]
    (tmp_path / "input" / "fsh").mkdir(parents=True)
    (tmp_path / "sushi-config.yaml").write_text(
        "canonical: http://vendor.example/fhir\nfhirVersion: 4.0.1\nFSHOnly: true\nstatus: draft\n"
        f"version: 0.0.1\ndependencies:\n  {manifest['name']}: {manifest['version']}\n")
    (tmp_path / "input" / "fsh" / "vendor.fsh").write_text(VENDOR_FSH)
    out = _sushi(tmp_path, cache["home"])
    assert f"Loaded {manifest['name']}#{manifest['version']}" in out
    generated = tmp_path / "fsh-generated" / "resources"
    child = json.loads((generated / "Patient-child.json").read_text())
    assert child["identifier"] == [{"system": "http://electronichealth.se/identifier/personnummer",
                                    "value": "201203042385"}]  # the slice's fixed system, from the package
    bup = json.loads((generated / "Organization-bup.json").read_text())
    assert bup["identifier"][0]["system"] == "urn:oid:1.2.752.29.4.19"


@pytest.mark.skipif(GOFSH is None, reason="GoFSH (npm gofsh) is not installed")
def test_the_package_round_trips_through_gofsh_and_sushi(cache, tmp_path):
    source = tmp_path / "resources"
    source.mkdir()
    for path in cache["package"].glob("*.json"):
        if path.name != "package.json":
            shutil.copy(path, source / path.name)
    fsh = tmp_path / "fsh"
    done = subprocess.run([GOFSH, str(source), "-o", str(fsh)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HOME": str(cache["home"])})
    assert done.returncode == 0 and re.search(r"\b0 Errors", done.stdout), done.stdout[-3000:]
    config = fsh / "sushi-config.yaml"
    if "FSHOnly" not in config.read_text():
        config.write_text(config.read_text() + "FSHOnly: true\n")
    _sushi(fsh, cache["home"])
    rebuilt = {p.name for p in (fsh / "fsh-generated" / "resources").glob("StructureDefinition-*.json")}
    assert rebuilt == {p.name for p in (ROOT / "profiles").glob("StructureDefinition-*.json")}
