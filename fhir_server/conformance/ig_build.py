"""Build steps for the implementation guide: snapshots into profiles/, and an
NPM-format FHIR package (``package.tgz``) that EHR vendors load into their own tooling.

The package follows the FHIR NPM package spec (hl7.org/fhir/packages.html and the HL7
confluence "NPM Package Specification"): ``package/package.json``, the resources, an
ImplementationGuide resource listing them, ``package/.index.json`` and, for the examples,
``package/example/`` with its own ``.index.json`` (both index-version 2).

One version source: the ImplementationGuide resource in profiles/ (``version``); every
canonical resource there must carry the same version and package.json takes it, so the
package never depends on whether the Python distribution is installed.

Publisher, contact and copyright are settings of the build (``Publication``), stamped on
every canonical resource of the package: evi-fhir is software, not an organisation, so
whoever publishes a guide built from it names itself; unset, the defaults say so.
"""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

from fhir_server.conformance.snapshot import generate_snapshot, make_resolver

__all__ = ["write_snapshots", "build_package", "guide_version", "Publication", "CANONICAL", "JURISDICTION"]

CANONICAL = "https://evi-fhir.org/fhir"
#: package.json's jurisdiction (a code, system#code) and the resources' (CodeableConcept)
JURISDICTION = "urn:iso:std:iso:3166#SE"
#: canonical resource types whose R4 definition has ``copyright`` (SearchParameter and
#: OperationDefinition have none)
_HAS_COPYRIGHT = frozenset({"CodeSystem", "ValueSet", "ConceptMap", "StructureDefinition", "Questionnaire",
                            "ImplementationGuide", "Measure", "CapabilityStatement"})


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


@dataclass(frozen=True)
class Publication:
    """Who publishes the built guide (settings ``EVI_IG_*`` or ``ig package`` options)."""

    publisher: str | None = None
    contact_name: str | None = None
    contact_url: str | None = None
    copyright: str | None = None

    @property
    def configured(self) -> bool:
        return bool(self.publisher)

    def stamp(self, resource: dict) -> dict:
        """A copy of a canonical resource carrying publisher, contact and copyright."""
        out = dict(resource)
        out["publisher"] = self.publisher or (
            "Not configured: set EVI_IG_PUBLISHER to the organisation that publishes this guide "
            "(evi-fhir is software, not an organisation)")
        telecom = self.contact_url or "https://evi-fhir.org/fhir"
        system = "email" if telecom.startswith("mailto:") else "url"
        out["contact"] = [{"name": self.contact_name or "Not configured: set EVI_IG_CONTACT_NAME and EVI_IG_CONTACT_URL",
                           "telecom": [{"system": system, "value": telecom.removeprefix("mailto:")}]}]
        if resource.get("resourceType") in _HAS_COPYRIGHT:
            out["copyright"] = self.copyright or (
                "CC0-1.0: the profiles, terminology and forms of this guide are dedicated to the public domain; "
                "the publisher named here answers for this build")
        return out


def guide_version(directory: Path) -> tuple[dict, list[str]]:
    """The guide's ImplementationGuide resource and the files whose version differs from it."""
    guides = [json.loads(p.read_text()) for p in sorted(directory.glob("ImplementationGuide-*.json"))]
    if len(guides) != 1:
        raise ValueError(f"{directory} must hold exactly one ImplementationGuide resource, found {len(guides)}")
    version = guides[0].get("version")
    if not version:
        raise ValueError("the ImplementationGuide resource has no version")
    disagree = [p.name for p in sorted(directory.glob("*.json"))
                if "url" in (r := json.loads(p.read_text())) and r.get("version") != version]
    return guides[0], disagree


def _index_entry(filename: str, resource: dict) -> dict:
    entry = {"filename": filename, "resourceType": resource["resourceType"], "id": resource.get("id")}
    for key in ("url", "version", "kind", "type", "supplements", "content", "valueSet", "derivation"):
        if key in resource:
            entry[key] = resource[key]
    return entry


def _guide_entry(resource: dict, example: bool) -> dict:
    entry: dict = {"reference": {"reference": f"{resource['resourceType']}/{resource['id']}"}}
    name = resource.get("title") or resource.get("name")
    if isinstance(name, str):
        entry["name"] = name
    if isinstance(resource.get("description"), str):
        entry["description"] = resource["description"]
    profiles = (resource.get("meta") or {}).get("profile") or []
    if example and profiles:
        entry["exampleCanonical"] = profiles[0]
    else:
        entry["exampleBoolean"] = example
    return entry


def _manifest(guide: dict, publication: Publication) -> dict:
    manifest = {
        "name": guide["packageId"],
        "version": guide["version"],
        "canonical": CANONICAL,
        "url": CANONICAL,
        "title": guide["title"],
        "description": guide["description"],
        "fhirVersions": guide["fhirVersion"],
        "dependencies": {"hl7.fhir.r4.core": "4.0.1"},
        "author": publication.publisher or "Not configured (evi-fhir is software; set EVI_IG_PUBLISHER)",
        "jurisdiction": JURISDICTION,
        "type": "fhir.ig",
        "license": guide["license"],
    }
    if publication.contact_name or publication.contact_url:
        maintainer = {"name": publication.contact_name or manifest["author"]}
        if publication.contact_url:
            key = "email" if publication.contact_url.startswith("mailto:") else "url"
            maintainer[key] = publication.contact_url.removeprefix("mailto:")
        manifest["maintainers"] = [maintainer]
    return manifest


def build_package(profiles: Path, examples: Path | None, out: Path, publication: Publication = Publication()) -> dict:
    """Write ``out`` (a .tgz) and return its package.json. ValueError when the guide's
    resources do not all carry the ImplementationGuide's version."""
    guide, disagree = guide_version(profiles)
    if disagree:
        raise ValueError(f"not at the guide's version {guide['version']}: {', '.join(disagree)}")
    resources = {p.name: json.loads(p.read_text()) for p in sorted(profiles.glob("*.json"))}
    samples = {p.name: json.loads(p.read_text()) for p in sorted(examples.glob("valid/*.json"))} if examples else {}
    guide_name = next(n for n, r in resources.items() if r["resourceType"] == "ImplementationGuide")
    guide = dict(guide)
    guide["definition"] = {"resource": [_guide_entry(r, False) for n, r in resources.items() if n != guide_name]
                           + [_guide_entry(r, True) for r in samples.values()]}
    resources[guide_name] = guide
    resources = {n: publication.stamp(r) if "url" in r else r for n, r in resources.items()}
    members: dict[str, bytes] = {"package/package.json": _dump(_manifest(guide, publication)).encode()}
    for name, resource in resources.items():
        members[f"package/{name}"] = _dump(resource).encode()
    members["package/.index.json"] = _dump(
        {"index-version": 2, "files": [_index_entry(n, r) for n, r in resources.items()]}).encode()
    for name, resource in samples.items():
        members[f"package/example/{name}"] = _dump(resource).encode()
    members["package/example/.index.json"] = _dump(
        {"index-version": 2, "files": [_index_entry(n, r) for n, r in samples.items()]}).encode()
    _write_tgz(out, members)
    return json.loads(members["package/package.json"])


def _write_tgz(out: Path, members: dict[str, bytes]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0  # reproducible archives
            tar.addfile(info, io.BytesIO(data))
