"""Shared bits for the fhirpy integration tests (sync and async).

fhirpy quirks these helpers paper over (fhirpy 2.3):

* errors: fhirpy maps 404 *and* 410 to ``ResourceNotFound`` and 412 to
  ``MultipleResourcesFound``; both carry only the raw response body as their message,
  so :func:`outcome_of` parses it back into the OperationOutcome. Other 4xx/5xx become
  ``OperationOutcome`` whose ``.resource`` is the parsed body.
* fhirpy never sends ``If-Match`` / ``If-None-Exist`` and its ``patch`` sends a JSON
  (merge-style) object as ``application/json``; headers are given to a second client
  through ``extra_headers`` (see :func:`header_client_kwargs`).
* fhirpy does not expose response headers or status codes (except ``returning_status``
  on search-set ``update``/``delete``/``get_or_create``), so Location/ETag/410 are
  checked with httpx alongside.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta

PNR_SYSTEM = "http://electronichealth.se/identifier/personnummer"
#: an extra identifier every resource of one test carries, to scope searches to that test
RUN_SYSTEM = "urn:evi:test-run"
HSA_SYSTEM = "urn:oid:1.2.752.29.4.19"  # HSA-id (Swedish health care directory)
REMISS_SYSTEM = "urn:evi:remiss-id"
JSON_PATCH = "application/json-patch+json"


def pnr(uid: str, n: int = 0) -> str:
    """A valid personnummer (a real date in 2008-2017, Luhn check digit), unique per (uid, n)
    but for a hash collision in 3.6 million (the server checks every personnummer)."""
    digest = int(hashlib.sha256(f"{uid}:{n}".encode()).hexdigest(), 16)
    born = date(2008, 1, 1) + timedelta(days=digest % 3650)
    nine = f"{born:%y%m%d}{digest // 3650 % 1000:03d}"
    total = sum(d - 9 if d > 9 else d for d in (int(c) * (2 - i % 2) for i, c in enumerate(nine)))
    return f"{born:%Y%m%d}{nine[6:]}{(10 - total % 10) % 10}"


def patient_body(uid: str, n: int = 0, **extra) -> dict:
    body = {
        "resourceType": "Patient",
        "identifier": [
            {"system": PNR_SYSTEM, "value": pnr(uid, n)},
            {"system": RUN_SYSTEM, "value": uid},
        ],
        "name": [{"family": "Andersson", "given": ["Elsa"]}],
        "gender": "female",
        "birthDate": "2012-03-04",
    }
    body.update(extra)
    return body


def organization_body(uid: str, n: int = 0, **extra) -> dict:
    body = {
        "resourceType": "Organization",
        "identifier": [
            {"system": HSA_SYSTEM, "value": f"SE2321000016-{uid[:8]}{n}"},
            {"system": RUN_SYSTEM, "value": uid},
        ],
        "active": True,
        "name": "BUP Mottagning Södermalm",
    }
    body.update(extra)
    return body


def service_request_body(uid: str, subject_ref: str, requester_ref: str, **extra) -> dict:
    body = {
        "resourceType": "ServiceRequest",
        "identifier": [{"system": REMISS_SYSTEM, "value": f"remiss-{uid}"}, {"system": RUN_SYSTEM, "value": uid}],
        "status": "active",
        "intent": "order",
        "code": {"text": "Bedömning psykisk ohälsa, barn och unga (En väg in)"},
        "subject": {"reference": subject_ref},
        "requester": {"reference": requester_ref},
    }
    body.update(extra)
    return body


def task_body(uid: str, focus_ref: str, **extra) -> dict:
    body = {
        "resourceType": "Task",
        "identifier": [{"system": RUN_SYSTEM, "value": uid}],
        "status": "requested",
        "intent": "order",
        "focus": {"reference": focus_ref},
    }
    body.update(extra)
    return body


def outcome_of(exc: BaseException) -> dict:
    """The OperationOutcome a fhirpy exception carries (``.resource`` or its JSON message)."""
    resource = getattr(exc, "resource", None)
    if isinstance(resource, dict):
        return resource
    text = exc.args[0] if exc.args else str(exc)
    return json.loads(text)


def issue_codes(outcome: dict) -> list[str]:
    return [i.get("code") for i in outcome.get("issue", [])]


def expressions(outcome: dict) -> list[str]:
    return [e for i in outcome.get("issue", []) for e in i.get("expression", [])]


def entry_ids(resources) -> set[str]:
    return {r["id"] for r in resources}


def history_version_ids(bundle: dict) -> list[str]:
    """versionIds in Bundle order; deletions (no resource) read from response.etag."""
    out = []
    for entry in bundle.get("entry", []):
        if "resource" in entry:
            out.append(entry["resource"]["meta"]["versionId"])
        else:
            out.append(entry["response"]["etag"].removeprefix("W/").strip('"'))
    return out
