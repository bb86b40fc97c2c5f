"""Bundle rules no invariant states (bundle.html, search.html#bundle,
documents.html#content), written from the specification's text: fullUrl presence and
RESTful form, paging links, search results, document reachability; resources in a
Bundle are validated with the Bundle as their context."""

from __future__ import annotations

from fhir_server.conformance.validator import Validator

BASE = "http://a.example.se/fhir/"


def uuid(n: int) -> str:
    return f"urn:uuid:{n:08d}-0000-4000-8000-000000000000"


def errors(resource: dict) -> dict[str, str]:
    return {i.expression: i.message for i in Validator().validate(resource) if i.severity == "error"}


def bundle(kind: str, *entries: dict, **extra) -> dict:
    return {"resourceType": "Bundle", "type": kind, **({"entry": list(entries)} if entries else {}), **extra}


def patient(pid: str | None = None, **extra) -> dict:
    return {"resourceType": "Patient", **({"id": pid} if pid else {}), **extra}


def test_a_restful_full_url_ends_with_the_entry_type_and_id():
    assert errors(bundle("collection", {"fullUrl": BASE + "Patient/1", "resource": patient("1")})) == {}
    found = errors(bundle("collection", {"fullUrl": BASE + "Patient/2", "resource": patient("1")},
                          {"fullUrl": BASE + "Patient/3", "resource": patient()}))
    assert set(found) == {"Bundle.entry[0]", "Bundle.entry[1]"}
    assert "/Patient/1" in found["Bundle.entry[0]"] and "must have an id" in found["Bundle.entry[1]"]


def test_full_urls_are_absolute_and_required_outside_transactions_and_batches():
    assert set(errors(bundle("collection", {"resource": patient("1")}))) == {"Bundle.entry[0]"}
    assert set(errors(bundle("collection", {"fullUrl": "Patient/1", "resource": patient("1")}))) == {"Bundle.entry[0]"}
    post = {"resource": patient(), "request": {"method": "POST", "url": "Patient"}}
    assert errors(bundle("transaction", post)) == {}
    assert errors(bundle("batch", post)) == {}


def test_a_full_url_that_is_a_urn_must_be_a_valid_uuid_or_oid():
    found = errors(bundle("collection", {"fullUrl": "urn:uuid:1", "resource": patient("1")},
                          {"fullUrl": "urn:oid:1.2.x", "resource": patient("2")}))
    assert set(found) == {"Bundle.entry[0].fullUrl", "Bundle.entry[1].fullUrl"}
    assert errors(bundle("collection", {"fullUrl": uuid(1), "resource": patient("1")},
                         {"fullUrl": "urn:oid:1.2.752.1", "resource": patient("2")})) == {}


def test_full_urls_are_unique_unless_versions_differ():
    twice = bundle("collection", {"fullUrl": uuid(1), "resource": patient("1")},
                   {"fullUrl": uuid(1), "resource": patient("1")})
    assert "Bundle" in errors(twice) and "bdl-7" in errors(twice)["Bundle"]
    history = bundle("history", {"fullUrl": uuid(1), "resource": patient("1", meta={"versionId": "1"}),
                                 "request": {"method": "PUT", "url": "Patient/1"},
                                 "response": {"status": "200"}},
                     {"fullUrl": uuid(1), "resource": patient("1", meta={"versionId": "2"}),
                      "request": {"method": "PUT", "url": "Patient/1"}, "response": {"status": "200"}})
    assert errors(history) == {}


def test_paging_links_only_in_searchsets_and_histories_and_each_relation_once():
    link = lambda rel: {"relation": rel, "url": BASE + "Patient?page=2"}  # noqa: E731
    assert set(errors(bundle("collection", link=[link("next")]))) == {"Bundle.link[0]"}
    assert errors(bundle("searchset", link=[link("self"), link("next")])) == {}
    assert set(errors(bundle("searchset", link=[link("next"), link("next")]))) == {"Bundle.link[1]"}


def test_search_results_have_ids_and_the_searched_type():
    self_link = [{"relation": "self", "url": BASE + "Patient?name=x"}]
    match = lambda res: {"fullUrl": uuid(1), "resource": res, "search": {"mode": "match"}}  # noqa: E731
    assert errors(bundle("searchset", match(patient("1")), link=self_link)) == {}
    found = errors(bundle("searchset", match(patient()), link=self_link))
    assert "ids" in found["Bundle.entry[0].resource"]
    obs = {"resourceType": "Observation", "id": "o", "status": "final", "code": {"text": "x"}}
    assert "matching resource type" in errors(bundle("searchset", match(obs), link=self_link))["Bundle.entry[0].resource"]
    outcome = {"fullUrl": uuid(2), "resource": patient("2"), "search": {"mode": "outcome"}}
    assert "OperationOutcome" in errors(bundle("searchset", outcome, link=self_link))["Bundle.entry[0].resource"]


def _document(*extra_entries: dict, subject: str) -> dict:
    composition = {"resourceType": "Composition", "status": "final", "type": {"text": "note"}, "date": "2024-01-01",
                   "title": "Note", "author": [{"reference": uuid(2)}], "subject": {"reference": subject}}
    return bundle("document", {"fullUrl": uuid(1), "resource": composition},
                  {"fullUrl": uuid(2), "resource": {"resourceType": "Practitioner"}}, *extra_entries,
                  identifier={"system": "urn:ietf:rfc:3986", "value": uuid(9)}, timestamp="2024-01-01T10:00:00Z")


def test_document_references_resolve_in_the_bundle_and_every_entry_is_reachable():
    assert errors(_document({"fullUrl": uuid(3), "resource": patient()}, subject=uuid(3))) == {}
    found = errors(_document({"fullUrl": uuid(4), "resource": patient()}, subject=uuid(3)))
    assert "Can't find" in found["Bundle.entry[0].resource.subject"]
    assert "reachable" in found["Bundle.entry[2]"]


def test_resources_in_entries_are_validated():
    found = errors(bundle("collection", {"fullUrl": uuid(1), "resource": patient("1", gender="often")}))
    assert set(found) == {"Bundle.entry[0].resource.gender"}


def test_a_document_starts_with_a_composition_and_a_message_with_a_message_header():
    assert "first entry" in errors(bundle("document", timestamp="2024-01-01T10:00:00Z",
                                          identifier={"system": "urn:ietf:rfc:3986", "value": uuid(9)}))["Bundle"]
    found = errors(bundle("document", {"fullUrl": uuid(1), "resource": patient()}, timestamp="2024-01-01T10:00:00Z",
                          identifier={"system": "urn:ietf:rfc:3986", "value": uuid(9)}))
    assert "Composition" in found["Bundle.entry[0].resource"]
    found = errors(bundle("message", {"fullUrl": uuid(1), "resource": patient()}, timestamp="2024-01-01T10:00:00Z"))
    assert "MessageHeader" in found["Bundle.entry[0].resource"]


def test_uri_values_and_stylesheet_links_make_document_entries_reachable():
    binary = {"resourceType": "Binary", "contentType": "text/plain", "data": "aGVq"}
    doc_ref = {"resourceType": "DocumentReference", "status": "current",
               "content": [{"attachment": {"contentType": "text/plain", "url": uuid(5)}}]}
    doc = _document({"fullUrl": uuid(3), "resource": patient()}, {"fullUrl": uuid(4), "resource": doc_ref},
                    {"fullUrl": uuid(5), "resource": binary}, subject=uuid(3))
    doc["entry"][0]["resource"]["section"] = [{"title": "Files", "entry": [{"reference": uuid(4)}]}]
    assert errors(doc) == {}
    style = {"resourceType": "Binary", "id": "css", "contentType": "text/css", "data": "Ym9keXt9"}
    doc = _document({"fullUrl": uuid(3), "resource": patient()}, {"fullUrl": uuid(6), "resource": style},
                    subject=uuid(3))
    assert "Bundle.entry[3]" in errors(doc)
    doc["link"] = [{"relation": "stylesheet", "url": "Binary/css"}]
    assert errors(doc) == {}


def test_a_relative_reference_from_a_urn_entry_does_not_resolve_in_a_document():
    found = errors(_document({"fullUrl": uuid(3), "resource": patient("p1")}, subject="Patient/p1"))
    assert "relative reference" in found["Bundle.entry[0].resource.subject"]
