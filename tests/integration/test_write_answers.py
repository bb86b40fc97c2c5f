"""Single writes answer what their unit of work committed: a server rule that writes a
later version of the resource in the same unit of work shows in ETag, Location and body
(a test rule on a server of its own; the EVI rules' case is tests/integration/workflow)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import orjson
import pytest

from fhir_server.engine import DeferredRule, HookPoint, update
from tests.support.live_server import LiveServer

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
MARK = "urn:test:retag"
TAG = {"system": MARK, "code": "seen-by-rule"}


@dataclass(frozen=True)
class Retag(DeferredRule):
    rule = "test retag"
    patient_id: str


def install_retag(runtime) -> None:
    """A Patient with an identifier of MARK gets a second version carrying TAG."""

    def on_patient(event):
        resource = event.resource
        if event.resource_type != "Patient" or resource is None:
            return
        if not any(i.get("system") == MARK for i in resource.get("identifier", [])):
            return
        work, pid = event.work, event.id

        def retag():
            current = orjson.loads(work.uow.current("Patient", pid).body)
            if TAG not in current.get("meta", {}).get("tag", []):
                current["meta"]["tag"] = [*current["meta"].get("tag", []), TAG]
                update(work, "Patient", pid, current)

        work.defer(Retag(pid), retag)

    runtime.hooks.register(HookPoint.BEFORE_COMMIT, on_patient)


@pytest.fixture(scope="module")
def retag_http():
    with LiveServer(storage="sqlite://:memory:") as live:
        install_retag(live.app.state.runtime)
        with httpx.Client(base_url=live.base_url, timeout=30, headers={"Accept": "application/fhir+json"}) as c:
            yield c


def marked(value: str, **extra) -> dict:
    return {"resourceType": "Patient", "identifier": [{"system": MARK, "value": value}], **extra}


def assert_final(http, r, version: int) -> None:
    rid = r.headers["location"].split("/Patient/")[1].split("/")[0]
    current = http.get(f"/Patient/{rid}")
    assert r.headers["etag"] == current.headers["etag"] == f'W/"{version}"'
    assert r.headers["location"].endswith(f"/Patient/{rid}/_history/{version}")
    assert r.headers["last-modified"] == current.headers["last-modified"]
    assert r.json() == current.json()
    assert TAG in r.json()["meta"]["tag"]


def test_post_answers_the_version_the_rule_wrote(retag_http, uid):
    r = retag_http.post("/Patient", json=marked(uid), headers=FHIR_JSON)
    assert r.status_code == 201, r.text
    assert_final(retag_http, r, 2)
    assert f'/Patient/{r.json()["id"]}/_history/2>; rel="related"' in r.headers["link"]


def test_put_answers_the_version_the_rule_wrote(retag_http, uid):
    rid = f"p-{uid}"
    r = retag_http.put(f"/Patient/{rid}", json={**marked(uid), "id": rid}, headers=FHIR_JSON)
    assert r.status_code == 201, r.text
    assert_final(retag_http, r, 2)
    body = {**r.json(), "active": True}
    r = retag_http.put(f"/Patient/{rid}", json=body, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    assert_final(retag_http, r, 3)  # the tag is there already: the rule writes nothing more


def test_operation_outcome_names_the_rule(retag_http, uid):
    r = retag_http.post("/Patient", json=marked(uid), headers={**FHIR_JSON, "Prefer": "return=OperationOutcome"})
    assert r.status_code == 201, r.text
    rid = r.headers["location"].split("/Patient/")[1].split("/")[0]
    assert [i["diagnostics"] for i in r.json()["issue"]] == [
        f"Created Patient/{rid} version 2",
        f"Server rule 'test retag' updated Patient/{rid}/_history/2",
    ]
    assert r.headers["etag"] == 'W/"2"'


def test_a_patient_without_the_mark_is_written_once(retag_http, uid):
    r = retag_http.post("/Patient", json={"resourceType": "Patient", "active": True}, headers=FHIR_JSON)
    assert r.status_code == 201 and r.headers["etag"] == 'W/"1"' and "link" not in r.headers
