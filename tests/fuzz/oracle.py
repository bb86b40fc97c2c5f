"""What every answer must satisfy, whatever the request.

- no 5xx, ever (503 included);
- a 4xx answer is an OperationOutcome (FHIR JSON, at least one issue);
- every resource a 2xx write stored is re-read and is valid: our base validation
  (``model.validate_resource``, in this process) and the server's ``$validate``
  (which adds the profile validator's own walk of the base StructureDefinitions)
  report no error, and no string in it holds a control character (checked here
  independently of both);
- a refused write leaves the resources it named as they were.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import orjson

from fhir_server.errors import FhirError
from fhir_server.model import validate_resource
from tests.fuzz.case import FHIR_JSON, Case

__all__ = ["Verdict", "check"]

_WRITES = frozenset({"create", "update", "patch", "transaction", "batch"})
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


@dataclass
class Verdict:
    case: Case
    status: int
    #: what broke the rules (empty: all is well)
    problems: list[str] = field(default_factory=list)
    #: resources a 2xx write stored that are not valid
    invalid_stored: int = 0

    @property
    def status_class(self) -> str:
        return f"{self.status // 100}xx" if self.status else "no answer"


def check(client: httpx.Client, case: Case) -> Verdict:
    before = {t: _version(client, t) for t in case.targets}
    try:
        r = client.request(case.method, _url(client, case.path), content=case.body, headers=dict(case.headers))
    except httpx.HTTPError as exc:  # the server closed the connection or hung: as bad as a 5xx
        return Verdict(case, 0, [f"no answer: {exc!r}"])
    verdict = Verdict(case, r.status_code)
    if r.status_code >= 500:
        verdict.problems.append(f"{r.status_code}: {r.text[:300]}")
    elif r.status_code >= 400:
        _check_outcome(r, verdict)
        for target, version in before.items():
            if _version(client, target) != version:
                verdict.problems.append(f"{target} changed although the request was refused ({r.status_code})")
    elif 200 <= r.status_code < 300 and case.interaction in _WRITES:
        for location in _written(r, case.interaction):
            _check_stored(client, location, verdict)
    return verdict


def _url(client: httpx.Client, path: str) -> httpx.URL:
    """The path as it is (percent signs and all), with only non-ASCII, spaces and controls escaped."""
    base = client.base_url
    raw = bytes(path.encode("utf-8"))
    raw = b"".join(b"%%%02X" % c if c <= 0x20 or c >= 0x7F else bytes([c]) for c in raw)
    return base.copy_with(raw_path=base.raw_path.rstrip(b"/") + raw)


def _check_outcome(r: httpx.Response, verdict: Verdict) -> None:
    if not r.headers.get("content-type", "").startswith(FHIR_JSON):
        verdict.problems.append(f"{r.status_code} without a FHIR JSON body: {r.headers.get('content-type')} {r.text[:200]}")
        return
    try:
        body = r.json()
    except ValueError:
        verdict.problems.append(f"{r.status_code} body is not JSON: {r.text[:200]}")
        return
    if body.get("resourceType") != "OperationOutcome" or not body.get("issue"):
        verdict.problems.append(f"{r.status_code} body is not an OperationOutcome: {r.text[:200]}")


def _version(client: httpx.Client, target: tuple[str, str]) -> str | None:
    r = client.get(f"/{target[0]}/{target[1]}")
    if r.status_code != 200:
        return f"status {r.status_code}"
    meta = r.json().get("meta", {})
    return f"{meta.get('versionId')} {meta.get('lastUpdated')}"


def _written(r: httpx.Response, interaction: str) -> list[str]:
    """The versions a successful write stored, as paths relative to the base."""
    if interaction in ("transaction", "batch"):
        try:
            entries = r.json().get("entry", [])
        except ValueError:
            return []
        found = []
        for entry in entries:
            response = entry.get("response", {})
            if str(response.get("status", "")).startswith(("200", "201")) and response.get("location"):
                found.append(response["location"])
        return found
    location = r.headers.get("location") or r.headers.get("content-location")
    return [location] if location else []


def _relative(location: str, client: httpx.Client) -> str:
    path = urlsplit(location).path if "://" in location else "/" + location.lstrip("/")
    base = client.base_url.path.rstrip("/")
    return path[len(base):] if path.startswith(base + "/") else path


def _check_stored(client: httpx.Client, location: str, verdict: Verdict) -> None:
    path = _relative(location, client)
    r = client.get(path)
    if r.status_code != 200:
        verdict.problems.append(f"stored {path} cannot be read back: {r.status_code}")
        return
    resource = r.json()
    issues = [f"control character in {text[:60]!r}" for text in _strings(resource) if _CONTROL.search(text)]
    try:
        validate_resource(orjson.loads(r.content))
    except FhirError as exc:
        issues.append(f"base validation: {exc.message}")
    issues += _validate(client, resource)
    if issues:
        verdict.invalid_stored += 1
        verdict.problems.append(f"invalid stored {path}: {'; '.join(issues)[:400]}")


def _validate(client: httpx.Client, resource: dict) -> list[str]:
    """The error issues of the server's ``$validate`` on ``resource``."""
    outcome = client.post(f"/{resource.get('resourceType')}/$validate", content=orjson.dumps(resource),
                          headers={"Content-Type": FHIR_JSON})
    if outcome.status_code != 200:
        return [f"$validate answered {outcome.status_code}"]
    errors = [i for i in outcome.json().get("issue", []) if i.get("severity") in ("error", "fatal")]
    return [f"$validate: {i.get('diagnostics')}" for i in errors]


def _strings(value) -> list[str]:
    """Every string in a JSON tree, keys included."""
    found, stack = [], [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            found.append(node)
        elif isinstance(node, dict):
            found.extend(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found
