"""Build steps for the implementation guide: snapshots into profiles/, and an
NPM-format FHIR package (``package.tgz`` with package.json and .index.json) that EHR
vendors load into their own tooling (FHIR NPM package spec, confluence "FHIR Package spec")."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from fhir_server.conformance.snapshot import generate_snapshot, make_resolver

__all__ = ["write_snapshots", "build_package", "PACKAGE_NAME", "CANONICAL"]

PACKAGE_NAME = "org.evi-fhir.ig"
CANONICAL = "https://evi-fhir.org/fhir"


def _dump(resource: dict) -> str:
    return json.dumps(resource, ensure_ascii=False, indent=2) + "\n"


def write_snapshots(directory: Path) -> list[Path]:
    """Generate every StructureDefinition's snapshot from its differential; returns changed files."""
    files = sorted(directory.glob("StructureDefinition-*.json"))
    definitions = {p: json.loads(p.read_text()) for p in files}
    bare = [{k: v for k, v in sd.items() if k != "snapshot"} for sd in definitions.values()]
    resolve = make_resolver(bare)
    changed = []
    for path, sd in definitions.items():
        elements = generate_snapshot({k: v for k, v in sd.items() if k != "snapshot"}, resolve)
        updated = {k: v for k, v in sd.items() if k != "snapshot"}
        updated["snapshot"] = {"element": elements}
        if updated != sd:
            path.write_text(_dump(updated))
            changed.append(path)
    return changed


def _index_entry(filename: str, resource: dict) -> dict:
    entry = {"filename": filename, "resourceType": resource["resourceType"], "id": resource.get("id")}
    for key in ("url", "version", "kind", "type"):
        if key in resource:
            entry[key] = resource[key]
    return entry


def build_package(profiles: Path, examples: Path | None, version: str, out: Path) -> dict:
    """Write ``out`` (a .tgz) and return its package.json."""
    manifest = {
        "name": PACKAGE_NAME,
        "version": version,
        "canonical": CANONICAL,
        "url": CANONICAL,
        "title": "En väg in (EVI) implementation guide",
        "description": "Profiles, terminology and examples of evi-fhir, the FHIR R4 server for En väg in",
        "fhirVersions": ["4.0.1"],
        "dependencies": {"hl7.fhir.r4.core": "4.0.1"},
        "type": "fhir.ig",
        "license": "CC0-1.0",
    }
    members: dict[str, bytes] = {"package/package.json": _dump(manifest).encode()}
    index = []
    for path in sorted(profiles.glob("*.json")):
        resource = json.loads(path.read_text())
        members[f"package/{path.name}"] = path.read_bytes()
        index.append(_index_entry(path.name, resource))
    members["package/.index.json"] = _dump({"index-version": 1, "files": index}).encode()
    if examples is not None:
        for path in sorted(examples.glob("valid/*.json")):
            members[f"package/example/{path.name}"] = path.read_bytes()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0  # reproducible archives
            tar.addfile(info, io.BytesIO(data))
    return manifest
