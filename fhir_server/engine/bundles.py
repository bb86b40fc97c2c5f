"""Bundle assembly for searchset, history and batch/transaction responses, and the one
builder of what a write answers (``write_entry``; ``api`` turns the same fields into
HTTP headers for single interactions).

Stored bodies are embedded as ``orjson.Fragment`` so a page of results is never
parsed and re-serialised.
"""

from __future__ import annotations

from datetime import date
from http import HTTPStatus
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import orjson

from fhir_server.errors import FhirError, Issue
from fhir_server.model import select_elements, summarize
from fhir_server.storage.base import HistoryPage, ResourceVersion

if TYPE_CHECKING:
    from fhir_server.engine.write import WriteOutcome

__all__ = [
    "etag",
    "http_date",
    "full_url",
    "searchset_bundle",
    "history_bundle",
    "outcome_resource",
    "status_text",
    "version_response",
    "write_entry",
    "write_outcome",
    "error_entry",
    "read_entry",
]


def status_text(status: int) -> str:
    """Bundle.entry.response.status: the code and its reason phrase (RFC 9110), "201 Created"."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


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
        entry["response"] = version_response(v, status, location=False)
        entries.append(entry)
    if entries:
        bundle["entry"] = entries
    return bundle


def version_response(version: ResourceVersion, status: int, *, location: bool = True) -> dict:
    """Bundle.entry.response for a stored version (R4 bundle.html#Bundle.entry.response)."""
    response: dict = {"status": status_text(status)}
    if location and not version.deleted:
        response["location"] = f"{version.resource_type}/{version.id}/_history/{version.version_id}"
    response["etag"] = etag(version)
    response["lastModified"] = version.last_updated
    return response


def _describe(outcome: "WriteOutcome") -> str:
    v = outcome.version
    if v is None:
        return "Nothing was changed"
    if v.deleted:
        return f"Deleted {v.resource_type}/{v.id}"
    verb = "Created" if outcome.status == 201 else "Updated"
    return f"{verb} {v.resource_type}/{v.id} version {v.version_id}"


def write_outcome(outcome: "WriteOutcome", *, describe_write: bool = True) -> dict | None:
    """An OperationOutcome of information issues: the write itself (``describe_write``),
    then one per resource a server rule created, updated or deleted because of it
    ("Server rule 'intake' created Task/123/_history/1"). None when there is nothing to say."""
    issues = []
    if describe_write:
        issues.append(Issue(outcome.message or _describe(outcome), "informational", severity="information"))
    issues.extend(
        Issue(effect.describe(), "informational", severity="information") for effect in outcome.side_effects
    )
    return outcome_resource(issues) if issues else None


def write_entry(base: str, outcome: "WriteOutcome", return_pref: str) -> dict:
    """A transaction or batch response entry for a write, from what was committed.

    ``response.outcome`` lists the server rules' side effects always, and describes the
    write itself too when the client asked for ``Prefer: return=OperationOutcome``."""
    entry: dict = {}
    v = outcome.version
    if v is not None and not v.deleted:
        entry["fullUrl"] = full_url(base, v)
        if return_pref == "representation":
            entry["resource"] = orjson.Fragment(v.body)
        response = version_response(v, outcome.status)
    else:
        response = {"status": status_text(outcome.status)}
    found = write_outcome(outcome, describe_write=return_pref == "OperationOutcome")
    if found is not None:
        response["outcome"] = found
    entry["response"] = response
    return entry


def read_entry(base: str, version: ResourceVersion) -> dict:
    """A batch or transaction response entry for a read or vread."""
    return {
        "fullUrl": full_url(base, version),
        "resource": orjson.Fragment(version.body),
        "response": version_response(version, 200, location=False),
    }


def error_entry(exc: FhirError) -> dict:
    """A batch response entry for an entry that failed on its own (R4 http.html#brules)."""
    return {"response": {"status": status_text(exc.status), "outcome": exc.to_outcome()}}
