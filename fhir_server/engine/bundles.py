"""Bundle assembly for searchset, history and batch/transaction responses.

Stored bodies are embedded as ``orjson.Fragment`` so a page of results is never
parsed and re-serialised.
"""

from __future__ import annotations

from datetime import datetime, timezone
from email.utils import format_datetime
from urllib.parse import urlencode

import orjson

from fhir_server.errors import Issue
from fhir_server.storage.base import HistoryPage, ResourceVersion

__all__ = [
    "etag",
    "http_date",
    "full_url",
    "searchset_bundle",
    "history_bundle",
    "outcome_resource",
]

_STATUS_TEXT = {200: "200 OK", 201: "201 Created", 204: "204 No Content"}


def etag(version: ResourceVersion) -> str:
    return f'W/"{version.version_id}"'


def http_date(instant: str) -> str:
    moment = datetime.strptime(instant, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    return format_datetime(moment, usegmt=True)


def full_url(base: str, version: ResourceVersion) -> str:
    return f"{base}/{version.resource_type}/{version.id}"


def _link(relation: str, url: str, params: list[tuple[str, str]]) -> dict:
    return {"relation": relation, "url": f"{url}?{urlencode(params)}" if params else url}


def outcome_resource(issues: list[Issue] | tuple[Issue, ...], default_code: str = "informational") -> dict:
    return {"resourceType": "OperationOutcome", "issue": [i.to_fhir(default_code) for i in issues]}


def searchset_bundle(
    base: str,
    self_url: str,
    params: list[tuple[str, str]],
    versions: list[ResourceVersion],
    *,
    total: int | None,
    offset: int,
    count: int,
    warnings: tuple[Issue, ...] = (),
) -> dict:
    """A searchset page; ``params`` are the query's own parameters without paging ones."""
    bundle: dict = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None:
        bundle["total"] = total
    links = [_link("self", self_url, [*params, ("_count", str(count)), ("_offset", str(offset))])]
    has_more = len(versions) == count and count > 0 and (total is None or offset + count < total)
    if has_more:
        links.append(_link("next", self_url, [*params, ("_count", str(count)), ("_offset", str(offset + count))]))
    if offset > 0 and count > 0:
        previous = max(offset - count, 0)
        links.append(_link("previous", self_url, [*params, ("_count", str(count)), ("_offset", str(previous))]))
    bundle["link"] = links
    entries = [
        {"fullUrl": full_url(base, v), "resource": orjson.Fragment(v.body), "search": {"mode": "match"}}
        for v in versions
    ]
    if warnings:
        entries.append({"resource": outcome_resource(warnings), "search": {"mode": "outcome"}})
    if entries:
        bundle["entry"] = entries
    return bundle


def history_bundle(base: str, self_url: str, params: list[tuple[str, str]], page: HistoryPage) -> dict:
    bundle: dict = {"resourceType": "Bundle", "type": "history", "total": page.total}
    links = [_link("self", self_url, params)]
    if page.next_cursor is not None:
        links.append(_link("next", self_url, [*params, ("_cursor", str(page.next_cursor))]))
    bundle["link"] = links
    entries = []
    for v in page.versions:
        entry: dict = {"fullUrl": full_url(base, v)}
        if v.deleted:
            request = {"method": "DELETE", "url": f"{v.resource_type}/{v.id}"}
            status = 204
        else:
            entry["resource"] = orjson.Fragment(v.body)
            if v.method == "POST":
                request, status = {"method": "POST", "url": v.resource_type}, 201
            else:
                request = {"method": v.method, "url": f"{v.resource_type}/{v.id}"}
                status = 201 if v.version_id == 1 else 200
        entry["request"] = request
        entry["response"] = {
            "status": _STATUS_TEXT[status],
            "etag": etag(v),
            "lastModified": v.last_updated,
        }
        entries.append(entry)
    if entries:
        bundle["entry"] = entries
    return bundle
