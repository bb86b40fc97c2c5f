"""Headers every answer carries (issue 11): no sniffing, no caching of patient data, no
framing, no server banner; redirects of trailing slashes that ignore Host; CORS only
when configured; gzip for large answers."""

from __future__ import annotations

import gzip

import httpx

from tests.support.live_server import LiveServer

FHIR_JSON = {"Content-Type": "application/fhir+json"}


def test_security_headers_on_reads_writes_and_errors(server, http):
    created = http.post("/Patient", json={"resourceType": "Patient"}, headers=FHIR_JSON)
    answers = [created, http.get(f"/Patient/{created.json()['id']}"), http.get("/Patient/nope-x"),
               http.post("/Patient", content=b"{not json", headers=FHIR_JSON), http.get("/metadata")]
    for r in answers:
        assert r.headers["x-content-type-options"] == "nosniff", r.request.url
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert "server" not in r.headers


def test_a_trailing_slash_redirects_relative_to_the_path_whatever_the_host(server, http):
    r = http.get("/Patient/", params={"_count": "1"}, headers={"Host": "evil.example"}, follow_redirects=False)
    assert r.status_code == 307
    assert r.headers["location"] == "/fhir/Patient?_count=1"
    assert http.get("/Patient/", follow_redirects=True).json()["type"] == "searchset"
    # the base itself (system search / batch) keeps its slash; an unknown path stays 404
    assert http.get("/", params={"_count": "1"}).status_code == 200
    missing = http.get("/Nonsense/a/b/c/d/", follow_redirects=False)
    assert missing.status_code == 404 and missing.json()["resourceType"] == "OperationOutcome"


def test_cors_is_off_by_default(server, http):
    r = http.options("/Patient", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in r.headers


def test_cors_when_configured():
    with LiveServer(storage="sqlite://:memory:", cors_origins=["https://app.example"]) as live:
        with httpx.Client(base_url=live.base_url) as c:
            pre = c.options("/Patient", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "PUT",
                                                 "Access-Control-Request-Headers": "if-match, content-type"})
            assert pre.status_code == 200
            assert pre.headers["access-control-allow-origin"] == "https://app.example"
            assert "PUT" in pre.headers["access-control-allow-methods"]
            r = c.get("/Patient", headers={"Origin": "https://app.example"})
            assert r.headers["access-control-allow-origin"] == "https://app.example"
            assert "ETag" in r.headers["access-control-expose-headers"]
            other = c.get("/Patient", headers={"Origin": "https://evil.example"})
            assert "access-control-allow-origin" not in other.headers


def test_large_answers_are_gzipped_when_the_client_accepts_it(server, http):
    raw = httpx.get(f"{server.base_url}/metadata", headers={"Accept-Encoding": "gzip"})
    assert raw.headers["content-encoding"] == "gzip"
    assert raw.json()["resourceType"] == "CapabilityStatement"  # httpx decompressed it
    plain = httpx.get(f"{server.base_url}/metadata", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert len(raw.content) == len(plain.content)
    with httpx.Client() as c:  # what travels: far smaller than the statement
        wire = c.send(c.build_request("GET", f"{server.base_url}/metadata", headers={"Accept-Encoding": "gzip"}),
                      stream=True)
        compressed = b"".join(wire.iter_raw())
        assert len(compressed) * 5 < len(plain.content)
        assert gzip.decompress(compressed) == plain.content
    search = httpx.get(f"{server.base_url}/StructureDefinition", params={"_count": "50"},
                       headers={"Accept-Encoding": "gzip"})
    assert search.headers.get("content-encoding") == "gzip"


def test_the_redirect_keeps_the_path_percent_encoded(http):
    r = http.get("/DomainResource/%00/_history/", follow_redirects=False)
    assert r.status_code in (307, 404)
    if r.status_code == 307:
        assert r.headers["location"] == "/fhir/DomainResource/%00/_history"
    r = http.get("/Patient/a%0d%0aSet-Cookie:x/", follow_redirects=False)
    assert "set-cookie" not in r.headers and "\n" not in r.headers.get("location", "")
