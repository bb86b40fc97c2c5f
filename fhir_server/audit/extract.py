"""The patient's log extract (``Patient/{id}/$access-log``; PDL 8 kap. 1 §): that
patient's AuditEvents oldest first, as a ``collection`` Bundle or as CSV.

CSV: the header ``time,action,user,care_unit,client,resource`` and one line per event
(refused attempts included: the Bundle's ``outcome`` tells them apart): ``time`` its
``recorded`` (ISO 8601), ``action`` its code (R, C, U, D, E), ``user`` the person's HSA-id,
``care_unit`` the care unit's HSA-id (else its ``Organization/{id}``), ``client`` the client
id (else how the client agent is described: anonymous, unauthenticated), ``resource`` the
resources concerned, space-separated (a search that found none: its query). Written with
RFC 4180 quoting; a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return gets a leading ``'``, so that no spreadsheet takes it for a formula.
"""

from __future__ import annotations

import csv
import io
from typing import Iterable

import orjson

from fhir_server.audit.record import event_body
from fhir_server.storage.audit import AuditRow

__all__ = ["CSV_HEADER", "extract_bundle", "extract_csv", "extract_line"]

CSV_HEADER = ("time", "action", "user", "care_unit", "client", "resource")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_USER_TYPES = frozenset({"IRCP", "AUT"})


def extract_bundle(base_url: str, rows: Iterable[AuditRow]) -> dict:
    entries = [{"fullUrl": f"{base_url}/AuditEvent/{r.id}", "resource": orjson.Fragment(event_body(r))} for r in rows]
    bundle: dict = {"resourceType": "Bundle", "type": "collection", "total": len(entries)}
    if entries:
        bundle["entry"] = entries
    return bundle


def _codes(agent: dict) -> set[str]:
    return {c.get("code") for c in (agent.get("type") or {}).get("coding") or () if isinstance(c, dict)}


def _who(agent: dict, prefer_identifier: bool = True) -> str:
    who = agent.get("who") or {}
    value = (who.get("identifier") or {}).get("value")
    if prefer_identifier and value:
        return value
    return who.get("reference") or value or who.get("display") or ""


def extract_line(event: dict) -> tuple[str, ...]:
    """One CSV line's cells (before quoting) for one AuditEvent."""
    user = care_unit = client = ""
    observer = (((event.get("source") or {}).get("observer") or {}).get("identifier") or {}).get("value")
    for agent in event.get("agent") or ():
        codes = _codes(agent)
        if codes & _USER_TYPES:
            user = _who(agent)
        elif "PROV" in codes:
            care_unit = _who(agent)
        elif codes & {"110152", "110153"} and _who(agent) != observer:  # not the server itself
            client = _who(agent)
    resources = [e["what"]["reference"] for e in event.get("entity") or ()
                 if (e.get("role") or {}).get("code") == "4" and "reference" in (e.get("what") or {})]
    if not resources:
        resources = [e.get("description", "") for e in event.get("entity") or () if (e.get("role") or {}).get("code") == "24"]
    return (event.get("recorded", ""), event.get("action", ""), user, care_unit, client, " ".join(resources))


def _safe(cell: str) -> str:
    return "'" + cell if cell.startswith(_FORMULA) else cell


def extract_csv(rows: Iterable[AuditRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for row in rows:
        writer.writerow([_safe(c) for c in extract_line(orjson.loads(event_body(row)))])
    return out.getvalue()
