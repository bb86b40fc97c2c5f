"""The commands that take a store's data elsewhere: ``report skr``, ``copy``, ``export``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from fhir_server.cli.common import Progress, settings_of

__all__ = ["add_data_commands"]


def _report_skr(args: argparse.Namespace) -> int:
    from fhir_server.app import build_runtime
    from fhir_server.engine import RequestContext
    from fhir_server.errors import FhirError
    from fhir_server.reporting import skr_csv, skr_wait_times

    settings = settings_of(args)
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
    bar: list[Progress] = []

    def progress(done: int, total: int) -> None:
        if not bar:
            bar.append(Progress(total))
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

    settings = settings_of(args)
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
    bar: list[Progress] = []

    def progress(state) -> None:
        if not bar:
            bar.append(Progress(state.total, "resources" if level == "system" else "patients"))
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


def add_data_commands(sub) -> None:
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
