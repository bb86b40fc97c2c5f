"""The base URL of answers follows the request, or the pinned --base-url (api/base.py)."""

from __future__ import annotations

from starlette.requests import Request

from fhir_server.api.base import request_base
from fhir_server.settings import Settings


def _request(headers: dict[str, str], scheme: str = "http", server=("127.0.0.1", 8080)) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "scheme": scheme, "server": server, "path": "/fhir/Patient",
                    "headers": raw, "query_string": b"", "method": "GET"})


def test_the_host_header_names_the_base():
    assert request_base(_request({"Host": "localhost:8080"}), Settings()) == "http://localhost:8080/fhir"
    assert request_base(_request({"Host": "[::1]:9000"}), Settings()) == "http://[::1]:9000/fhir"


def test_a_pinned_base_url_wins():
    settings = Settings(base_url="https://fhir.region.example/r4/")
    assert request_base(_request({"Host": "evil.example"}), settings) == "https://fhir.region.example/r4"


def test_a_malformed_host_is_never_echoed():
    for host in ('evil"><script>', "a b", "x/y", "", "host:99999999"):
        assert request_base(_request({"Host": host}), Settings()) == "http://127.0.0.1:8080/fhir"


def test_forwarded_headers_count_only_behind_a_trusted_proxy():
    headers = {"Host": "10.0.0.5:8080", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "fhir.example",
               "X-Forwarded-Prefix": "/evi"}
    assert request_base(_request(headers), Settings()) == "http://10.0.0.5:8080/fhir"
    assert request_base(_request(headers), Settings(trust_proxy=True)) == "https://fhir.example/evi/fhir"


def test_rfc_7239_forwarded_takes_the_nearest_element_to_the_client():
    headers = {"Host": "10.0.0.5", "Forwarded": 'for=1.2.3.4;proto=https;host="fhir.example", for=10.0.0.1;host=inner'}
    assert request_base(_request(headers), Settings(trust_proxy=True)) == "https://fhir.example/fhir"


def test_a_forwarded_scheme_other_than_http_or_https_is_ignored():
    headers = {"Host": "fhir.example", "X-Forwarded-Proto": "javascript", "X-Forwarded-Prefix": "/a/../b"}
    assert request_base(_request(headers), Settings(trust_proxy=True)) == "http://fhir.example/fhir"
