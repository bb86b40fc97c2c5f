"""Hostile input over HTTP: each case is a 4xx OperationOutcome and nothing is stored
(issue 11; each row was a 500 or a stored invalid resource before)."""

from __future__ import annotations

import httpx
import orjson
import pytest

from fhir_server.errors import BadRequest
from fhir_server.model import MAX_JSON_DEPTH, MAX_RESOURCE_DEPTH, check_json_depth
from fhir_server.search import SearchLimits
from fhir_server.settings import Settings
from tests.integration.test_errors import FHIR_JSON, assert_outcome, count, patient, post, post_raw
from tests.support.live_server import LiveServer


def nested_extensions(levels: int, uid: str) -> bytes:
    """A Patient with ``levels`` extensions inside each other (2 JSON levels each)."""
    head = patient(uid)
    body = orjson.dumps(head)[:-1] + b',"extension":['
    leaf = b'{"url":"http://y","valueString":"v"}'
    return body + b'{"url":"http://x","extension":[' * levels + leaf + b"]}" * levels + b"]}"


@pytest.fixture
def pid(http, uid) -> str:
    r = post(http, patient(uid, birthDate="2012-05-01", name=[{"family": f"F{uid}"}]))
    assert r.status_code == 201, r.text
    return r.json()["id"]


# ------------------------------------------------------------------ URLs


@pytest.mark.parametrize("version", ["99999999999999999999", "9223372036854775808", "²", "١"])
def test_vread_of_an_impossible_version_is_404(http, pid, version):
    assert_outcome(http.get(f"/Patient/{pid}/_history/{version}"), 404)


@pytest.mark.parametrize(
    "query",
    [
        "_offset=9223372036854775808",
        "_offset=1000001",
        "_offset=-1",
        "_count=" + "9" * 40,
        "birthdate=2020-01-01T00:00:00%2B99:00",
        "birthdate=ge2020-01-01T00:00:00%2B14:01",
        "_lastUpdated=2020-01-01T00:00:00-24:00",
        "_id:text=x",
        "_id:of-type=a|b|c",
        "_lastUpdated:not=2020",
        "name=" + ",".join(f"n{i}" for i in range(101)),
        "_sort=" + ",".join(["_id"] * 101),
        "&".join(f"name=n{i}" for i in range(31)),
    ],
)
def test_hostile_searches_are_400(http, query):
    assert_outcome(http.get(f"/Patient?{query}"), 400)


def test_everything_up_to_the_search_limits_works(http, pid, uid):
    names = ",".join([f"F{uid}", *(f"n{i}" for i in range(99))])
    r = http.get("/Patient", params={"name": names})
    assert r.status_code == 200 and [e["resource"]["id"] for e in r.json()["entry"]] == [pid]
    params = [("name", f"F{uid}")] * 29 + [("_offset", "0")]
    r = http.get("/Patient", params=params)
    assert r.status_code == 200 and r.json()["total"] == 1
    assert http.get("/Patient", params={"_offset": "1000000", "name": f"F{uid}"}).status_code == 200


def test_getpagesoffset_is_bounded(http):
    page = http.get("/Patient", params={"_count": "1"}).json()
    next_url = next(link["url"] for link in page["link"] if link["relation"] == "next")
    assert http.get(next_url).status_code == 200
    huge = httpx.URL(next_url).copy_set_param("_getpagesoffset", "99999999999999999999")
    assert_outcome(http.get(str(huge)), 400)


@pytest.mark.parametrize(
    "query",
    ["_at=2020-01-01T00:00:00%2B99:00", "_since=2020-01-01T00:00:00%2B15:00", "_cursor=99999999999999999999",
     "_count=²", "_cursor=١"],
)
def test_hostile_history_parameters_are_400(http, pid, query):
    assert_outcome(http.get(f"/Patient/{pid}/_history?{query}"), 400)
    assert_outcome(http.get(f"/_history?{query}"), 400)


# ------------------------------------------------------------------ bodies


@pytest.mark.parametrize("levels", [31, 119, 510])
def test_deep_bodies_are_400_and_not_stored(http, uid, levels):
    assert_outcome(post_raw(http, "/Patient", nested_extensions(levels, uid)), 400)
    assert_outcome(post_raw(http, "/Patient/$validate", nested_extensions(levels, uid)), 400)
    assert count(http, uid) == 0


def test_deep_unknown_elements_are_400(http, uid):
    body = orjson.dumps(patient(uid))[:-1] + b',"foo":' + b'{"u":' * 1000 + b"1" + b"}" * 1001
    assert_outcome(post_raw(http, "/Patient", body), 400)
    assert count(http, uid) == 0


def test_a_body_at_the_depth_limit_is_stored(http, uid):
    body = nested_extensions((MAX_JSON_DEPTH - 3) // 2, uid)  # depth 63
    assert post_raw(http, "/Patient", body).status_code == 201
    assert count(http, uid) == 1


def test_a_deep_transaction_and_patch_are_400(http, uid, pid):
    inner = orjson.loads(nested_extensions(20, uid))
    entry = {"request": {"method": "POST", "url": "Patient"}, "resource": inner}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}
    assert post(http, bundle, "/").status_code == 200  # 20 levels fit inside a Bundle
    deep = orjson.loads(nested_extensions(40, uid))
    assert_outcome(post(http, {**bundle, "entry": [{**entry, "resource": deep}]}, "/"), 400)
    op = [{"op": "add", "path": "/extension", "value": deep["extension"]}]
    r = http.patch(f"/Patient/{pid}", content=orjson.dumps(op), headers={"Content-Type": "application/json-patch+json"})
    assert_outcome(r, 400)


def test_patches_cannot_grow_a_resource_past_the_body_limit(http, pid):
    """Each patch body is shallow, but each adds depth to the stored resource: the result
    is held to EVI_MAX_JSON_DEPTH (64 here), as a PUT of it would be."""
    headers = {"Content-Type": "application/json-patch+json"}
    chunk = {"url": "http://x", "valueString": "v"}
    for _ in range(12):
        chunk = {"url": "http://x", "extension": [chunk]}
    # each round appends a chunk (24 levels) to the innermost extension list of the last one
    add, statuses = "/extension", []
    while not statuses or statuses[-1] == 200:
        value = [chunk] if add == "/extension" else chunk
        r = http.patch(f"/Patient/{pid}", content=orjson.dumps([{"op": "add", "path": add, "value": value}]),
                       headers=headers)
        statuses.append(r.status_code)
        innermost = ("/extension/0" if add == "/extension" else add[: -len("/-")] + "/1") + "/extension/0" * 11
        add = innermost + "/extension/-"
    assert statuses == [200, 200, 400], statuses  # 27 and 51 levels fit, 75 do not
    assert "nested deeper than 64 levels" in assert_outcome(r, 400)["issue"][0]["diagnostics"]
    stored = http.get(f"/Patient/{pid}").json()
    check_json_depth(stored, MAX_JSON_DEPTH)  # what a client could PUT
    with pytest.raises(BadRequest):
        check_json_depth(stored, 50)


@pytest.mark.parametrize(
    "resource",
    [
        {"resourceType": "Observation", "status": "final", "code": '{"text":"x"}'},
        {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": '{"reference":"Patient/1"}'},
        {"resourceType": "Patient", "identifier": ["{}"]},
        {"resourceType": "Patient", "name": [{"family": "a\u0000b"}]},
        {"resourceType": "Patient", "name": [{"given": ["\u001b[31mred"]}]},
        {"resourceType": "Patient", "text": {"status": "generated",
                                             "div": '<div xmlns="http://www.w3.org/1999/xhtml">a\u0001</div>'}},
    ],
)
def test_structure_errors_are_400_on_write_and_errors_in_validate(http, uid, resource):
    tagged = {**resource, "identifier": resource.get("identifier", [{"system": "urn:evi:test:errors", "value": uid}])}
    rt = resource["resourceType"]
    r = assert_outcome(post(http, tagged), 400, "structure")
    assert r["issue"][0]["expression"]
    outcome = post(http, tagged, f"/{rt}/$validate").json()
    assert [i for i in outcome["issue"] if i["severity"] == "error"], outcome
    assert http.get(f"/{rt}", params={"identifier": f"urn:evi:test:errors|{uid}"}).json()["total"] == 0


@pytest.mark.parametrize(
    "parameters",
    [
        ["resource"],
        "resource",
        [{"name": "mode", "valueCode": ["create"]}],
        [{"name": "profile", "valueUri": {"x": 1}}],
    ],
)
def test_validate_with_malformed_parameters_is_400(http, parameters):
    body = {"resourceType": "Parameters", "parameter": parameters}
    assert_outcome(post(http, body, "/Patient/$validate"), 400)


@pytest.mark.parametrize("body", [b"1", b"null", b'"x"', b"true"])
def test_a_json_patch_that_is_not_an_array_is_400(http, pid, body):
    r = http.patch(f"/Patient/{pid}", content=body, headers={"Content-Type": "application/json-patch+json"})
    assert_outcome(r, 400)


@pytest.mark.parametrize("count", ["%C2%B2", "%D9%A3", "9" * 5000])
def test_operation_integers_are_ascii_digits(http, count):
    url = f"/ValueSet/$expand?url=http://hl7.org/fhir/ValueSet/administrative-gender&count={count}"
    assert_outcome(http.get(url), 400)


# ------------------------------------------------------------------ settings


def test_the_limits_are_settings():
    with LiveServer(storage="sqlite://:memory:", max_json_depth=16, max_or_values=2, max_search_parameters=3,
                    max_search_offset=5) as live:
        with httpx.Client(base_url=live.base_url, headers={"Content-Type": FHIR_JSON}) as client:
            assert_outcome(client.post("/Patient", content=nested_extensions(7, "a")), 400)
            assert client.post("/Patient", content=nested_extensions(6, "a")).status_code == 201
            assert_outcome(client.get("/Patient?name=a,b,c"), 400)
            assert client.get("/Patient?name=a,b").status_code == 200
            assert_outcome(client.get("/Patient?name=a&name=b&name=c&name=d"), 400)
            assert_outcome(client.get("/Patient?_offset=6"), 400)
            assert client.get("/Patient?_offset=5").status_code == 200


def test_default_settings_match_the_defaults_below_them():
    settings = Settings()
    assert settings.max_json_depth == MAX_JSON_DEPTH
    assert Settings.model_fields["max_json_depth"].metadata[-1].le == MAX_RESOURCE_DEPTH
    assert (settings.max_or_values, settings.max_search_parameters, settings.max_search_offset) == (
        SearchLimits().max_or_values, SearchLimits().max_parameters, SearchLimits().max_offset)


@pytest.mark.parametrize("rid", [0, False, ["x"]])
def test_conditional_update_with_a_body_id_of_the_wrong_kind_is_refused(http, uid, rid):
    body = patient(uid, id=rid)
    r = http.put(f"/Patient?identifier=urn:evi:test:errors|{uid}", content=orjson.dumps(body),
                 headers={"Content-Type": FHIR_JSON})
    assert 400 <= r.status_code < 500  # was a 500 (the id checked as a string before validation)
    assert_outcome(r, r.status_code)
    assert count(http, uid) == 0


def test_the_write_path_and_validate_agree_on_odd_unicode_in_a_uri(http, uid):
    """A no-break space is \\S for the spec's regexes (read as the Java validator reads them):
    the write stores it and $validate, run on what was stored, finds nothing wrong."""
    body = patient(uid, extension=[{"url": "http://x.example/\u00a0a", "valueString": "v"}])
    r = post(http, body)
    assert r.status_code == 201, r.text
    stored = http.get(r.headers["location"]).content
    outcome = http.post("/Patient/$validate", content=stored, headers={"Content-Type": FHIR_JSON}).json()
    assert not [i for i in outcome["issue"] if i["severity"] == "error"], outcome


def test_instants_at_the_ends_of_the_calendar_are_stored_and_found(http, uid):
    """0001-01-01T00:00+01:00 is before year 1 in UTC: its index range is clamped, not a 500."""
    ident = [{"system": "urn:evi:test:errors", "value": uid}]
    for when in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "identifier": ident,
               "effectiveDateTime": when}
        assert post(http, obs).status_code == 201
    found = http.get("/Observation", params={"identifier": f"urn:evi:test:errors|{uid}", "date": "lt0002"}).json()
    assert found["total"] == 1
    found = http.get("/Observation", params={"identifier": f"urn:evi:test:errors|{uid}", "date": "gt9998"}).json()
    assert found["total"] == 1
