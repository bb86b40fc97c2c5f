"""create, read, vread, update, delete and patch over HTTP (R4 http.html).

Every test works on resources named by a unique identifier (the ``uid`` fixture),
so the session-wide server can be shared.
"""

from __future__ import annotations

from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import pytest

FHIR_JSON = "application/fhir+json"
PATCH_JSON = "application/json-patch+json"
SYS = "urn:evi:test:crud"


def patient(uid: str, **extra) -> dict:
    return {"resourceType": "Patient", "identifier": [{"system": SYS, "value": uid}], **extra}


def post(http, resource: dict, **headers):
    return http.post(f"/{resource['resourceType']}", json=resource, headers={"Content-Type": FHIR_JSON, **headers})


def put(http, resource: dict, **headers):
    return http.put(
        f"/{resource['resourceType']}/{resource['id']}", json=resource, headers={"Content-Type": FHIR_JSON, **headers}
    )


def json_patch(http, path: str, operations, content_type: str = PATCH_JSON, **headers):
    import orjson

    return http.patch(path, content=orjson.dumps(operations), headers={"Content-Type": content_type, **headers})


def created(http, resource: dict) -> dict:
    r = post(http, resource)
    assert r.status_code == 201, r.text
    return r.json()


def assert_outcome(r, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(FHIR_JSON)
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"], body
    assert all(i["severity"] in ("error", "fatal") for i in body["issue"]), body
    if code is not None:
        assert body["issue"][0]["code"] == code, body
    return body


def parse_instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# --------------------------------------------------------------------- create


def test_create_answers_201_with_location_etag_last_modified_and_meta(http, base, uid):
    r = post(http, patient(uid, active=True))
    assert r.status_code == 201, r.text
    assert r.headers["content-type"].startswith(FHIR_JSON)
    body = r.json()
    rid = body["id"]
    assert body["resourceType"] == "Patient"
    assert body["identifier"] == [{"system": SYS, "value": uid}]
    assert body["active"] is True
    assert r.headers["location"] == f"{base}/Patient/{rid}/_history/1"
    assert r.headers["etag"] == 'W/"1"'
    assert body["meta"]["versionId"] == "1"
    last_updated = parse_instant(body["meta"]["lastUpdated"])
    assert last_updated.tzinfo is not None
    assert abs((datetime.now(timezone.utc) - last_updated).total_seconds()) < 60
    # Last-Modified is the HTTP-date of meta.lastUpdated (to the second)
    last_modified = parsedate_to_datetime(r.headers["last-modified"])
    assert last_modified == last_updated.replace(microsecond=0)


def test_create_ignores_a_client_supplied_id(http, uid):
    wanted = f"client-{uid}"
    r = post(http, patient(uid, id=wanted))
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    assert rid != wanted
    assert f"/Patient/{rid}/_history/1" in r.headers["location"]
    assert http.get(f"/Patient/{rid}").status_code == 200
    assert_outcome(http.get(f"/Patient/{wanted}"), 404, "not-found")


def test_create_ignores_client_meta_version(http, uid):
    r = post(http, patient(uid, meta={"versionId": "7", "lastUpdated": "2001-01-01T00:00:00Z"}))
    assert r.status_code == 201, r.text
    meta = r.json()["meta"]
    assert meta["versionId"] == "1"
    assert not meta["lastUpdated"].startswith("2001")
    assert r.headers["etag"] == 'W/"1"'


def test_create_assigns_distinct_ids(http, uid):
    ids = {created(http, patient(uid))["id"] for _ in range(3)}
    assert len(ids) == 3


# ----------------------------------------------------------------- read/vread


def test_read_answers_200_with_etag_and_the_stored_body(http, uid):
    stored = created(http, patient(uid, gender="female"))
    r = http.get(f"/Patient/{stored['id']}")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(FHIR_JSON)
    assert r.headers["etag"] == 'W/"1"'
    assert parsedate_to_datetime(r.headers["last-modified"]) == parse_instant(stored["meta"]["lastUpdated"]).replace(
        microsecond=0
    )
    assert r.json() == stored


def test_read_of_unknown_id_is_404(http, uid):
    assert_outcome(http.get(f"/Patient/nope-{uid}"), 404, "not-found")


def test_read_of_invalid_id_is_404_or_400(http):
    r = http.get("/Patient/" + "x" * 65)  # ids are at most 64 characters
    assert r.status_code in (400, 404), r.text
    assert r.json()["resourceType"] == "OperationOutcome"


def test_vread_answers_each_version(http, base, uid):
    v1 = created(http, patient(uid, gender="male"))
    rid = v1["id"]
    r = put(http, {**patient(uid, gender="female"), "id": rid})
    assert r.status_code == 200, r.text
    r1 = http.get(f"/Patient/{rid}/_history/1")
    assert r1.status_code == 200, r1.text
    assert r1.headers["etag"] == 'W/"1"'
    assert r1.json()["gender"] == "male"
    assert r1.json()["meta"]["versionId"] == "1"
    r2 = http.get(f"/Patient/{rid}/_history/2")
    assert r2.status_code == 200
    assert r2.headers["etag"] == 'W/"2"'
    assert r2.json()["gender"] == "female"
    assert_outcome(http.get(f"/Patient/{rid}/_history/3"), 404, "not-found")
    assert_outcome(http.get(f"/Patient/{rid}/_history/one"), 404)
    assert_outcome(http.get(f"/Patient/nope-{uid}/_history/1"), 404)


# --------------------------------------------------------------------- update


def test_update_creates_version_2(http, base, uid):
    v1 = created(http, patient(uid))
    rid = v1["id"]
    r = put(http, {**patient(uid, active=False), "id": rid})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == rid
    assert body["active"] is False
    assert body["meta"]["versionId"] == "2"
    assert r.headers["etag"] == 'W/"2"'
    assert r.headers["location"] == f"{base}/Patient/{rid}/_history/2"
    assert parse_instant(body["meta"]["lastUpdated"]) > parse_instant(v1["meta"]["lastUpdated"])
    read = http.get(f"/Patient/{rid}")
    assert read.headers["etag"] == 'W/"2"'
    assert read.json()["active"] is False


def test_update_as_create_answers_201(http, base, uid):
    rid = f"uac-{uid}"
    r = put(http, {**patient(uid), "id": rid})
    assert r.status_code == 201, r.text
    assert r.headers["etag"] == 'W/"1"'
    assert r.headers["location"] == f"{base}/Patient/{rid}/_history/1"
    assert r.json()["meta"]["versionId"] == "1"
    assert http.get(f"/Patient/{rid}").status_code == 200


def test_update_without_change_still_versions_or_keeps(http, uid):
    """Updating with the same content: either a new version or none, but the ETag tells which."""
    v1 = created(http, patient(uid))
    r = put(http, {**patient(uid), "id": v1["id"]})
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == f'W/"{r.json()["meta"]["versionId"]}"'


# --------------------------------------------------------------------- delete


def test_delete_then_read_is_410_and_old_versions_stay_readable(http, uid):
    rid = created(http, patient(uid))["id"]
    r = http.delete(f"/Patient/{rid}")
    assert r.status_code == 204, r.text
    assert r.content == b""
    gone = assert_outcome(http.get(f"/Patient/{rid}"), 410, "deleted")
    assert gone["issue"][0]["code"] == "deleted"
    old = http.get(f"/Patient/{rid}/_history/1")
    assert old.status_code == 200, old.text
    assert old.json()["id"] == rid
    # the deletion is version 2: vread of it is 410, not a resource
    assert http.get(f"/Patient/{rid}/_history/2").status_code == 410
    # and a deleted resource no longer matches searches
    found = http.get("/Patient", params={"identifier": f"{SYS}|{uid}"}).json()
    assert found["total"] == 0


def test_delete_twice_and_delete_of_unknown_are_204(http, uid):
    rid = created(http, patient(uid))["id"]
    assert http.delete(f"/Patient/{rid}").status_code == 204
    again = http.delete(f"/Patient/{rid}")
    assert again.status_code == 204, again.text
    assert http.delete(f"/Patient/never-{uid}").status_code == 204
    # the second delete wrote no new version
    history = http.get(f"/Patient/{rid}/_history").json()
    assert history["total"] == 2
    # and deleting what never existed created nothing
    assert http.get(f"/Patient/never-{uid}").status_code == 404


def test_recreate_by_put_after_delete(http, base, uid):
    rid = created(http, patient(uid, gender="male"))["id"]
    assert http.delete(f"/Patient/{rid}").status_code == 204
    r = put(http, {**patient(uid, gender="other"), "id": rid})
    assert r.status_code == 201, r.text
    assert r.headers["etag"] == 'W/"3"'
    assert r.headers["location"] == f"{base}/Patient/{rid}/_history/3"
    read = http.get(f"/Patient/{rid}")
    assert read.status_code == 200
    assert read.json()["gender"] == "other"
    assert read.json()["meta"]["versionId"] == "3"


def test_delete_of_unknown_type_is_404(http, uid):
    assert_outcome(http.delete(f"/NoSuchType/{uid}"), 404)


# --------------------------------------------------------------------- Prefer


def test_prefer_return_minimal_on_create_and_update(http, base, uid):
    r = post(http, patient(uid), Prefer="return=minimal")
    assert r.status_code == 201, r.text
    assert r.content == b""
    location = r.headers["location"]
    assert location.startswith(f"{base}/Patient/") and location.endswith("/_history/1")
    assert r.headers["etag"] == 'W/"1"'
    assert "last-modified" in r.headers
    rid = location.removeprefix(f"{base}/Patient/").split("/")[0]
    u = put(http, {**patient(uid, active=True), "id": rid}, Prefer="return=minimal")
    assert u.status_code == 200
    assert u.content == b""
    assert u.headers["etag"] == 'W/"2"'
    assert u.headers["location"] == f"{base}/Patient/{rid}/_history/2"


def test_prefer_return_representation_is_the_default(http, uid):
    r = post(http, patient(uid), Prefer="return=representation")
    assert r.status_code == 201
    assert r.json()["resourceType"] == "Patient"


def test_prefer_return_operation_outcome(http, base, uid):
    r = post(http, patient(uid), Prefer="return=OperationOutcome")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["severity"] == "information"
    assert r.headers["location"].endswith("/_history/1")
    assert r.headers["etag"] == 'W/"1"'
    rid = r.headers["location"].removeprefix(f"{base}/Patient/").split("/")[0]
    # the resource exists though only an OperationOutcome came back
    assert http.get(f"/Patient/{rid}").status_code == 200


# ----------------------------------------------------------- conditional read


def test_if_none_match_with_the_current_version_is_304(http, uid):
    rid = created(http, patient(uid))["id"]
    r = http.get(f"/Patient/{rid}", headers={"If-None-Match": 'W/"1"'})
    assert r.status_code == 304, r.text
    assert r.content == b""
    assert r.headers["etag"] == 'W/"1"'
    # an older ETag gets the full resource
    assert put(http, {**patient(uid, active=True), "id": rid}).status_code == 200
    r = http.get(f"/Patient/{rid}", headers={"If-None-Match": 'W/"1"'})
    assert r.status_code == 200
    assert r.headers["etag"] == 'W/"2"'
    assert r.json()["active"] is True
    assert http.get(f"/Patient/{rid}", headers={"If-None-Match": 'W/"2"'}).status_code == 304


# ---------------------------------------------------------------------- patch


def test_json_patch_updates_and_versions(http, base, uid):
    rid = created(http, patient(uid, active=True))["id"]
    ops = [
        {"op": "test", "path": "/active", "value": True},
        {"op": "replace", "path": "/active", "value": False},
        {"op": "add", "path": "/gender", "value": "female"},
    ]
    r = json_patch(http, f"/Patient/{rid}", ops)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["active"] is False
    assert body["gender"] == "female"
    assert body["meta"]["versionId"] == "2"
    assert r.headers["etag"] == 'W/"2"'
    assert r.headers["location"] == f"{base}/Patient/{rid}/_history/2"
    assert http.get(f"/Patient/{rid}").json()["gender"] == "female"
    entries = http.get(f"/Patient/{rid}/_history").json()["entry"]
    assert entries[0]["request"]["method"] == "PATCH"


def test_json_patch_failing_test_op_is_422_and_changes_nothing(http, uid):
    rid = created(http, patient(uid, active=True))["id"]
    ops = [{"op": "test", "path": "/active", "value": False}, {"op": "replace", "path": "/active", "value": False}]
    assert_outcome(json_patch(http, f"/Patient/{rid}", ops), 422)
    current = http.get(f"/Patient/{rid}")
    assert current.headers["etag"] == 'W/"1"'
    assert current.json()["active"] is True


def test_json_patch_that_changes_the_id_is_422(http, uid):
    rid = created(http, patient(uid))["id"]
    assert_outcome(json_patch(http, f"/Patient/{rid}", [{"op": "replace", "path": "/id", "value": f"x{uid}"}]), 422)
    assert http.get(f"/Patient/{rid}").headers["etag"] == 'W/"1"'
    assert http.get(f"/Patient/x{uid}").status_code == 404


def test_json_patch_that_changes_resource_type_is_rejected(http, uid):
    rid = created(http, patient(uid))["id"]
    r = json_patch(http, f"/Patient/{rid}", [{"op": "replace", "path": "/resourceType", "value": "Group"}])
    assert r.status_code in (400, 422), r.text
    assert http.get(f"/Patient/{rid}").headers["etag"] == 'W/"1"'


def test_json_patch_producing_an_invalid_resource_is_400(http, uid):
    rid = created(http, patient(uid))["id"]
    body = assert_outcome(
        json_patch(http, f"/Patient/{rid}", [{"op": "add", "path": "/birthDate", "value": "2020-13-01"}]), 400
    )
    assert "Patient.birthDate" in body["issue"][0].get("expression", []), body
    body = assert_outcome(json_patch(http, f"/Patient/{rid}", [{"op": "add", "path": "/gender", "value": "bogus"}]), 400)
    assert body["issue"][0]["code"] == "code-invalid"
    assert_outcome(json_patch(http, f"/Patient/{rid}", [{"op": "add", "path": "/foo", "value": 1}]), 400)
    assert http.get(f"/Patient/{rid}").headers["etag"] == 'W/"1"'


@pytest.mark.parametrize("content_type", ["application/fhir+json", "application/json", "application/xml"])
def test_patch_with_the_wrong_content_type_is_415(http, uid, content_type):
    rid = created(http, patient(uid, active=True))["id"]
    r = json_patch(http, f"/Patient/{rid}", [{"op": "replace", "path": "/active", "value": False}], content_type)
    assert_outcome(r, 415)
    assert http.get(f"/Patient/{rid}").json()["active"] is True


def test_patch_document_that_is_not_an_array_or_malformed_is_400(http, uid):
    rid = created(http, patient(uid))["id"]
    assert_outcome(json_patch(http, f"/Patient/{rid}", {"op": "remove", "path": "/active"}), 400)
    r = http.patch(f"/Patient/{rid}", content=b"[{", headers={"Content-Type": PATCH_JSON})
    assert_outcome(r, 400)


def test_patch_of_a_missing_path_is_422(http, uid):
    rid = created(http, patient(uid))["id"]
    assert_outcome(json_patch(http, f"/Patient/{rid}", [{"op": "remove", "path": "/name"}]), 422)


def test_patch_of_unknown_or_deleted_resource(http, uid):
    ops = [{"op": "add", "path": "/active", "value": True}]
    assert_outcome(json_patch(http, f"/Patient/nope-{uid}", ops), 404)
    rid = created(http, patient(uid))["id"]
    assert http.delete(f"/Patient/{rid}").status_code == 204
    assert_outcome(json_patch(http, f"/Patient/{rid}", ops), 410, "deleted")
