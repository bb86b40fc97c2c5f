"""Running a region's server: ``clients add``, ``token``, ``audit verify|purge``, ``relay
status`` (and ``serve``'s authentication flags)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fhir_server.cli.common import settings_of

__all__ = ["add_admin_commands"]


def _clients_add(args: argparse.Namespace) -> int:
    from fhir_server.security import ClientsFileError
    from fhir_server.security.backend_client import BackendClientError, register_client

    path = Path(args.clients or settings_of(args).clients_file or "clients.toml")
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
        answer = request_token(args.url or settings_of(args).public_base, args.client, Path(args.key), args.scope, args.kid)
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

    settings = settings_of(args)
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

    settings = settings_of(args)
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


def add_admin_commands(sub, serve) -> None:
    _auth_commands(sub, serve)
    _audit_commands(sub)
    _relay_commands(sub)
