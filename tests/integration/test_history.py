"""history at instance, type and system level (R4 http.html#history)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from fhir_server.conformance import ig_directory
from fhir_server.engine.guide import guide_content

FHIR_JSON = "application/fhir+json"
SYS = "urn:evi:test:history"


def patient(uid: str, **extra) -> dict:
    return {"resourceType": "Patient", "identifier": [{"system": SYS, "value": uid}], **extra}


def create(http, resource: dict) -> dict:
    r = http.post(f"/{resource['resourceType']}", json=resource, headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 201, r.text
    return r.json()


def update(http, resource: dict) -> dict:
    r = http.put(f"/{resource['resourceType']}/{resource['id']}", json=resource, headers={"Content-Type": FHIR_JSON})
    assert r.status_code in (200, 201), r.text
    return r.json()


def link(bundle: dict, relation: str) -> str | None:
    return next((l["url"] for l in bundle.get("link", []) if l["relation"] == relation), None)


def assert_outcome(r, status: int) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["resourceType"] == "OperationOutcome", body
    assert body["issue"][0]["severity"] in ("error", "fatal")
    return body


def versions_of(bundle: dict) -> list[str]:
    return [e["response"]["etag"] for e in bundle.get("entry", [])]


# ------------------------------------------------------------------- instance


def test_instance_history_newest_first_with_request_and_response(http, base, uid):
    rid = create(http, patient(uid, gender="male"))["id"]
    update(http, {**patient(uid, gender="female"), "id": rid})
    r = http.patch(
        f"/Patient/{rid}",
        json=[{"op": "add", "path": "/active", "value": True}],
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert r.status_code == 200, r.text
    assert http.delete(f"/Patient/{rid}").status_code == 204

    r = http.get(f"/Patient/{rid}/_history")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(FHIR_JSON)
    bundle = r.json()
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "history"
    assert bundle["total"] == 4
    assert link(bundle, "self").startswith(f"{base}/Patient/{rid}/_history")
    entries = bundle["entry"]
    assert [e["response"]["etag"] for e in entries] == ['W/"4"', 'W/"3"', 'W/"2"', 'W/"1"']
    assert [e["request"]["method"] for e in entries] == ["DELETE", "PATCH", "PUT", "POST"]
    assert [e["response"]["status"].split()[0] for e in entries] == ["204", "200", "200", "201"]
    deletion, patched, updated, first = entries
    assert "resource" not in deletion
    assert deletion["request"]["url"] == f"Patient/{rid}"
    assert deletion["fullUrl"] == f"{base}/Patient/{rid}"
    assert patched["resource"]["active"] is True
    assert patched["resource"]["meta"]["versionId"] == "3"
    assert updated["resource"]["gender"] == "female"
    assert updated["request"]["url"] == f"Patient/{rid}"
    assert first["resource"]["gender"] == "male"
    assert first["request"]["url"] == "Patient"
    assert first["fullUrl"] == f"{base}/Patient/{rid}"
    # lastModified of each entry is its meta.lastUpdated, strictly decreasing
    modified = [e["response"]["lastModified"] for e in entries]
    assert modified == sorted(modified, reverse=True) and len(set(modified)) == 4
    assert patched["response"]["lastModified"] == patched["resource"]["meta"]["lastUpdated"]


def test_history_of_unknown_id_is_404(http, uid):
    assert_outcome(http.get(f"/Patient/nope-{uid}/_history"), 404)


def test_history_of_unknown_type_is_404(http, uid):
    assert_outcome(http.get(f"/NoSuchType/{uid}/_history"), 404)
    assert_outcome(http.get("/NoSuchType/_history"), 404)


def test_history_count_pages_through_every_version_exactly_once(http, uid):
    rid = create(http, patient(uid, birthDate="2010-01-01"))["id"]
    for year in range(2011, 2017):
        update(http, {**patient(uid, birthDate=f"{year}-01-01"), "id": rid})
    # seven versions; pages of three, with new versions written between fetches
    first = http.get(f"/Patient/{rid}/_history", params={"_count": "3"})
    assert first.status_code == 200, first.text
    page = first.json()
    assert page["total"] == 7
    seen = versions_of(page)
    assert seen == ['W/"7"', 'W/"6"', 'W/"5"']
    written = 0
    while (next_url := link(page, "next")) is not None:
        # a write between page fetches must not shift what the next page holds
        update(http, {**patient(uid, birthDate=f"{2020 + written}-01-01"), "id": rid})
        written += 1
        r = http.get(next_url)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page.get("entry", [])) <= 3
        seen += versions_of(page)
        assert written < 10, "paging does not end"
    assert seen == [f'W/"{v}"' for v in range(7, 0, -1)]
    assert written == 2
    # the first page, fetched again, shows the new versions
    again = http.get(f"/Patient/{rid}/_history", params={"_count": "3"}).json()
    assert again["total"] == 9
    assert versions_of(again) == ['W/"9"', 'W/"8"', 'W/"7"']


def test_history_next_link_keeps_count_and_since(http, uid):
    rid = create(http, patient(uid))["id"]
    for _ in range(3):
        update(http, {**patient(uid, active=True), "id": rid})
    since = "2000-01-01T00:00:00Z"
    page = http.get(f"/Patient/{rid}/_history", params={"_count": "2", "_since": since}).json()
    nxt = link(page, "next")
    assert nxt is not None
    query = parse_qs(urlsplit(nxt).query)
    assert query["_count"] == ["2"]
    assert query["_since"] == [since]


def test_history_count_zero_or_one(http, uid):
    rid = create(http, patient(uid))["id"]
    update(http, {**patient(uid, active=True), "id": rid})
    one = http.get(f"/Patient/{rid}/_history", params={"_count": "1"}).json()
    assert versions_of(one) == ['W/"2"']
    assert one["total"] == 2
    zero = http.get(f"/Patient/{rid}/_history", params={"_count": "0"})
    assert zero.status_code == 200
    assert zero.json()["total"] == 2
    assert zero.json().get("entry", []) == []


def test_history_since_excludes_older_versions(http, uid):
    rid = create(http, patient(uid))["id"]
    v2 = update(http, {**patient(uid, active=True), "id": rid})
    update(http, {**patient(uid, active=False), "id": rid})
    since = v2["meta"]["lastUpdated"]
    r = http.get(f"/Patient/{rid}/_history", params={"_since": since})
    assert r.status_code == 200, r.text
    bundle = r.json()
    assert versions_of(bundle) == ['W/"3"', 'W/"2"']
    assert bundle["total"] == 2
    future = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    empty = http.get(f"/Patient/{rid}/_history", params={"_since": future}).json()
    assert empty["total"] == 0
    assert empty.get("entry", []) == []


def test_history_since_with_offset(http, uid):
    rid = create(http, patient(uid))["id"]
    v1_time = http.get(f"/Patient/{rid}").json()["meta"]["lastUpdated"]
    moment = datetime.fromisoformat(v1_time.replace("Z", "+00:00")).astimezone(timezone(timedelta(hours=2)))
    since = moment.isoformat(timespec="microseconds")  # +02:00 offset, same instant
    bundle = http.get(f"/Patient/{rid}/_history", params={"_since": since}).json()
    assert bundle["total"] == 1


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_history_at_an_instant_holds_the_version_current_then(http, uid):
    """_at: versions "current at some point during the time period" (R4 http.html#history)."""
    rid = create(http, patient(uid, gender="male"))["id"]
    time.sleep(0.01)
    v2 = update(http, {**patient(uid, gender="female"), "id": rid})
    time.sleep(0.01)
    v3 = update(http, {**patient(uid, gender="other"), "id": rid})
    t2, t3 = _instant(v2["meta"]["lastUpdated"]), _instant(v3["meta"]["lastUpdated"])
    between = (t2 + (t3 - t2) / 2).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    r = http.get(f"/Patient/{rid}/_history", params={"_at": between})
    assert r.status_code == 200, r.text
    # only version 2 was current at that instant; version 1 had been replaced already
    assert versions_of(r.json()) == ['W/"2"']


def test_history_at_a_day_holds_every_version_current_that_day(http, uid):
    rid = create(http, patient(uid, gender="male"))["id"]
    v2 = update(http, {**patient(uid, gender="female"), "id": rid})
    day = v2["meta"]["lastUpdated"][:10]
    r = http.get(f"/Patient/{rid}/_history", params={"_at": day})
    assert r.status_code == 200, r.text
    assert versions_of(r.json()) == ['W/"2"', 'W/"1"']
    assert_outcome(http.get(f"/Patient/{rid}/_history", params={"_at": "not-a-date"}), 400)


@pytest.mark.parametrize("value", ["yesterday", "2024-13-01T00:00:00Z", "2024-01-01", ""])
def test_bad_since_is_400(http, uid, value):
    rid = create(http, patient(uid))["id"]
    assert_outcome(http.get(f"/Patient/{rid}/_history", params={"_since": value}), 400)
    assert_outcome(http.get("/Patient/_history", params={"_since": value}), 400)


@pytest.mark.parametrize("value", ["-1", "ten", "1.5"])
def test_bad_count_on_history_is_400(http, uid, value):
    rid = create(http, patient(uid))["id"]
    assert_outcome(http.get(f"/Patient/{rid}/_history", params={"_count": value}), 400)


def test_unknown_history_parameter_is_400(http, uid):
    rid = create(http, patient(uid))["id"]
    assert_outcome(http.get(f"/Patient/{rid}/_history", params={"gender": "male"}), 400)
    assert_outcome(http.get("/Patient/_history", params={"_sort": "_lastUpdated"}), 400)
    assert_outcome(http.get("/_history", params={"nonsense": "1"}), 400)


def test_forged_history_cursor_is_400(http, uid):
    rid = create(http, patient(uid))["id"]
    assert_outcome(http.get(f"/Patient/{rid}/_history", params={"_cursor": "abc"}), 400)


# ----------------------------------------------------------------------- type


def test_type_history_holds_only_that_type_newest_first(http, base, uid):
    start = create(http, patient(uid))["meta"]["lastUpdated"]
    p = create(http, patient(uid))
    org = create(http, {"resourceType": "Organization", "name": f"org {uid}"})
    update(http, {**patient(uid, active=True), "id": p["id"]})
    r = http.get("/Patient/_history", params={"_since": start})
    assert r.status_code == 200, r.text
    bundle = r.json()
    assert bundle["type"] == "history"
    entries = bundle["entry"]
    assert all(e["fullUrl"].startswith(f"{base}/Patient/") for e in entries)
    assert org["id"] not in {e["fullUrl"].rsplit("/", 1)[1] for e in entries}
    mine = [e for e in entries if e.get("resource", {}).get("identifier", [{}])[0].get("value") == uid]
    assert len(mine) >= 3
    stamps = [e["response"]["lastModified"] for e in entries]
    assert stamps == sorted(stamps, reverse=True)
    assert mine[0]["resource"]["id"] == p["id"] and mine[0]["response"]["etag"] == 'W/"2"'
    org_history = http.get("/Organization/_history", params={"_since": start}).json()
    assert org["id"] in {e["resource"]["id"] for e in org_history["entry"]}


# --------------------------------------------------------------------- system


def test_system_history_on_a_fresh_server(fresh_server):
    with httpx.Client(base_url=fresh_server.base_url, timeout=30) as http:
        # a fresh server holds only the implementation guide, stored at start-up (engine/guide.py)
        guide = guide_content(ig_directory()).resources
        fresh = http.get("/_history")
        assert fresh.status_code == 200, fresh.text
        assert fresh.json()["total"] == len(guide)
        guide_types = {r["resourceType"] for r in guide}
        assert all(e["resource"]["resourceType"] in guide_types for e in fresh.json()["entry"])

        p = create(http, patient("sys-1"))
        since = {"_since": p["meta"]["lastUpdated"]}  # this test's writes, not the guide's
        o = create(http, {"resourceType": "Organization", "name": "EVI"})
        update(http, {**patient("sys-1", active=True), "id": p["id"]})
        assert http.delete(f"/Organization/{o['id']}").status_code == 204
        create(http, {"resourceType": "Patient", "active": False})

        bundle = http.get("/_history", params=since).json()
        assert bundle["type"] == "history"
        assert bundle["total"] == 5
        entries = bundle["entry"]
        assert len(entries) == 5
        assert [(e["request"]["method"], e["fullUrl"].split("/fhir/")[1].split("/")[0]) for e in entries] == [
            ("POST", "Patient"),
            ("DELETE", "Organization"),
            ("PUT", "Patient"),
            ("POST", "Organization"),
            ("POST", "Patient"),
        ]
        assert http.get("/Patient/_history").json()["total"] == 3
        assert http.get("/Organization/_history").json()["total"] == 2

        # paging the system history: every version exactly once, though writes happen between pages
        seen, url, params, pages = [], "/_history", {"_count": "2", **since}, 0
        while url:
            page = http.get(url, params=params).json()
            params = None  # the next link carries them
            assert page["total"] == 5 + pages
            seen += [(e["fullUrl"], e["response"]["etag"]) for e in page.get("entry", [])]
            url = link(page, "next")
            create(http, {"resourceType": "Organization", "name": f"between pages {pages}"})
            pages += 1
        assert pages == 3
        assert seen == [(e["fullUrl"], e["response"]["etag"]) for e in entries]
        assert http.get("/_history", params=since).json()["total"] == 8
