"""The ``evi-fhir`` command: serve, load, copy, export, ig, validate, clients add, token, audit,
report, relay status."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import orjson

__all__ = ["main"]


def _settings(args: argparse.Namespace):
    from fhir_server.settings import Settings

    overrides = {
        "storage": getattr(args, "storage", None),
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "base_url": getattr(args, "base_url", None),
        "max_body_size": getattr(args, "max_body_size", None),
        "region_file": getattr(args, "region", None),
        "workers": getattr(args, "workers", None),
        "trust_proxy": getattr(args, "trust_proxy", None),
        "auth": getattr(args, "auth", None),
        "clients_file": getattr(args, "clients", None),
    }
    # flags win over EVI_* environment variables, which win over defaults
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _serve(args: argparse.Namespace) -> int:
    import os

    import uvicorn

    from fhir_server.app import create_app, uvicorn_options
    from fhir_server.security import unsafe_without_auth, with_token_secret

    settings = _settings(args)
    refusal = unsafe_without_auth(settings, args.insecure_no_auth)
    if refusal:
        print(f"evi-fhir serve: {refusal}", file=sys.stderr)
        return 2
    if settings.auth == "smart":  # a bad setup stops here, before any process starts
        settings, made_up = with_token_secret(settings)
        if made_up:
            print("evi-fhir serve: no EVI_TOKEN_SECRET: access tokens are signed with a secret made up at this "
                  "start and do not survive a restart", file=sys.stderr)
    options = dict(
        host=settings.host, port=settings.port, log_level=args.log_level, access_log=args.access_log,
        **uvicorn_options(settings),
    )
    print(f"evi-fhir serving {settings.public_base} (storage {settings.storage}, auth {settings.auth}, "
          f"{settings.workers} process{'es' if settings.workers > 1 else ''})", file=sys.stderr)
    if settings.workers > 1 and ":memory:" in settings.storage:
        print("evi-fhir serve: --workers needs a shared database (a file or MongoDB), not sqlite://:memory:",
              file=sys.stderr)
        return 2
    if settings.workers == 1:
        uvicorn.run(create_app(settings), **options)
        return 0
    # several processes on one database: each builds its app from the same settings,
    # handed over as EVI_* variables (what a flag said wins, as in this process)
    os.environ.update(settings_environment(settings))
    uvicorn.run("fhir_server.app:create_app", factory=True, workers=settings.workers, **options)
    return 0


def settings_environment(settings) -> dict[str, str]:
    """``settings`` as the EVI_* variables that make ``Settings()`` equal to it."""
    env = {}
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        text = value if isinstance(value, str) else orjson.dumps(value).decode()
        env[f"EVI_{name.upper()}"] = text
    return env


class _Progress:
    """A one-line progress bar on stderr (no dependency needed for this)."""

    def __init__(self, total: int, unit: str = "files"):
        self.total, self.done, self.started, self.unit = max(total, 1), 0, time.monotonic(), unit

    def step(self, label: str) -> None:
        self.update(self.done + 1, label)

    def update(self, done: int, label: str) -> None:
        self.done = done
        width = 30
        filled = min(width, int(width * self.done / self.total))
        rate = self.done / max(time.monotonic() - self.started, 1e-9)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {rate:6.1f} "
                         f"{self.unit}/s {label[:40]:<40}")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")


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


def _load_round(runtime, ctx, pending: list[Path], progress: "_Progress | None",
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
    settings = _settings(args)
    runtime = build_runtime(settings)
    ctx = RequestContext(base_url=settings.public_base)
    progress = _Progress(len(files))
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


def _report_skr(args: argparse.Namespace) -> int:
    from fhir_server.app import build_runtime
    from fhir_server.engine import RequestContext
    from fhir_server.errors import FhirError
    from fhir_server.reporting import skr_csv, skr_wait_times

    settings = _settings(args)
    runtime = build_runtime(settings)
    try:
        report = skr_wait_times(runtime, RequestContext(base_url=settings.public_base), args.month,
                                key=settings.pseudonym_key, detail=args.detail)
    except FhirError as exc:
        print(f"evi-fhir report skr: {exc.message}", file=sys.stderr)
        return 2
    finally:
        runtime.store.close()
    text = skr_csv(report)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out} ({len(report.cases)} referral intervals)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _copy(args: argparse.Namespace) -> int:
    from fhir_server.app import build_runtime
    from fhir_server.engine.copy import copy_store
    from fhir_server.settings import Settings
    from fhir_server.storage import open_store

    source_runtime = build_runtime(Settings(storage=args.source))
    target = open_store(args.target)
    state = Path(args.state) if args.state else None
    bar: list[_Progress] = []

    def progress(done: int, total: int) -> None:
        if not bar:
            bar.append(_Progress(total))
        bar[0].done = done - 1
        bar[0].step("versions")

    try:
        report = copy_store(
            source_runtime.store, target, source_runtime.registry, Settings().public_base,
            batch=args.batch, state_file=state, progress=progress,
        )
    finally:
        if bar:
            bar[0].close()
        source_runtime.store.close()
        target.close()
    print(f"copied {report.copied} versions, skipped {report.skipped} already present", file=sys.stderr)
    for rtype in sorted(set(report.source) | set(report.target)):
        src, dst = report.source.get(rtype, (0, 0)), report.target.get(rtype, (0, 0))
        mark = "ok" if src == dst else "MISMATCH"
        print(f"  {rtype:<28} resources {src[0]:>8} -> {dst[0]:<8} versions {src[1]:>8} -> {dst[1]:<8} {mark}", file=sys.stderr)
    print("verified: counts match" if report.verified else "NOT verified: counts differ", file=sys.stderr)
    return 0 if report.verified else 1


def _operator() -> str:
    """Who runs a command, for the PDL log: the operating-system account and the host."""
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def _export(args: argparse.Namespace) -> int:
    import uuid

    from fhir_server.app import build_runtime
    from fhir_server.audit import AuditWriter, ServerIdentity
    from fhir_server.engine.disclosures import ExportAccessRecorder
    from fhir_server.errors import FhirError
    from fhir_server.reporting import export_options, export_to_directory, parse_export_request

    settings = _settings(args)
    pairs = [("_type", t) for t in args.type or ()] + [("_typeFilter", f) for f in args.type_filter or ()]
    pairs += [("_since", args.since)] if args.since else []
    pairs += [("_pseudonymize", "true")] if args.pseudonymize else []
    level = "group" if args.group else "patient" if args.patients else "system"
    runtime = build_runtime(settings)
    on_written, writer = None, None
    if settings.audit:  # the children whose data leaves, in the PDL log (as an API $export logs them)
        writer = AuditWriter(runtime.store.audit, ServerIdentity(settings.public_base))
        on_written = ExportAccessRecorder(writer, runtime, auth_on=False).for_job(
            f"cli-export-{uuid.uuid4().hex}", None, "evi-fhir export", settings.public_base,
            client_display=f"evi-fhir export on the command line ({_operator()})")
    bar: list[_Progress] = []

    def progress(state) -> None:
        if not bar:
            bar.append(_Progress(state.total, "resources" if level == "system" else "patients"))
        if state.scanned != bar[0].done or state.scanned == 0:  # each step saves twice: draw once
            bar[0].update(state.scanned, f"{state.written} written")

    try:
        request = parse_export_request(level, pairs, group_id=args.group, url="evi-fhir export")
        state = export_to_directory(runtime, request, Path(args.out), export_options(settings),
                                    base_url=settings.public_base, progress=progress, on_written=on_written)
    except FhirError as exc:
        print(f"evi-fhir export: {exc.message}", file=sys.stderr)
        return 2
    finally:
        if bar:
            bar[0].close()
        if writer is not None:
            writer.close()
        runtime.store.close()  # stores what the log has pending
    for name, (size, lines) in sorted(state.files.items()):
        if lines:
            print(f"  {name:<40} {lines:>10} lines {size:>14} bytes", file=sys.stderr)
    print(f"exported {state.written} resources to {args.out}", file=sys.stderr)
    return 0


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


def _clients_add(args: argparse.Namespace) -> int:
    from fhir_server.security import ClientsFileError
    from fhir_server.security.backend_client import BackendClientError, register_client

    path = Path(args.clients or _settings(args).clients_file or "clients.toml")
    fields = {"id": args.id, "name": args.name, "role": args.role, "organization": args.organization,
              "scopes": args.scopes.replace(",", " ").split()}
    try:
        register_client(path, fields, jwks=args.jwks, jwks_url=args.jwks_url, new_key=args.generate_key,
                        key_type=args.key_type)
    except (BackendClientError, ClientsFileError) as exc:
        print(f"evi-fhir clients add: {exc}", file=sys.stderr)
        return 2
    print(f"registered {args.id} ({args.role}, {args.organization}) in {path}", file=sys.stderr)
    return 0


def _token(args: argparse.Namespace) -> int:
    from fhir_server.security.backend_client import BackendClientError, request_token

    try:
        answer = request_token(args.url or _settings(args).public_base, args.client, Path(args.key), args.scope, args.kid)
    except BackendClientError as exc:
        print(f"evi-fhir token: {exc}", file=sys.stderr)
        return 1
    print(f"granted {answer.get('scope')} for {answer.get('expires_in')} s", file=sys.stderr)
    print(answer.get("access_token"))
    return 0


def _auth_commands(sub, serve) -> None:
    """``serve``'s authentication flags, ``clients add`` and ``token``."""
    serve.add_argument("--auth", choices=["off", "smart"], help="authentication (EVI_AUTH, default off: loopback only)")
    serve.add_argument("--clients", help="registered clients of SMART Backend Services (EVI_CLIENTS_FILE, TOML)")
    serve.add_argument("--insecure-no-auth", action="store_true",
                       help="allow auth off on a non-loopback address (only behind something that authenticates)")
    clients = sub.add_parser("clients", help="registered clients of SMART Backend Services")
    clients_sub = clients.add_subparsers(dest="clients_command", required=True)
    add = clients_sub.add_parser("add", help="register a client (appends a checked [[client]] to the clients file)")
    add.add_argument("--id", required=True)
    add.add_argument("--name", required=True)
    add.add_argument("--role", required=True, help="evi, care-unit, municipality, reporting or admin")
    add.add_argument("--organization", required=True, help="Organization/{id}, or the HSA-id as system|value")
    add.add_argument("--jwks", help="the client's public key(s): a JWK Set, a JWK or a PEM public key")
    add.add_argument("--jwks-url", help="where the client publishes its JWK Set")
    add.add_argument("--generate-key", metavar="OUT.pem", help="make a key pair: the private key goes to OUT.pem")
    add.add_argument("--key-type", choices=["ES384", "RS384"], default="ES384", help="for --generate-key")
    add.add_argument("--scopes", default="system/*.rs", help="the most it may be granted (default system/*.rs)")
    add.add_argument("--clients", help="the clients file (EVI_CLIENTS_FILE, default clients.toml)")
    add.set_defaults(func=_clients_add)

    token = sub.add_parser("token", help="get an access token for a registered client and print it")
    token.add_argument("--client", required=True, help="the client id")
    token.add_argument("--key", required=True, help="the client's private key (PEM)")
    token.add_argument("--scope", default="system/*.cruds", help="what to ask for (default: all the client may have)")
    token.add_argument("--url", help="the server's FHIR base (default: EVI_BASE_URL, or http://EVI_HOST:EVI_PORT/fhir)")
    token.add_argument("--kid", help="the key's kid (default: its JWK thumbprint, as --generate-key registers it)")
    token.set_defaults(func=_token)


def _audit(args: argparse.Namespace) -> int:
    from fhir_server.audit.commands import purge_command, verify_command
    from fhir_server.storage import open_store

    settings = _settings(args)
    store = open_store(settings.storage)
    try:
        if args.audit_command == "verify":
            return verify_command(store.audit, sys.stdout, sys.stderr)
        return purge_command(store.audit, args.before, settings.audit_retention_years, sys.stdout, sys.stderr)
    finally:
        store.close()


def _audit_commands(sub) -> None:
    """``audit verify`` and ``audit purge`` (the PDL access log, docs/audit.md)."""
    audit = sub.add_parser("audit", help="the PDL access log: verify its chain, purge past the retention period")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="check the chain; exit 1 naming the first event whose chain breaks")
    verify.add_argument("--storage", help="storage URL (EVI_STORAGE)")
    purge = audit_sub.add_parser("purge", help="remove events recorded before --before (outside the retention period)")
    purge.add_argument("--before", required=True, help="a date (YYYY-MM-DD) or dateTime")
    purge.add_argument("--storage", help="storage URL (EVI_STORAGE)")
    audit.set_defaults(func=_audit)


def _format_time(seconds: float | None) -> str:
    from datetime import datetime, timezone

    if seconds is None:
        return "never"
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _relay_status(args: argparse.Namespace) -> int:
    """One line per ``[[relay]]`` of the region file (domain.md §7): read-only, the store
    opened as ``serve`` would open it."""
    from fhir_server.app import region_of
    from fhir_server.notify import relay_status, relays_of
    from fhir_server.storage import open_store

    settings = _settings(args)
    relays = relays_of(region_of(settings).relay)
    if not relays:
        print(f"no [[relay]] tables in the region file ({settings.region_file or 'none given'})")
        return 0
    store = open_store(settings.storage)
    try:
        rows = relay_status(store, relays)
    finally:
        store.close()
    for row in rows:
        criterion = row.relay.criterion.text if row.relay.criterion is not None else "-"
        error = (row.last_error or "-").replace("\n", " ")
        print(f"topic={row.relay.topic.code} filter={criterion} url={row.relay.url} delivered={row.delivered} "
              f"backlog={row.backlog} last_success={_format_time(row.last_success)} last_error={error}")
    return 0


def _relay_commands(sub) -> None:
    relay = sub.add_parser("relay", help="relays to upstream FHIR servers ([[relay]] in the region file)")
    relay_sub = relay.add_subparsers(dest="relay_command", required=True)
    status = relay_sub.add_parser("status", help="one line per relay: topic, URL, delivered, backlog, last error")
    status.add_argument("--storage", help="storage URL (EVI_STORAGE)")
    status.add_argument("--region", help="the region's configuration file (EVI_REGION_FILE)")
    status.set_defaults(func=_relay_status)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evi-fhir", description="FHIR R4 server for En väg in (EVI)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="start the FHIR server")
    serve.add_argument("--host", help="listen address (EVI_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (EVI_PORT, default 8080)")
    serve.add_argument("--storage", help="storage URL (EVI_STORAGE), e.g. sqlite:///var/lib/evi/evi.db")
    serve.add_argument("--base-url", help="pin the public base URL (EVI_BASE_URL); default: links follow each request's Host")
    serve.add_argument("--max-body-size", type=int, help="largest request body in bytes (EVI_MAX_BODY_SIZE)")
    serve.add_argument("--region", help="the region's configuration file (EVI_REGION_FILE), e.g. regions/kalmar.toml")
    serve.add_argument("--workers", type=int, help="server processes on the one database (EVI_WORKERS, default 1)")
    serve.add_argument("--trust-proxy", action="store_const", const=True,
                       help="believe Forwarded / X-Forwarded-* headers (EVI_TRUST_PROXY): only behind your own proxy")
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True)
    serve.set_defaults(func=_serve)

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

    report = sub.add_parser("report", help="national reports (domain.md §8)")
    report_sub = report.add_subparsers(dest="report", required=True)
    skr = report_sub.add_parser("skr", help="SKR's monthly BUP wait-time report as CSV (needs EVI_PSEUDONYM_KEY)")
    skr.add_argument("--month", required=True, help="the month, YYYY-MM")
    skr.add_argument("--out", help="write the CSV to this file (default: standard output)")
    skr.add_argument("--detail", action="store_true", help="add one line per referral and interval (pseudonymised)")
    skr.add_argument("--storage", help="storage URL (EVI_STORAGE)")
    skr.add_argument("--region", help="the region's configuration file (EVI_REGION_FILE)")
    skr.set_defaults(func=_report_skr)

    copy = sub.add_parser("copy", help="copy every resource with its full history between two stores (resumable)")
    copy.add_argument("--from", dest="source", required=True, help="source storage URL")
    copy.add_argument("--to", dest="target", required=True, help="target storage URL")
    copy.add_argument("--batch", type=int, default=500, help="versions per target transaction")
    copy.add_argument("--state", help="file that remembers progress, so an interrupted copy resumes")
    copy.set_defaults(func=_copy)

    export = sub.add_parser("export", help="export the store as NDJSON files, one per resource type (the Bulk Data "
                            "format), as the server's own work: everything, unrestricted")
    export.add_argument("--out", required=True, help="the folder to write (its {Type}.ndjson files are replaced)")
    export.add_argument("--storage", help="storage URL (EVI_STORAGE)")
    export.add_argument("--region", help="the region's configuration file (EVI_REGION_FILE)")
    export.add_argument("--type", action="append", help="only these resource types (repeatable, or comma-separated)")
    export.add_argument("--since", help="only resources changed after this FHIR instant, e.g. 2025-01-01T00:00:00Z")
    export.add_argument("--type-filter", action="append", help="a search such as 'Task?status=completed' (repeatable)")
    export.add_argument("--patients", action="store_true", help="the patients' data only (as Patient/$export)")
    export.add_argument("--group", help="the data of this Group's patients (as Group/{id}/$export)")
    export.add_argument("--pseudonymize", action="store_true",
                        help="pseudonymised output (needs EVI_PSEUDONYM_KEY; docs/export.md)")
    export.set_defaults(func=_export)

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
    _auth_commands(sub, serve)
    _audit_commands(sub)
    _relay_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from fhir_server.security import AuthConfigError
    from fhir_server.storage.factory import UnsupportedStorage
    from fhir_server.security.policy import PolicyError
    from fhir_server.workflow import RegionError

    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except (RegionError, UnsupportedStorage, AuthConfigError, PolicyError) as exc:  # configuration the server cannot start with
        print(f"evi-fhir: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
