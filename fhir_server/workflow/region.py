"""A region's configuration (domain.md §3 rule 7 of issue 6): one TOML file per region.

    name = "Region Kalmar län"
    evi_unit = "Organization/evi-kalmar"          # or "urn:oid:1.2.752.29.4.19|<HSA-id>"
    bup_acute_unit = "urn:oid:1.2.752.29.4.19|SE2321000032-BUPAKUT"
    assessment_deadline_days = 3
    age_range = [0, 17]
    timezone = "Europe/Stockholm"
    upstream_fhir_url = "https://fhir.regionkalmar.example/r4"
    upstream_timeout_seconds = 5

    [[required_profiles]]
    type = "ServiceRequest"
    profile = "https://evi-fhir.org/fhir/StructureDefinition/evi-referral"
    performer = "Organization/evi-kalmar"

    [[relay]]                                     # domain.md §7, docs/notify.md
    topic = "triage-completed"
    filter = "Task?triage-outcome=https://evi-fhir.org/fhir/CodeSystem/evi-triage-outcome|book-first-visit"
    url = "https://ehr.bup-kalmar.example/fhir"
    headers = { Authorization = "Bearer ..." }

A unit is named by a literal reference or by ``system|value`` of an identifier (the
HSA-id), resolved against the store when a rule needs it; left out, it is the one
active Organization of that evi-organization-type on the server.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fhir_server.engine import Work, find_matches
from fhir_server.errors import Unprocessable
from fhir_server.workflow.codes import ORGANIZATION_TYPE

__all__ = ["Region", "RegionError", "RelayRule", "load_region", "resolve_unit"]


class RegionError(ValueError):
    """The region file is missing, unreadable or wrong; the message says where."""


@dataclass(frozen=True)
class RequiredProfileRule:
    type: str
    profile: str
    performer: str | None = None


@dataclass(frozen=True)
class RelayRule:
    """A ``[[relay]]`` table: the events of ``topic`` (meeting ``filter``) are written to the
    FHIR server at ``url`` (``notify/relay.py`` checks the topic and the filter)."""

    topic: str
    url: str
    filter: str | None = None
    #: sent with every request (credentials: never shown in the rule's repr)
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)


_RELAY_KEYS = frozenset({"topic", "filter", "url", "headers"})


@dataclass(frozen=True)
class Region:
    name: str = "default"
    evi_unit: str | None = None
    bup_acute_unit: str | None = None
    assessment_deadline_days: int = 3
    age_range: tuple[int, int] = (0, 17)
    timezone: str = "Europe/Stockholm"
    upstream_fhir_url: str | None = None
    upstream_timeout_seconds: float = 5.0
    #: capacity of a BUP mobile team whose Organization carries no evi-capacity extension
    default_team_capacity: int = 10
    required_profiles: tuple[RequiredProfileRule, ...] = field(default=())
    #: ``[[relay]]`` tables: upstream FHIR servers that get the events of a topic
    relay: tuple[RelayRule, ...] = field(default=())

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


_KEYS = {f.name for f in fields(Region)}


def load_region(path: str | Path) -> Region:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RegionError(f"cannot read the region file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RegionError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise RegionError(f"{path}: unknown keys {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}")
    values = dict(data)
    try:
        if "age_range" in values:
            low, high = values["age_range"]
            if not (isinstance(low, int) and isinstance(high, int) and 0 <= low <= high):
                raise ValueError
            values["age_range"] = (low, high)
        if "required_profiles" in values:
            values["required_profiles"] = tuple(RequiredProfileRule(**r) for r in values["required_profiles"])
    except (TypeError, ValueError):
        raise RegionError(f"{path}: age_range is [lowest, highest] age in whole years; required_profiles "
                          "entries have type, profile and optionally performer") from None
    if "relay" in values:
        values["relay"] = _relays(path, values["relay"])
    for key in ("assessment_deadline_days", "default_team_capacity"):
        if key in values and (not isinstance(values[key], int) or values[key] < 0):
            raise RegionError(f"{path}: {key} must be a whole number ≥ 0")
    for key in ("name", "evi_unit", "bup_acute_unit", "timezone", "upstream_fhir_url"):
        if key in values and not isinstance(values[key], str):
            raise RegionError(f"{path}: {key} must be a string")
    region = Region(**values)
    try:
        region.zone
    except (ZoneInfoNotFoundError, ValueError):
        raise RegionError(f"{path}: unknown timezone {region.timezone!r}") from None
    return region


def _relays(path: Path, tables: object) -> tuple[RelayRule, ...]:
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise RegionError(f"{path}: relay must be [[relay]] tables")
    rules = []
    for n, table in enumerate(tables, 1):
        where = f"{path}: relay {n}"
        unknown = sorted(set(table) - _RELAY_KEYS)
        if unknown:
            raise RegionError(f"{where}: unknown keys {', '.join(unknown)}; known: {', '.join(sorted(_RELAY_KEYS))}")
        for key in ("topic", "url"):
            if not isinstance(table.get(key), str) or not table[key]:
                raise RegionError(f"{where}: {key} is required (a string)")
        if "filter" in table and not isinstance(table["filter"], str):
            raise RegionError(f"{where}: filter must be a string (one filter criterion)")
        if not table["url"].startswith(("http://", "https://")):
            raise RegionError(f"{where}: url must be an http or https FHIR base URL")
        headers = table.get("headers", {})
        if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
            raise RegionError(f"{where}: headers must be a table of strings, e.g. {{ Authorization = \"Bearer ...\" }}")
        rules.append(RelayRule(table["topic"], table["url"], table.get("filter"), tuple(headers.items())))
    return tuple(rules)


def resolve_unit(work: Work, configured: str | None, unit_type: str, role: str) -> str:
    """``Organization/{id}`` of a configured unit (see the module docstring)."""
    if configured and configured.startswith("Organization/"):
        return configured
    if configured:
        params = [("identifier", configured)]
        described = f"identifier {configured}"
    else:
        params = [("type", f"{ORGANIZATION_TYPE}|{unit_type}"), ("active:not", "false")]
        described = f"type {unit_type}"
    found = find_matches(work, "Organization", params, limit=2)
    if len(found) == 1:
        return f"Organization/{found[0]}"
    if not found:
        raise Unprocessable(
            f"The region's {role} (Organization with {described}) is not on this server; "
            f"load it or set {role} in the region file"
        )
    raise Unprocessable(
        f"More than one Organization has {described}, so the region's {role} is ambiguous; "
        f"name it in the region file"
    )
