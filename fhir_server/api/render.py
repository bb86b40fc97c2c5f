"""Rendering interaction results: headers (ETag, Last-Modified, Location) and Prefer."""

from __future__ import annotations

from starlette.responses import Response

from fhir_server.api.content import empty_response, fhir_response
from fhir_server.engine import ResourceVersion, WriteOutcome, etag, http_date, version_response, write_outcome

__all__ = ["version_headers", "read_response", "write_response"]


def version_headers(version: ResourceVersion) -> dict:
    return {"ETag": etag(version), "Last-Modified": http_date(version.last_updated)}


def read_response(version: ResourceVersion, *, pretty: bool) -> Response:
    return fhir_response(version.body, 200, version_headers(version), pretty=pretty)


def write_response(outcome: WriteOutcome, base: str, return_pref: str, *, pretty: bool) -> Response:
    """Render a write once its unit of work is done: ``outcome`` then shows what was committed."""
    v = outcome.version
    headers: dict = {}
    if v is not None and not v.deleted:
        # the fields of a Bundle entry's response (one builder), as HTTP headers
        response = version_response(v, outcome.status, location=outcome.status in (200, 201))
        headers = {"ETag": response["etag"], "Last-Modified": http_date(response["lastModified"])}
        if "location" in response:
            headers["Location"] = f"{base}/{response['location']}"
    effects = [e for e in outcome.side_effects if e.action != "deleted"]
    if effects:  # what server rules wrote because of this write (RFC 8288 "related" links)
        headers["Link"] = ", ".join(f'<{base}/{e.location}>; rel="related"' for e in effects)
    if return_pref == "OperationOutcome":
        body = write_outcome(outcome)
        return fhir_response(body, 200 if outcome.status == 204 else outcome.status, headers, pretty=pretty)
    if outcome.status == 204 or return_pref == "minimal" or v is None or v.body is None:
        return empty_response(outcome.status, headers)
    # the stored bytes are the representation: no re-serialisation
    return fhir_response(v.body, outcome.status, headers, pretty=pretty)
