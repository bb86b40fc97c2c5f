"""Failure paths: every client error is an OperationOutcome with the right status."""

from __future__ import annotations

import httpx
import orjson
import pytest

from tests.support.live_server import LiveServer

FHIR_JSON = "application/fhir+json"
SYS = "urn:evi:test:errors"


def patient(uid: str, **extra) -> dict:
    return {"resourceType": "Patient", "identifier": [{"system": SYS, "value": uid}], **extra}


def post_raw(http, path: str, content: bytes, content_type: str = FHIR_JSON, **headers):
    return http.post(path, content=content, headers={"Content-Type": content_type, **headers})


def post(http, resource: dict, path: str | None = None, **headers):
    return post_raw(http, path or f"/{resource.get('resourceType')}", orjson.dumps(resource), **headers)


def count(http, uid: str) -> int:
    return http.get("/Patient", params={"identifier": f"{SYS}|{uid}"}).json()["total"]


def assert_outcome(r, status: int, code: str | None = None, expression: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(FHIR_JSON), r.headers
    body = r.json()
    assert body["resourceType"] == "OperationOutcome", body
    assert body["issue"], body
    first = body["issue"][0]
    assert first["severity"] in ("error", "fatal"), body
    assert first.get("diagnostics"), body
    if code is not None:
        assert first["code"] == code, body
    if expression is not None:
        assert expression in first.get("expression", []), body
    return body


# ------------------------------------------------------------------ JSON body


def test_malformed_json_is_400(http, uid):
    assert_outcome(post_raw(http, "/Patient", b'{"resourceType": "Patient", "active": tru'), 400)
    assert_outcome(post_raw(http, "/Patient", b'{"resourceType": "Patient",}'), 400)
    assert_outcome(post_raw(http, "/Patient", b"\xff\xfe not json"), 400)


def test_empty_body_is_400(http):
    assert_outcome(post_raw(http, "/Patient", b""), 400)
    assert_outcome(http.put("/Patient/x1", content=b"", headers={"Content-Type": FHIR_JSON}), 400)


@pytest.mark.parametrize("body", [b"[]", b'[{"resourceType": "Patient"}]', b'"Patient"', b"42", b"null"])
def test_json_that_is_not_an_object_is_400(http, body):
    assert_outcome(post_raw(http, "/Patient", body), 400)


def test_unknown_element_is_400_naming_it(http, uid):
    assert_outcome(post(http, patient(uid, foo="bar")), 400, expression="Patient.foo")
    nested = patient(uid, name=[{"family": "X", "nickname": "Y"}])
    body = assert_outcome(post(http, nested), 400)
    assert any("Patient.name[0].nickname" in i.get("expression", []) for i in body["issue"]), body
    assert count(http, uid) == 0


def test_boolean_given_as_string(http, uid):
    """FHIR JSON booleans are JSON true/false; "yes" must not be accepted (R4 json.html#primitive)."""
    r = post(http, patient(uid, active="yes"))
    assert_outcome(r, 400, expression="Patient.active")
    assert count(http, uid) == 0


def test_boolean_given_as_the_string_true_is_400(http, uid):
    """pydantic's lax mode turns "true" into True; FHIR JSON does not allow the string form."""
    r = post(http, patient(uid, active="true"))
    assert_outcome(r, 400, expression="Patient.active")
    assert count(http, uid) == 0


def test_integer_given_as_string_is_400(http, uid):
    r = post(http, patient(uid, multipleBirthInteger="2"))
    assert_outcome(r, 400, expression="Patient.multipleBirthInteger")
    assert count(http, uid) == 0


def test_string_given_as_number_is_400(http, uid):
    r = post(http, patient(uid, name=[{"family": 42}]))
    body = assert_outcome(r, 400)
    assert any("Patient.name[0].family" in i.get("expression", []) for i in body["issue"]), body
    assert count(http, uid) == 0


@pytest.mark.parametrize("value", ["2020-13-01", "2020-02-30", "01/02/2020", "2020-1-1"])
def test_invalid_date_is_400_naming_the_element(http, uid, value):
    assert_outcome(post(http, patient(uid, birthDate=value)), 400, expression="Patient.birthDate")
    assert count(http, uid) == 0


def test_missing_mandatory_element_is_400(http, uid):
    sr = {"resourceType": "ServiceRequest", "intent": "order", "subject": {"reference": "Patient/x"}}
    body = assert_outcome(post(http, sr), 400, expression="ServiceRequest.status")
    assert body["issue"][0]["code"] in ("required", "structure", "invalid")


def test_required_binding_violation_is_400_code_invalid(http, uid):
    sr = {
        "resourceType": "ServiceRequest",
        "status": "bogus",
        "intent": "order",
        "subject": {"reference": "Patient/x"},
    }
    assert_outcome(post(http, sr), 400, code="code-invalid", expression="ServiceRequest.status")
    assert_outcome(post(http, patient(uid, gender="unknownish")), 400, code="code-invalid", expression="Patient.gender")
    assert count(http, uid) == 0


@pytest.mark.parametrize(
    "extra, where",
    [
        ({"name": []}, "Patient.name"),
        ({"active": None}, "Patient.active"),
        ({"name": [{}]}, "Patient.name[0]"),
        ({"name": [{"given": [None]}]}, "Patient.name[0].given[0]"),
        ({"gender": ""}, "Patient.gender"),
    ],
)
def test_empty_arrays_nulls_and_empty_values_are_400(http, uid, extra, where):
    assert_outcome(post(http, patient(uid, **extra)), 400, expression=where)
    assert count(http, uid) == 0


def test_meta_given_as_a_json_string_is_400_and_nothing_is_stored(http, uid):
    """The server stamps versionId and lastUpdated into meta: a string there was a 500."""
    assert_outcome(post(http, patient(uid, meta="{}")), 400, expression="Patient.meta")
    rid = f"meta-{uid}"
    r = http.put(f"/Patient/{rid}", content=orjson.dumps({**patient(uid, meta="{}"), "id": rid}),
                 headers={"Content-Type": FHIR_JSON})
    assert_outcome(r, 400)
    tx = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": patient(uid, meta="{}"), "request": {"method": "POST", "url": "Patient"}}]}
    assert_outcome(post_raw(http, "", orjson.dumps(tx)), 400)
    assert count(http, uid) == 0
    assert http.get(f"/Patient/{rid}").status_code == 404


def test_resource_without_resource_type_is_400(http, uid):
    assert_outcome(post_raw(http, "/Patient", orjson.dumps({"identifier": [{"system": SYS, "value": uid}]})), 400)


def test_resource_type_not_matching_the_url_is_400(http, uid):
    r = post(http, {"resourceType": "Organization", "name": uid}, path="/Patient")
    assert_outcome(r, 400, expression="resourceType")
    r = http.put(
        f"/Patient/m-{uid}", json={"resourceType": "Organization", "id": f"m-{uid}"}, headers={"Content-Type": FHIR_JSON}
    )
    assert_outcome(r, 400)
    assert http.get(f"/Patient/m-{uid}").status_code == 404
    assert http.get(f"/Organization/m-{uid}").status_code == 404


def test_put_with_id_mismatch_is_400(http, uid):
    r = http.put(f"/Patient/a-{uid}", json={**patient(uid), "id": f"b-{uid}"}, headers={"Content-Type": FHIR_JSON})
    assert_outcome(r, 400, expression="Patient.id")
    assert http.get(f"/Patient/a-{uid}").status_code == 404
    assert http.get(f"/Patient/b-{uid}").status_code == 404


def test_put_without_id_in_body_is_400(http, uid):
    r = http.put(f"/Patient/a-{uid}", json=patient(uid), headers={"Content-Type": FHIR_JSON})
    assert_outcome(r, 400, expression="Patient.id")
    assert http.get(f"/Patient/a-{uid}").status_code == 404


def test_invalid_id_on_put_is_rejected(http, uid):
    bad = "has_underscore"
    r = http.put(f"/Patient/{bad}", json={**patient(uid), "id": bad}, headers={"Content-Type": FHIR_JSON})
    assert r.status_code in (400, 404), r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    assert count(http, uid) == 0


# ----------------------------------------------------------------- routing


def test_unknown_resource_type_is_404(http, uid):
    assert_outcome(http.get("/Frobnicator"), 404, code="not-found")
    assert_outcome(http.get(f"/Frobnicator/{uid}"), 404)
    r = post(http, {"resourceType": "Frobnicator"}, path="/Frobnicator")
    assert_outcome(r, 404)
    # a type R4 has but this server does not serve (no R4B model) is 404 too
    assert_outcome(http.get("/MedicinalProduct"), 404)


def test_lowercase_resource_type_is_404(http):
    assert_outcome(http.get("/patient"), 404)


def test_unknown_route_is_404(http):
    assert_outcome(http.get("/Patient/a/b/c/d"), 404)
    r = httpx.get(str(http.base_url).rstrip("/").removesuffix("/fhir") + "/nothing-here")
    assert_outcome(r, 404)


def test_post_on_an_instance_url_is_405(http, uid):
    r = post(http, patient(uid), path=f"/Patient/{uid}")
    assert_outcome(r, 405)
    assert count(http, uid) == 0


def test_delete_on_the_base_is_405(http):
    assert_outcome(http.delete(""), 405)


# ------------------------------------------------------- content negotiation


@pytest.mark.parametrize("content_type", ["application/fhir+xml", "application/xml", "text/xml"])
def test_xml_request_body_is_415(http, uid, content_type):
    xml = '<Patient xmlns="http://hl7.org/fhir"><active value="true"/></Patient>'.encode()
    assert_outcome(post_raw(http, "/Patient", xml, content_type), 415)


def test_unsupported_content_type_is_415(http, uid):
    assert_outcome(post_raw(http, "/Patient", orjson.dumps(patient(uid)), "text/plain"), 415)
    assert count(http, uid) == 0


def test_json_content_types_are_accepted(http, uid):
    for content_type in ("application/fhir+json", "application/json", "application/fhir+json; charset=utf-8"):
        r = post_raw(http, "/Patient", orjson.dumps(patient(uid)), content_type)
        assert r.status_code == 201, (content_type, r.text)
    assert count(http, uid) == 3


def test_accept_xml_is_406(http, uid):
    r = http.get("/metadata", headers={"Accept": "application/fhir+xml"})
    assert_outcome(r, 406)
    r = post(http, patient(uid), Accept="application/fhir+xml")
    assert_outcome(r, 406)
    assert count(http, uid) == 0


def test_format_xml_is_406(http, uid):
    assert_outcome(http.get("/metadata", params={"_format": "xml"}), 406)
    assert_outcome(http.get("/Patient", params={"_format": "application/fhir+xml"}), 406)
    # _format wins over Accept
    ok = http.get("/metadata", params={"_format": "json"}, headers={"Accept": "application/fhir+xml"})
    assert ok.status_code == 200


def test_accept_with_wildcards_and_quality_is_json(http):
    r = http.get("/metadata", headers={"Accept": "application/fhir+xml;q=0.9, */*;q=0.1"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(FHIR_JSON)


# ----------------------------------------------------------------- body size


def test_oversized_bodies_are_413_and_the_server_keeps_answering():
    with LiveServer(storage="sqlite://:memory:", max_body_size=2000) as live:
        big = orjson.dumps(patient("x" * 10, name=[{"family": "x" * 3000}]))
        assert len(big) > 2000
        with httpx.Client(base_url=live.base_url, timeout=10) as http:
            # with a Content-Length
            r = post_raw(http, "/Patient", big)
            assert_outcome(r, 413)

            # chunked: no Content-Length, the server must count as it reads
            def chunks():
                for start in range(0, len(big), 500):
                    yield big[start : start + 500]

            r = http.post("/Patient", content=chunks(), headers={"Content-Type": FHIR_JSON})
            assert "content-length" not in r.request.headers
            assert r.request.headers.get("transfer-encoding") == "chunked"
            assert_outcome(r, 413)

            # the same on PUT, PATCH and transaction
            r = http.put("/Patient/big", content=big, headers={"Content-Type": FHIR_JSON})
            assert_outcome(r, 413)
            r = http.post("", content=chunks(), headers={"Content-Type": FHIR_JSON})
            assert_outcome(r, 413)

            # nothing was stored and the server still answers, on a fresh connection too
            assert http.get("/Patient").json()["total"] == 0
            small = post(http, patient("small"))
            assert small.status_code == 201, small.text
        with httpx.Client(base_url=live.base_url, timeout=10) as http:
            assert http.get("/metadata").status_code == 200
            assert http.get("/Patient").json()["total"] == 1


def test_body_at_the_limit_is_accepted():
    with LiveServer(storage="sqlite://:memory:", max_body_size=2000) as live:
        body = orjson.dumps(patient("edge"))
        body = body[:-1] + b" " * (2000 - len(body)) + b"}"
        assert len(body) == 2000
        with httpx.Client(base_url=live.base_url, timeout=10) as http:
            r = post_raw(http, "/Patient", body)
            assert r.status_code == 201, r.text
            r = post_raw(http, "/Patient", body[:-1] + b" }")
            assert_outcome(r, 413)


# ------------------------------------------------------------------- search


def test_search_with_unknown_parameter_reports_it_in_the_bundle(http, uid):
    post(http, patient(uid))
    r = http.get("/Patient", params={"identifier": f"{SYS}|{uid}", "nonsense": "1"})
    assert r.status_code == 200, r.text
    bundle = r.json()
    assert bundle["type"] == "searchset"
    outcomes = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    matches = [e for e in bundle["entry"] if e["search"]["mode"] == "match"]
    assert len(matches) == 1
    assert len(outcomes) == 1
    issue = outcomes[0]["resource"]["issue"][0]
    assert outcomes[0]["resource"]["resourceType"] == "OperationOutcome"
    assert issue["severity"] == "warning"
    assert "nonsense" in issue.get("expression", []) or "nonsense" in issue["diagnostics"]
    # the self link does not claim the ignored parameter was applied
    self_link = next(l["url"] for l in bundle["link"] if l["relation"] == "self")
    assert "identifier=" in self_link


def test_search_with_unknown_parameter_and_strict_handling_is_400(http, uid):
    r = http.get("/Patient", params={"identifier": f"{SYS}|{uid}", "nonsense": "1"}, headers={"Prefer": "handling=strict"})
    body = assert_outcome(r, 400)
    assert any("nonsense" in i.get("expression", []) or "nonsense" in i["diagnostics"] for i in body["issue"])
    lenient = http.get("/Patient", params={"nonsense": "1"}, headers={"Prefer": "handling=lenient"})
    assert lenient.status_code == 200


@pytest.mark.parametrize("value", ["-1", "ten", "1.5", ""])
def test_invalid_count_is_400(http, value):
    assert_outcome(http.get("/Patient", params={"_count": value}), 400)


@pytest.mark.parametrize("params", [{"_offset": "-3"}, {"_total": "maybe"}, {"identifier:bogus": "x"}])
def test_invalid_search_controls_are_400(http, params):
    assert_outcome(http.get("/Patient", params=params), 400)


def test_invalid_last_updated_is_400(http):
    assert_outcome(http.get("/Patient", params={"_lastUpdated": "gt2024-13-45"}), 400)
    assert_outcome(http.get("/Patient", params={"_lastUpdated": "xx2024-01-01"}), 400)


def test_search_via_post_with_json_body_is_415(http, uid):
    r = http.post("/Patient/_search", content=b"{}", headers={"Content-Type": FHIR_JSON})
    assert_outcome(r, 415)
    ok = http.post(
        "/Patient/_search",
        content=f"identifier={SYS}|{uid}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["total"] == 0


# --------------------------------------------------------------------- misc


def test_contained_resource_of_unknown_type_is_400(http, uid):
    body = patient(uid, contained=[{"resourceType": "Nope", "id": "c1"}])
    assert_outcome(post(http, body), 400)
    assert count(http, uid) == 0


def test_integer_given_as_decimal_is_400(http, uid):
    assert_outcome(post(http, patient(uid, multipleBirthInteger=2.0)), 400, expression="Patient.multipleBirthInteger")


ODD_REQUESTS = [
    ("GET", "/Patient/_history/1", None),
    ("GET", "/Patient/abc/_history/-1", None),
    ("POST", "/Patient", b'{"resourceType": 1}'),
    ("POST", "/Patient", b'{"resourceType": "Patient", "id": 5}'),
    ("POST", "/Patient", b'{"resourceType": "Patient", "meta": {"versionId": 3}}'),
    ("POST", "/Patient", b'{"resourceType": "Patient", "contained": [{"resourceType": "Patient", "active": "x"}]}'),
    ("POST", "/Patient", b'{"resourceType": "Patient", "extension": [{"url": 5}]}'),
    ("POST", "/Patient", b'{"resourceType": "Patient", "_birthDate": 5}'),
    ("POST", "", b'{"resourceType": "Bundle", "type": "transaction", "entry": [{}]}'),
    ("POST", "", b'{"resourceType": "Bundle", "type": "transaction", "entry": "x"}'),
    ("POST", "", b'{"resourceType": "Bundle", "type": "transaction", "entry": [{"request": {"method": "POST", "url": "Patient"}, "resource": "x"}]}'),
    ("POST", "", b'{"resourceType": "Bundle", "type": "batch", "entry": [{"request": {"method": "GET", "url": "http://elsewhere.example/Patient"}}]}'),
    ("PATCH", "/Patient/x", b'[{"op": "frobnicate", "path": "/active"}]'),
]


@pytest.mark.parametrize("method, path, content", ODD_REQUESTS)
def test_odd_requests_get_a_4xx_outcome_never_a_500(server, method, path, content):
    content_type = "application/json-patch+json" if method == "PATCH" else FHIR_JSON
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        if method == "PATCH":  # a resource to patch
            http.put("/Patient/x", json={"resourceType": "Patient", "id": "x"}, headers={"Content-Type": FHIR_JSON})
        r = http.request(method, path, content=content, headers={"Content-Type": content_type})
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.json()["resourceType"] == "OperationOutcome", r.text


@pytest.mark.parametrize("resource", [
    {"resourceType": "SearchParameter", "url": "http://example.org/sp", "name": "x", "status": "active",
     "description": "x", "code": "xx", "base": [None, "Patient"], "_base": [{"id": "b"}, None], "type": "token",
     "expression": "Patient.gender"},
    {"resourceType": "ValueSet", "url": "http://example.org/vs", "status": "active",
     "compose": {"include": [{"system": "http://example.org/cs", "valueSet": [None], "_valueSet": [{"id": "v"}]}]}},
])
def test_null_placeholders_in_primitive_arrays_are_refused_with_400(http, resource):
    """FHIR JSON allows ``[null, "x"]`` with the extension in ``_name`` (json.html#primitive);
    this server refuses it (400), because parts of it read such arrays as strings: accepted,
    these two gave 500 (docs/input-limits.md)."""
    assert_outcome(post(http, resource), 400)
