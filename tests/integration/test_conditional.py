"""Conditional create/update/delete/patch and If-Match (R4 http.html#ccreate, #cond-update,
#cdelete, #concurrency).

Conditional interactions find their target by search; an unknown parameter must be
an error there (ignoring it would widen the match).
"""

from __future__ import annotations

import orjson
import pytest

FHIR_JSON = "application/fhir+json"
PATCH_JSON = "application/json-patch+json"
SYS = "urn:evi:test:conditional"


def patient(value: str, **extra) -> dict:
    return {"resourceType": "Patient", "identifier": [{"system": SYS, "value": value}], **extra}


def post(http, resource: dict, **headers):
    return http.post(f"/{resource['resourceType']}", json=resource, headers={"Content-Type": FHIR_JSON, **headers})


def created_id(http, resource: dict) -> str:
    r = post(http, resource)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def ident(value: str) -> str:
    return f"identifier={SYS}|{value}"


def matches(http, value: str) -> list[dict]:
    bundle = http.get("/Patient", params={"identifier": f"{SYS}|{value}"}).json()
    return [e["resource"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == "match"]


def versions(http, rid: str) -> int:
    r = http.get(f"/Patient/{rid}/_history")
    assert r.status_code == 200, r.text
    return r.json()["total"]


def assert_outcome(r, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(FHIR_JSON)
    body = r.json()
    assert body["resourceType"] == "OperationOutcome", body
    assert body["issue"]
    if code is not None:
        assert body["issue"][0]["code"] == code, body
    return body


# --------------------------------------------------------- conditional create


def test_if_none_exist_with_no_match_creates(http, base, uid):
    r = post(http, patient(uid), **{"If-None-Exist": ident(uid)})
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"{base}/Patient/{r.json()['id']}/_history/1"
    assert len(matches(http, uid)) == 1


def test_if_none_exist_with_one_match_returns_it_without_a_new_version(http, uid):
    rid = created_id(http, patient(uid, gender="male"))
    r = post(http, patient(uid, gender="female"), **{"If-None-Exist": ident(uid)})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == rid
    assert body["gender"] == "male"  # the existing resource, not the posted one
    assert r.headers["etag"] == 'W/"1"'
    assert [m["id"] for m in matches(http, uid)] == [rid]
    assert versions(http, rid) == 1


def test_if_none_exist_with_two_matches_is_412(http, uid):
    created_id(http, patient(uid))
    created_id(http, patient(uid))
    assert_outcome(post(http, patient(uid), **{"If-None-Exist": ident(uid)}), 412)
    assert len(matches(http, uid)) == 2


def test_if_none_exist_with_unknown_parameter_is_400(http, uid):
    created_id(http, patient(uid))
    r = post(http, patient(uid), **{"If-None-Exist": f"{ident(uid)}&nonsense=1"})
    assert_outcome(r, 400)
    assert len(matches(http, uid)) == 1


def test_if_none_exist_without_criteria_is_400(http, uid):
    assert_outcome(post(http, patient(uid), **{"If-None-Exist": "_count=1"}), 400)
    assert matches(http, uid) == []


# --------------------------------------------------------- conditional update


def cond_put(http, query: str, resource: dict, **headers):
    return http.put(f"/Patient?{query}", json=resource, headers={"Content-Type": FHIR_JSON, **headers})


def test_conditional_update_with_no_match_creates(http, base, uid):
    r = cond_put(http, ident(uid), patient(uid, active=True))
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    assert r.headers["location"] == f"{base}/Patient/{rid}/_history/1"
    assert [m["id"] for m in matches(http, uid)] == [rid]


def test_conditional_update_with_no_match_and_body_id_creates_with_that_id(http, uid):
    rid = f"cu-{uid}"
    r = cond_put(http, ident(uid), {**patient(uid), "id": rid})
    assert r.status_code == 201, r.text
    assert r.json()["id"] == rid
    assert http.get(f"/Patient/{rid}").status_code == 200


def test_conditional_update_never_overwrites_a_resource_the_criteria_did_not_match(http, uid):
    other = created_id(http, patient(f"other-{uid}", gender="male"))
    r = cond_put(http, ident(uid), {**patient(uid, gender="female"), "id": other})
    assert r.status_code in (400, 409, 412), r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    assert http.get(f"/Patient/{other}").json()["gender"] == "male"
    assert versions(http, other) == 1


def test_conditional_update_with_one_match_updates_it(http, base, uid):
    rid = created_id(http, patient(uid, gender="male"))
    r = cond_put(http, ident(uid), patient(uid, gender="female"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == rid
    assert body["gender"] == "female"
    assert body["meta"]["versionId"] == "2"
    assert r.headers["etag"] == 'W/"2"'
    assert r.headers["location"] == f"{base}/Patient/{rid}/_history/2"
    assert [m["id"] for m in matches(http, uid)] == [rid]


def test_conditional_update_with_matching_body_id_updates(http, uid):
    rid = created_id(http, patient(uid))
    r = cond_put(http, ident(uid), {**patient(uid, active=False), "id": rid})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == rid
    assert versions(http, rid) == 2


def test_conditional_update_with_two_matches_is_412(http, uid):
    a = created_id(http, patient(uid))
    b = created_id(http, patient(uid))
    assert_outcome(cond_put(http, ident(uid), patient(uid, active=True)), 412)
    assert versions(http, a) == 1 and versions(http, b) == 1
    assert len(matches(http, uid)) == 2


def test_conditional_update_with_a_different_body_id_is_400(http, uid):
    rid = created_id(http, patient(uid))
    body = assert_outcome(cond_put(http, ident(uid), {**patient(uid), "id": f"other-{uid}"}), 400)
    assert "Patient.id" in body["issue"][0].get("expression", [])
    assert versions(http, rid) == 1
    assert http.get(f"/Patient/other-{uid}").status_code == 404


def test_conditional_update_without_criteria_is_400(http, uid):
    r = http.put("/Patient", json=patient(uid), headers={"Content-Type": FHIR_JSON})
    assert_outcome(r, 400)
    assert matches(http, uid) == []


def test_conditional_update_with_if_match(http, uid):
    rid = created_id(http, patient(uid))
    assert_outcome(cond_put(http, ident(uid), patient(uid, active=True), **{"If-Match": 'W/"2"'}), 412)
    assert versions(http, rid) == 1
    r = cond_put(http, ident(uid), patient(uid, active=True), **{"If-Match": 'W/"1"'})
    assert r.status_code == 200, r.text
    assert versions(http, rid) == 2


# --------------------------------------------------------- conditional delete


def test_conditional_delete_with_no_match_deletes_nothing(http, uid):
    bystander = created_id(http, patient(f"by-{uid}"))
    r = http.delete(f"/Patient?{ident(uid)}")
    assert r.status_code in (200, 204), r.text
    assert http.get(f"/Patient/{bystander}").status_code == 200


def test_conditional_delete_with_one_match_deletes_it(http, uid):
    rid = created_id(http, patient(uid))
    bystander = created_id(http, patient(f"by-{uid}"))
    r = http.delete(f"/Patient?{ident(uid)}")
    assert r.status_code in (200, 204), r.text
    assert_outcome(http.get(f"/Patient/{rid}"), 410, "deleted")
    assert http.get(f"/Patient/{bystander}").status_code == 200
    assert matches(http, uid) == []


def test_conditional_delete_with_two_matches_is_412_and_deletes_nothing(http, uid):
    a = created_id(http, patient(uid))
    b = created_id(http, patient(uid))
    assert_outcome(http.delete(f"/Patient?{ident(uid)}"), 412)
    assert http.get(f"/Patient/{a}").status_code == 200
    assert http.get(f"/Patient/{b}").status_code == 200


def test_conditional_delete_without_criteria_is_400(http, uid):
    rid = created_id(http, patient(uid))
    assert_outcome(http.delete("/Patient"), 400)
    assert http.get(f"/Patient/{rid}").status_code == 200


# ---------------------------------------------- unknown parameters never widen


@pytest.mark.parametrize("extra", ["nonsense=1", "_text=Smith", "identifier:bogusmodifier=x"])
def test_conditional_delete_with_unknown_or_unsupported_parameter_is_400(http, uid, extra):
    rid = created_id(http, patient(uid))
    assert_outcome(http.delete(f"/Patient?{ident(uid)}&{extra}"), 400)
    assert http.get(f"/Patient/{rid}").status_code == 200
    # an unknown parameter alone must not become "match everything"
    assert_outcome(http.delete(f"/Patient?{extra}"), 400)
    assert http.get(f"/Patient/{rid}").status_code == 200


def test_conditional_update_with_unknown_parameter_is_400(http, uid):
    rid = created_id(http, patient(uid, gender="male"))
    assert_outcome(cond_put(http, f"{ident(uid)}&nonsense=1", patient(uid, gender="female")), 400)
    assert_outcome(cond_put(http, "nonsense=1", patient(uid, gender="female")), 400)
    assert versions(http, rid) == 1
    assert len(matches(http, uid)) == 1


def test_conditional_patch_with_unknown_parameter_is_400(http, uid):
    rid = created_id(http, patient(uid, active=True))
    r = http.patch(
        f"/Patient?{ident(uid)}&nonsense=1",
        content=orjson.dumps([{"op": "replace", "path": "/active", "value": False}]),
        headers={"Content-Type": PATCH_JSON},
    )
    assert_outcome(r, 400)
    assert versions(http, rid) == 1


# -------------------------------------------------------- conditional patch


def test_conditional_patch_with_one_match(http, uid):
    rid = created_id(http, patient(uid, active=True))
    r = http.patch(
        f"/Patient?{ident(uid)}",
        content=orjson.dumps([{"op": "replace", "path": "/active", "value": False}]),
        headers={"Content-Type": PATCH_JSON},
    )
    assert r.status_code == 200, r.text
    assert r.json()["id"] == rid
    assert r.json()["active"] is False
    assert r.headers["etag"] == 'W/"2"'


def test_conditional_patch_with_no_or_two_matches(http, uid):
    ops = orjson.dumps([{"op": "add", "path": "/active", "value": False}])
    r = http.patch(f"/Patient?{ident(uid)}", content=ops, headers={"Content-Type": PATCH_JSON})
    assert r.status_code in (404, 412), r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    created_id(http, patient(uid))
    created_id(http, patient(uid))
    assert_outcome(http.patch(f"/Patient?{ident(uid)}", content=ops, headers={"Content-Type": PATCH_JSON}), 412)


# ------------------------------------------------------------------- If-Match


def test_if_match_current_version_updates(http, uid):
    rid = created_id(http, patient(uid))
    r = http.put(
        f"/Patient/{rid}",
        json={**patient(uid, active=True), "id": rid},
        headers={"Content-Type": FHIR_JSON, "If-Match": 'W/"1"'},
    )
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == 'W/"2"'


def test_if_match_stale_version_is_412(http, uid):
    rid = created_id(http, patient(uid, gender="male"))
    ok = http.put(f"/Patient/{rid}", json={**patient(uid, gender="female"), "id": rid}, headers={"If-Match": 'W/"1"'})
    assert ok.status_code == 200, ok.text
    stale = http.put(
        f"/Patient/{rid}", json={**patient(uid, gender="other"), "id": rid}, headers={"If-Match": 'W/"1"'}
    )
    body = assert_outcome(stale, 412)
    assert body["issue"][0]["severity"] == "error"
    current = http.get(f"/Patient/{rid}")
    assert current.headers["etag"] == 'W/"2"'
    assert current.json()["gender"] == "female"


def test_if_match_on_update_of_unknown_resource_is_412(http, uid):
    r = http.put(f"/Patient/new-{uid}", json={**patient(uid), "id": f"new-{uid}"}, headers={"If-Match": 'W/"1"'})
    assert_outcome(r, 412)
    assert http.get(f"/Patient/new-{uid}").status_code == 404


def test_if_match_strong_etag_form_is_accepted(http, uid):
    rid = created_id(http, patient(uid))
    r = http.put(f"/Patient/{rid}", json={**patient(uid, active=True), "id": rid}, headers={"If-Match": '"1"'})
    assert r.status_code == 200, r.text


def test_if_match_on_delete(http, uid):
    rid = created_id(http, patient(uid))
    assert_outcome(http.delete(f"/Patient/{rid}", headers={"If-Match": 'W/"7"'}), 412)
    assert http.get(f"/Patient/{rid}").status_code == 200
    r = http.delete(f"/Patient/{rid}", headers={"If-Match": 'W/"1"'})
    assert r.status_code == 204, r.text
    assert http.get(f"/Patient/{rid}").status_code == 410


def test_if_match_on_patch(http, uid):
    rid = created_id(http, patient(uid, active=True))
    ops = orjson.dumps([{"op": "replace", "path": "/active", "value": False}])
    stale = http.patch(f"/Patient/{rid}", content=ops, headers={"Content-Type": PATCH_JSON, "If-Match": 'W/"2"'})
    assert_outcome(stale, 412)
    assert http.get(f"/Patient/{rid}").json()["active"] is True
    ok = http.patch(f"/Patient/{rid}", content=ops, headers={"Content-Type": PATCH_JSON, "If-Match": 'W/"1"'})
    assert ok.status_code == 200, ok.text
    assert ok.json()["active"] is False
    assert ok.headers["etag"] == 'W/"2"'
