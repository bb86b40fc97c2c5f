"""uri parameters (R4 search.html#uri): exact match (case-sensitive, no prefix
matching), :below (the stored uri lies under the given one) and :above (the
given uri lies under the stored one); also canonical references with |version."""

from __future__ import annotations

import pytest

from tests.integration.search.conftest import service_request

EVI = "http://evi.example/fhir/ValueSet"


def _vs(rid: str, url: str) -> dict:
    return {"resourceType": "ValueSet", "id": rid, "url": url, "status": "active"}


@pytest.fixture(scope="module")
def fhir(own_server):
    own_server.seed(
        _vs("vs-a", f"{EVI}/remiss"),
        _vs("vs-b", f"{EVI}/remiss/akut"),
        _vs("vs-c", f"{EVI}/remissvar"),
        _vs("vs-d", "http://other.example/fhir/ValueSet/remiss"),
        _vs("vs-urn", "urn:oid:1.2.752.129.2.1.1"),
        {"resourceType": "ValueSet", "id": "vs-nourl", "status": "draft"},
        {"resourceType": "CodeSystem", "id": "cs-kva", "url": "http://evi.example/fhir/CodeSystem/kva",
         "status": "active", "content": "not-present"},
        service_request("sr-pd2", "Patient/p-1", instantiatesCanonical=["http://evi.example/fhir/PlanDefinition/remiss|2.0"],
                        instantiatesUri=["http://evi.example/protocols/remiss-ct"]),
        service_request("sr-pd1", "Patient/p-1", instantiatesCanonical=["http://evi.example/fhir/PlanDefinition/remiss|1.0"]),
        service_request("sr-ad", "Patient/p-1", instantiatesCanonical=["http://evi.example/fhir/ActivityDefinition/provtagning"]),
    )
    return own_server


CASES = [
    # exact
    (f"ValueSet?url={EVI}/remiss", {"vs-a"}),
    (f"ValueSet?url={EVI}/remiss/akut", {"vs-b"}),
    (f"ValueSet?url={EVI}/remiss/", set()),
    (f"ValueSet?url={EVI}/rem", set()),
    ("ValueSet?url=HTTP://EVI.EXAMPLE/fhir/ValueSet/remiss", set()),  # uris are case-sensitive
    ("ValueSet?url=urn:oid:1.2.752.129.2.1.1", {"vs-urn"}),
    ("ValueSet?url=urn:oid:1.2.752.129.2.1", set()),
    (f"ValueSet?url={EVI}/remiss,urn:oid:1.2.752.129.2.1.1", {"vs-a", "vs-urn"}),
    # :below
    (f"ValueSet?url:below={EVI}/", {"vs-a", "vs-b", "vs-c"}),
    (f"ValueSet?url:below={EVI}/remiss/", {"vs-b"}),
    ("ValueSet?url:below=http://evi.example/fhir/", {"vs-a", "vs-b", "vs-c"}),
    ("ValueSet?url:below=http://other.example/", {"vs-d"}),
    ("ValueSet?url:below=http://nowhere.example/", set()),
    # :above
    (f"ValueSet?url:above={EVI}/remiss/akut/v2", {"vs-a", "vs-b"}),
    (f"ValueSet?url:above={EVI}/remiss/akut", {"vs-a", "vs-b"}),
    (f"ValueSet?url:above={EVI}/remiss", {"vs-a"}),
    ("ValueSet?url:above=http://other.example/fhir/ValueSet/remiss/x", {"vs-d"}),
    ("ValueSet?url:above=http://nowhere.example/fhir/ValueSet/remiss", set()),
    # the same parameter on another type, and CodeSystem.system
    ("CodeSystem?url=http://evi.example/fhir/CodeSystem/kva", {"cs-kva"}),
    ("CodeSystem?system=http://evi.example/fhir/CodeSystem/kva", {"cs-kva"}),
    (f"CodeSystem?url={EVI}/remiss", set()),
    # a plain uri element
    ("ServiceRequest?instantiates-uri=http://evi.example/protocols/remiss-ct", {"sr-pd2"}),
    ("ServiceRequest?instantiates-uri:below=http://evi.example/protocols/", {"sr-pd2"}),
    ("ServiceRequest?instantiates-uri=http://evi.example/protocols", set()),
    # canonical references: |version is not part of the match unless given
    ("ServiceRequest?instantiates-canonical=http://evi.example/fhir/PlanDefinition/remiss", {"sr-pd1", "sr-pd2"}),
    ("ServiceRequest?instantiates-canonical=http://evi.example/fhir/ActivityDefinition/provtagning", {"sr-ad"}),
    ("ServiceRequest?instantiates-canonical=http://evi.example/fhir/PlanDefinition/other", set()),
]


@pytest.mark.parametrize("query,expected", CASES, ids=[c[0] for c in CASES])
def test_uri_search(fhir, query, expected):
    assert fhir.ids(query) == expected


def test_canonical_with_version_matches_that_version(fhir):
    """R4 search.html#versions: ``url|version`` matches only that version."""
    q = "ServiceRequest?instantiates-canonical=http://evi.example/fhir/PlanDefinition/remiss|2.0"
    assert fhir.ids(q) == {"sr-pd2"}


@pytest.mark.parametrize("query", ["ValueSet?url:contains=remiss", "ValueSet?url:exact=x", "ValueSet?url:text=x"])
def test_uri_invalid_modifier_is_400(fhir, query):
    r = fhir.get(query)
    assert r.status_code == 400, f"{query}: {r.status_code} {r.text}"
