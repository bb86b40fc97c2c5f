"""The nine requests that answered 500 before the core was hardened (issue 11), each as
it was sent, now a 4xx OperationOutcome with nothing stored; and the string-for-object
writes that were stored with 201 while $validate refused them."""

from __future__ import annotations

import functools
import json

import pytest

FHIR_JSON = {"Content-Type": "application/fhir+json"}


def _nested(levels: int, leaf: dict, wrap) -> dict:
    return functools.reduce(lambda acc, _: wrap(acc), range(levels), leaf)


def _dumps(value) -> str:
    """json.dumps without recursion (the bodies nest past Python's own limit)."""
    out, stack = [], [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Raw):
            out.append(item.text)
        elif isinstance(item, dict):
            parts: list = [_Raw("{")]
            for i, (k, v) in enumerate(item.items()):
                parts += [_Raw(("," if i else "") + json.dumps(k) + ":"), v]
            stack.extend(reversed([*parts, _Raw("}")]))
        elif isinstance(item, list):
            parts = [_Raw("[")]
            for i, v in enumerate(item):
                parts += [_Raw("," if i else ""), v]
            stack.extend(reversed([*parts, _Raw("]")]))
        else:
            out.append(json.dumps(item))
    return "".join(out)


class _Raw:
    def __init__(self, text: str):
        self.text = text


def _outcome(r, status_class: int = 4) -> dict:
    assert r.status_code // 100 == status_class, (r.status_code, r.text[:300])
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    return body


@pytest.fixture
def patient(http, uid) -> str:
    r = http.put(f"/Patient/hostile-{uid[:12]}", json={"resourceType": "Patient", "id": f"hostile-{uid[:12]}"},
                 headers=FHIR_JSON)
    assert r.status_code == 201
    return f"hostile-{uid[:12]}"


@pytest.mark.parametrize("path", [
    "/Patient/{pid}/_history/99999999999999999999",
    "/Patient?_offset=9223372036854775808",
    "/Patient?birthdate=2020-01-01T00:00:00%2B99:00",
    "/Patient/_history?_at=2020-01-01T00:00:00%2B99:00",
    "/Patient?_id:text=x",
    "/Patient?name=" + ",".join(f"n{i}" for i in range(500)),
])
def test_hostile_urls_are_4xx(http, patient, path):
    _outcome(http.get(path.format(pid=patient)))


def _task(**extra) -> dict:
    return {"resourceType": "Task", "status": "requested", "intent": "order", **extra}


@pytest.mark.parametrize("body", [
    {"resourceType": "Patient", "meta": "{}"},
    {"resourceType": "Patient", "extension": [_nested(119, {"url": "http://x", "valueString": "a"},
                                                       lambda acc: {"url": "http://x", "extension": [acc]})]},
    {"resourceType": "Questionnaire", "status": "active", "item": [
        _nested(510, {"linkId": "b", "type": "string"}, lambda acc: {"linkId": "a", "type": "group", "item": [acc]})]},
    {"resourceType": "Observation", "status": "final", "code": "{\"text\":\"x\"}"},
    {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": "{\"reference\":\"Patient/x\"}"},
    {"resourceType": "Patient", "identifier": ["{}"]},
    {"resourceType": "Patient", "name": [{"family": "a\u0000b"}]},
], ids=["meta-string", "extensions-119-deep", "items-510-deep", "code-as-string", "subject-as-string",
        "identifier-string", "nul-in-string"])
def test_hostile_bodies_are_4xx_and_not_stored(http, uid, body):
    body = {**body, "identifier": body.get("identifier", [{"system": "urn:evi:test:hostile", "value": uid}])}
    rtype = body["resourceType"]
    r = http.post(f"/{rtype}", content=_dumps(body), headers=FHIR_JSON)
    _outcome(r)
    if body["identifier"] != ["{}"]:
        assert http.get(f"/{rtype}", params={"identifier": f"urn:evi:test:hostile|{uid}"}).json()["total"] == 0


def test_unknown_elements_nested_a_thousand_deep_are_4xx(http):
    body = '{"resourceType":"Patient","foo":' + '{"a":' * 1000 + "1" + "}" * 1000 + "}"
    _outcome(http.post("/Patient", content=body, headers=FHIR_JSON))


def test_a_put_task_whose_coding_is_a_number_is_400(http, uid):
    tid = f"hostile-task-{uid[:12]}"
    assert http.put(f"/Task/{tid}", json=_task(id=tid), headers=FHIR_JSON).status_code == 201
    r = http.put(f"/Task/{tid}", json=_task(id=tid, code={"coding": 5}), headers=FHIR_JSON)
    _outcome(r)
    assert http.get(f"/Task/{tid}").json()["meta"]["versionId"] == "1"
