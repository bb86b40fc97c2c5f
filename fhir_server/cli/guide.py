"""The implementation guide's commands: ``ig package``, ``ig snapshot``, ``validate``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

__all__ = ["add_guide_commands"]


def _ig(args: argparse.Namespace) -> int:
    from fhir_server.conformance import ig_directory
    from fhir_server.conformance.ig_build import build_package, write_snapshots

    directory = ig_directory(args.profiles)
    if directory is None or not directory.is_dir():
        print("evi-fhir ig: no profiles/ folder found (use --profiles)", file=sys.stderr)
        return 2
    if args.ig_command == "snapshot":
        changed = write_snapshots(directory)
        print(f"snapshots written: {len(changed)} StructureDefinitions changed", file=sys.stderr)
        return 0
    publication = _publication(args)
    if not publication.configured:
        print("evi-fhir ig: no publisher configured (EVI_IG_PUBLISHER or --publisher): the package says so",
              file=sys.stderr)
    examples = directory.parent / "examples"
    try:
        manifest = build_package(directory, examples if examples.is_dir() else None, Path(args.out), publication)
    except ValueError as exc:
        print(f"evi-fhir ig: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {manifest['name']}#{manifest['version']}", file=sys.stderr)
    return 0


def _publication(args: argparse.Namespace):
    """The guide build's publisher, contact and copyright: options over settings (EVI_IG_*)."""
    from fhir_server.conformance.ig_build import Publication
    from fhir_server.settings import Settings

    settings = Settings()
    return Publication(
        publisher=args.publisher or settings.ig_publisher,
        contact_name=args.contact_name or settings.ig_contact_name,
        contact_url=args.contact_url or settings.ig_contact_url,
        copyright=args.copyright or settings.ig_copyright,
    )


def _file_issues(validator, name: str, profiles: list[str] | None) -> list[tuple[str, str, str]]:
    """(severity, where, message) of one file: R4, the Swedish identifier rules, the profiles."""
    from fhir_server.errors import InvalidResource, Unprocessable
    from fhir_server.model import validate_resource

    try:
        resource = orjson.loads(Path(name).read_bytes())
    except (OSError, ValueError, orjson.JSONDecodeError) as exc:
        return [("error", "", f"cannot read: {exc}")]
    issues = []
    try:
        validate_resource(resource)
    except InvalidResource as exc:
        return [(i.severity, ", ".join(i.expression), i.diagnostics) for i in exc.issues]
    except Unprocessable as exc:  # valid R4; a Swedish identifier breaks its format (the server answers 422)
        issues = [(i.severity, ", ".join(i.expression), i.diagnostics) for i in exc.issues]
    return issues + [(i.severity, i.expression, i.message) for i in validator.validate(resource, profiles)]


def _validate(args: argparse.Namespace) -> int:
    from fhir_server.conformance import ig_directory, ig_resources
    from fhir_server.conformance.validator import Validator, local_value_sets

    guide = ig_resources(ig_directory(args.profiles))
    validator = Validator([r for r in guide if r.get("resourceType") == "StructureDefinition"], local_value_sets(guide))
    failed = 0
    for name in args.files:
        issues = _file_issues(validator, name, args.profile or None)
        errors = [i for i in issues if i[0] in ("error", "fatal")]
        failed += bool(errors)
        print(f"{name}: {'FAIL' if errors else 'ok'} ({len(errors)} errors, {len(issues) - len(errors)} other issues)")
        for severity, where, message in issues:
            print(f"  {severity:<11} {where}: {message}")
    return 1 if failed else 0


def add_guide_commands(sub) -> None:
    ig = sub.add_parser("ig", help="implementation guide build steps")
    ig_sub = ig.add_subparsers(dest="ig_command", required=True)
    package = ig_sub.add_parser("package", help="write the guide as an NPM-format FHIR package (package.tgz)")
    package.add_argument("--out", default="package.tgz")
    package.add_argument("--profiles", help="the guide's folder (default: profiles/)")
    package.add_argument("--publisher", help="the organisation publishing the guide (default: EVI_IG_PUBLISHER)")
    package.add_argument("--contact-name", help="its contact's name (default: EVI_IG_CONTACT_NAME)")
    package.add_argument("--contact-url", help="its contact's web or mailto: address (default: EVI_IG_CONTACT_URL)")
    package.add_argument("--copyright", help="the guide's copyright statement (default: EVI_IG_COPYRIGHT)")
    snapshot = ig_sub.add_parser("snapshot", help="generate the StructureDefinitions' snapshots from their differentials")
    snapshot.add_argument("--profiles", help="the guide's folder (default: profiles/)")
    ig.set_defaults(func=_ig)

    check = sub.add_parser("validate", help="validate resource files offline (base R4 and claimed or given profiles)")
    check.add_argument("files", nargs="+")
    check.add_argument("--profile", action="append", help="profile url to validate against (repeatable)")
    check.add_argument("--profiles", help="the guide's folder (default: profiles/)")
    check.set_defaults(func=_validate)
