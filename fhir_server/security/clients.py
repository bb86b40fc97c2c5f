"""Registered clients of SMART Backend Services (domain.md §5): one TOML file
(``EVI_CLIENTS_FILE`` / ``--clients``), one ``[[client]]`` table each::

    [[client]]
    id = "kalmar-soc"
    name = "Kalmar kommun, socialtjänsten"
    role = "municipality"
    organization = "Organization/kalmar-soc"      # or the HSA-id: "urn:oid:1.2.752.29.4.19|SE..."
    scopes = ["system/*.rs", "system/Communication.cu", "system/Task.cu"]
    jwks = { keys = [ { kty = "RSA", kid = "k1", alg = "RS384", n = "…", e = "AQAB" } ] }
    # or: jwks_url = "https://kalmar.example/jwks.json"

Every key is required except that a client has exactly one of ``jwks`` and
``jwks_url``. An unknown key, a bad value, a key set that cannot verify RS384/ES384
signatures, a repeated id: the file is refused with a message naming the client and
the key, and the server does not start.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

from fhir_server.security.caller import ROLES
from fhir_server.security.jwks import KeySetError, RemoteKeySet, StaticKeySet
from fhir_server.security.organizations import is_organization_spec
from fhir_server.security.scopes import Scopes, parse_scope

__all__ = [
    "Client", "Clients", "ClientsFileError", "ASSERTION_ALGORITHMS", "load_clients", "parse_clients", "client_table",
    "add_client",
]

#: what SMART Backend Services clients sign their assertions with
ASSERTION_ALGORITHMS = ("RS384", "ES384")
_KEYS = ("id", "name", "role", "organization", "scopes", "jwks", "jwks_url")
_ID = re.compile(r"^[\x21-\x7e]{1,255}$")


class ClientsFileError(ValueError):
    """The clients file cannot be used; the message names the client and the key."""


@dataclass(frozen=True)
class Client:
    id: str
    name: str
    role: str
    #: ``Organization/{id}`` or ``system|value`` (the HSA-id), as registered
    organization: str
    #: the most this client may ever be granted
    scopes: Scopes
    #: verifies its assertions: a StaticKeySet (``jwks``) or a RemoteKeySet (``jwks_url``)
    keys: Any
    jwks_url: str | None = None


class Clients:
    """The registered clients by id (immutable once loaded)."""

    def __init__(self, clients: tuple[Client, ...] = ()):
        self._by_id = {c.id: c for c in clients}

    def get(self, client_id: object) -> Client | None:
        return self._by_id.get(client_id) if isinstance(client_id, str) else None

    def __iter__(self) -> Iterator[Client]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)


def load_clients(path: str | Path) -> Clients:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ClientsFileError(f"clients file {path}: cannot be read: {exc}") from None
    return parse_clients(text, f"clients file {path}")


def parse_clients(text: str, source: str = "clients file") -> Clients:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ClientsFileError(f"{source}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"client"})
    if unknown:
        raise ClientsFileError(f"{source}: unknown key {unknown[0]!r} (only [[client]] tables belong here)")
    tables = data.get("client", [])
    if not isinstance(tables, list):
        raise ClientsFileError(f"{source}: 'client' must be [[client]] tables")
    clients: list[Client] = []
    seen: set[str] = set()
    for number, table in enumerate(tables, start=1):
        client = _client(table, source, number)
        if client.id in seen:
            raise ClientsFileError(f"{source}: client {client.id!r}: key 'id': registered twice")
        seen.add(client.id)
        clients.append(client)
    return Clients(tuple(clients))


def _client(table: Any, source: str, number: int) -> Client:
    where = f"{source}: [[client]] number {number}"
    if not isinstance(table, dict):
        raise ClientsFileError(f"{where}: not a table")
    client_id = table.get("id")
    if isinstance(client_id, str) and _ID.match(client_id):
        where = f"{source}: client {client_id!r}"

    def bad(key: str, why: str) -> ClientsFileError:
        return ClientsFileError(f"{where}: key {key!r}: {why}")

    for key in table:
        if key not in _KEYS:
            raise bad(key, f"unknown key (known: {', '.join(_KEYS)})")
    for key in ("id", "name", "role", "organization", "scopes"):
        if key not in table:
            raise bad(key, "missing")
    if not (isinstance(client_id, str) and _ID.match(client_id)):
        raise bad("id", "must be 1 to 255 printable characters without spaces")
    if not isinstance(table["name"], str) or not table["name"].strip():
        raise bad("name", "must be a non-empty string")
    if table["role"] not in ROLES:
        raise bad("role", f"{table['role']!r} is not one of {', '.join(ROLES)}")
    if not is_organization_spec(table["organization"]):
        raise bad("organization", "must be a literal Organization/{id} or an identifier as system|value")
    scopes = _scopes(table["scopes"], bad)
    keys = _keys(table, bad)
    return Client(client_id, table["name"], table["role"], table["organization"], scopes, keys, table.get("jwks_url"))


def _scopes(value: Any, bad) -> Scopes:
    if not isinstance(value, list) or not value or not all(isinstance(s, str) for s in value):
        raise bad("scopes", "must be a non-empty list of SMART scopes, e.g. [\"system/*.rs\"]")
    for scope in value:
        if parse_scope(scope) is None:
            raise bad("scopes", f"{scope!r} is not a SMART system/ or user/ resource scope (v1 or v2)")
    return Scopes.parse(value)


def _keys(table: dict, bad):
    if ("jwks" in table) == ("jwks_url" in table):
        raise bad("jwks", "give exactly one of jwks (an inline JWK Set) and jwks_url")
    if "jwks" in table:
        try:
            return StaticKeySet(table["jwks"], ASSERTION_ALGORITHMS)
        except KeySetError as exc:
            raise bad("jwks", str(exc)) from None
    url = table["jwks_url"]
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        raise bad("jwks_url", "must be an http(s) URL")
    try:
        return RemoteKeySet(url, ASSERTION_ALGORITHMS)
    except KeySetError as exc:
        raise bad("jwks_url", str(exc)) from None


def add_client(path: str | Path, fields: dict[str, Any]) -> Client:
    """Append a ``[[client]]`` table to the file (made if missing), if the whole file
    with it still loads; the file is replaced in one step, never left half-written."""
    path = Path(path)
    try:
        before = path.read_text(encoding="utf-8") if path.exists() else ""
    except (OSError, UnicodeDecodeError) as exc:
        raise ClientsFileError(f"clients file {path}: cannot be read: {exc}") from None
    text = before + ("\n" if before and not before.endswith("\n") else "") + ("\n" if before else "") + client_table(fields)
    added = parse_clients(text, f"clients file {path}").get(fields.get("id"))
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise ClientsFileError(f"clients file {path}: cannot be written: {exc}") from None
    return added


def client_table(fields: dict[str, Any]) -> str:
    """One ``[[client]]`` table as TOML text (for ``evi-fhir clients add``); the caller
    checks the result with ``parse_clients``."""
    lines = ["[[client]]"] + [f"{key} = {_toml(fields[key])}" for key in _KEYS if key in fields]
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    """TOML 1.0 for strings, lists and (inline) tables: what a client table holds."""
    if isinstance(value, str):
        # JSON's string escapes are TOML's basic-string escapes; TOML also wants DEL escaped
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        items = (f"{k if re.match(r'^[A-Za-z0-9_-]+$', k) else _toml(k)} = {_toml(v)}" for k, v in value.items())
        return "{ " + ", ".join(items) + " }"
    raise TypeError(f"no TOML for {type(value).__name__}")
