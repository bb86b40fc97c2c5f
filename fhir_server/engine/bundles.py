"""Bundle assembly for searchset, history and batch/transaction responses.

Stored bodies are embedded as ``orjson.Fragment`` so a page of results is never
parsed and re-serialised.
"""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

import orjson

from fhir_server.errors import Issue
from fhir_server.model import select_elements, summarize
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


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(instant: str) -> str:
    """RFC 7231 date of a stored instant (fixed-width UTC): sliced, not parsed (hot path)."""
    year, month, day = int(instant[0:4]), int(instant[5:7]), int(instant[8:10])
    weekday = date(year, month, day).weekday()
    return f"{_DAYS[weekday]}, {instant[8:10]} {_MONTHS[month - 1]} {instant[0:4]} {instant[11:19]} GMT"


def full_url(base: str, version: ResourceVersion) -> str:
    return f"{base}/{version.resource_type}/{version.id}"


def _link(relation: str, url: str, params: list[tuple[str, str]]) -> dict:
    return {"relation": relation, "url": f"{url}?{urlencode(params)}" if params else url}


def outcome_resource(issues: list[Issue] | tuple[Issue, ...], default_code: str = "informational") -> dict:
    return {"resourceType": "OperationOutcome", "issue": [i.to_fhir(default_code) for i in issues]}


def _render(version: ResourceVersion, plan) -> object:
    """The entry's resource: the stored bytes, or a subset for _summary / _elements."""
    if plan.summary in ("true", "text", "data"):
        return summarize(orjson.loads(version.body), plan.summary)
    if plan.elements:
        return select_elements(orjson.loads(version.body), plan.elements)
    return orjson.Fragment(version.body)


def _page_link(relation: str, base: str, self_url: str, page, offset: int) -> dict:
    if page.snapshot is not None:
        params = [("_getpages", page.snapshot.token), ("_getpagesoffset", str(offset)), ("_count", str(page.count))]
        return _link(relation, base, params)
    kept = [(k, v) for k, v in page_params(page) if k not in ("_count", "_offset")]
    return _link(relation, self_url, [*kept, ("_count", str(page.count)), ("_offset", str(offset))])


def page_params(page) -> list[tuple[str, str]]:
    return list(page.snapshot.params) if page.snapshot is not None else list(page.self_params)


def searchset_bundle(base: str, self_url: str, page) -> dict:
    """A searchset page (R4 bundle.html#searchset): matches, includes, an outcome for ignored parameters."""
    bundle: dict = {"resourceType": "Bundle", "type": "searchset"}
    if page.total is not None:
        bundle["total"] = page.total
    links = [_link("self", self_url, [(k, v) for k, v in page.self_params if k not in ("_getpages", "_getpagesoffset")])]
    if page.has_next and page.count > 0:
        links.append(_page_link("next", base, self_url, page, page.offset + page.count))
    if page.offset > 0 and page.count > 0:
        links.append(_page_link("previous", base, self_url, page, max(page.offset - page.count, 0)))
    bundle["link"] = links
    entries = [
        {"fullUrl": full_url(base, v), "resource": _render(v, page.plan), "search": {"mode": "match"}}
        for v in page.matches
    ]
    entries.extend(
        {"fullUrl": full_url(base, v), "resource": _render(v, page.plan), "search": {"mode": "include"}}
        for v in page.included
    )
    if page.warnings:
        entries.append({"resource": outcome_resource(page.warnings), "search": {"mode": "outcome"}})
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
