"""The ``evi-fhir`` command: serve, load, copy, export, ig, validate, clients add, token, audit,
report, relay status. One module per group of commands; each adds its own parsers."""

from __future__ import annotations

import argparse
import sys

from fhir_server.cli.admin import add_admin_commands
from fhir_server.cli.data import add_data_commands
from fhir_server.cli.guide import add_guide_commands
from fhir_server.cli.load import add_load
from fhir_server.cli.serve import add_serve

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evi-fhir", description="FHIR R4 server for En väg in (EVI)")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = add_serve(sub)
    add_load(sub)
    add_data_commands(sub)
    add_guide_commands(sub)
    add_admin_commands(sub, serve)
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
