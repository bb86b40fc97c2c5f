"""``evi-fhir load``: files and folders of resources and Bundles, a transaction per file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from fhir_server.cli.common import Progress, settings_of

__all__ = ["add_load"]


def _as_bundle(data: dict) -> dict:
    """A transaction Bundle for one file: bundles as they are, resources by PUT (id kept) or POST."""
    if data.get("resourceType") == "Bundle" and data.get("type") in ("transaction", "batch"):
        return data
    if data.get("resourceType") == "Bundle":
        resources = [e["resource"] for e in data.get("entry") or [] if isinstance(e, dict) and "resource" in e]
    else:
        resources = [data]
    entries = []
    for r in resources:
        if r.get("id"):
            entries.append({"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}})
        else:
            entries.append({"resource": r, "request": {"method": "POST", "url": r.get("resourceType", "")}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _files(paths: list[str]) -> tuple[list[Path], list[Path]]:
    """(the .json files of every path in order, the paths that do not exist)."""
    files: list[Path] = []
    missing: list[Path] = []
    for name in paths:
        root = Path(name)
        if not root.exists():
            missing.append(root)
        elif root.is_dir():
            files.extend(sorted(p for p in root.rglob("*.json") if p.is_file()))
        else:
            files.append(root)
    return list(dict.fromkeys(files)), missing


def _read(path: Path) -> dict | None:
    """The file's resource, or None for JSON that is no FHIR resource (an ``*.expected.json``
    of examples/invalid, a package manifest): those are skipped, not failed."""
    data = orjson.loads(path.read_bytes())
    if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
        return None
    return data


def _unreceived(bundle: dict) -> list[str]:
    from fhir_server.workflow.receipt import without_receipt

    return without_receipt(bundle)


def _load_round(runtime, ctx, pending: list[Path], progress: "Progress | None",
                migrate: bool = False) -> tuple[int, list, list]:
    """One pass over ``pending``: (entries stored, (path, message) failures, skipped paths)."""
    from fhir_server.engine import process_bundle
    from fhir_server.errors import FhirError

    entries, failures, skipped = 0, [], []
    for path in pending:
        try:
            data = _read(path)
            if data is None:
                skipped.append(path)
            elif migrate and (missing := _unreceived(_as_bundle(data))):
                failures.append((path, "--migrate: ServiceRequest without evi-received (its receipt time): "
                                 + ", ".join(missing)))
            else:
                entries += len(process_bundle(runtime, ctx, _as_bundle(data), return_pref="minimal").get("entry", []))
        except (FhirError, ValueError, orjson.JSONDecodeError) as exc:
            failures.append((path, getattr(exc, "message", str(exc))))
        if progress is not None:
            progress.step(path.name)
    return entries, failures, skipped


def _load(args: argparse.Namespace) -> int:
    from fhir_server.app import build_runtime
    from fhir_server.engine import RequestContext

    files, missing = _files(args.paths)
    for root in missing:
        print(f"evi-fhir load: {root} does not exist", file=sys.stderr)
    if missing:
        return 2
    settings = settings_of(args)
    runtime = build_runtime(settings)
    ctx = RequestContext(base_url=settings.public_base)
    progress = Progress(len(files))
    entries, skipped = 0, []
    pending: list[Path] = files
    failures: list[tuple[Path, str]] = []
    try:
        # a file that fails is tried again after the others: domain rules may need
        # what a later file holds (a SIP needs its CareTeam and Consent); stop when a
        # whole round makes no progress
        first_round = True
        while pending:
            stored, failures, passed_over = _load_round(runtime, ctx, pending, progress if first_round else None,
                                                        getattr(args, "migrate", False))
            entries += stored
            skipped += passed_over
            first_round = False
            if len(failures) == len(pending) or not failures:
                break
            pending = [path for path, _ in failures]
    finally:
        progress.close()
        runtime.store.close()
    resources = len(files) - len(skipped)
    print(f"loaded {resources - len(failures)} of {resources} files ({entries} entries)", file=sys.stderr)
    if skipped:
        print(f"skipped {len(skipped)} files that are not FHIR resources (no resourceType):", file=sys.stderr)
        for path in skipped:
            print(f"  skipped {path}", file=sys.stderr)
    for path, message in failures:
        print(f"  failed {path}: {message}", file=sys.stderr)
    return 1 if failures else 0


def add_load(sub) -> None:
    load = sub.add_parser(
        "load", help="load files or folders of resources/Bundles (a transaction per file; JSON that is no "
        "FHIR resource, such as examples/invalid/*.expected.json, is skipped and listed)")
    load.add_argument("paths", nargs="+", metavar="path")
    load.add_argument("--storage", help="storage URL (EVI_STORAGE)")
    load.add_argument("--region", help="the region's configuration file (EVI_REGION_FILE)")
    load.add_argument(
        "--migrate", action="store_true",
        help="load a region's history from an older system: every ServiceRequest must state its receipt time "
        "in the extension evi-received (valueDateTime), which the intake Task takes as authoredOn and counts "
        "its due date from (files with one that does not are refused, nothing of them stored); load runs "
        "as the server itself, so the value is honoured as for the admin role (docs/reporting.md)")
    load.set_defaults(func=_load)
