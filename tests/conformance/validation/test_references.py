"""Reference resolution (references.html, bundle.html#references) as the validator
applies it: contained references resolve in the resource; in a Bundle an absolute
reference is matched against fullUrls, a relative one against the RESTful base of the
referring entry's fullUrl (by type and id when that entry has a urn fullUrl), a
version must be an entry's meta.versionId, and a reference that matches more than
one entry is an error; target types are checked on what the reference resolves to."""

from __future__ import annotations

from fhir_server.conformance.validator import Validator

A, B = "http://a.example.se/fhir/", "http://b.example.se/fhir/"


def uuid(n: int) -> str:
    return f"urn:uuid:{n:08d}-0000-4000-8000-000000000000"


def errors(resource: dict) -> dict[str, str]:
    return {i.expression: i.message for i in Validator().validate(resource) if i.severity == "error"}


def patient(pid: str, version: str | None = None) -> dict:
    return {"resourceType": "Patient", "id": pid, **({"meta": {"versionId": version}} if version else {})}


def observation(subject: str) -> dict:
    return {"resourceType": "Observation", "id": "o", "status": "final", "code": {"text": "x"},
            "subject": {"reference": subject}}


def collection(*entries: tuple[str, dict]) -> dict:
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": full, "resource": res} for full, res in entries]}


def test_a_relative_reference_resolves_against_the_base_of_the_referring_entry():
    same_id_two_servers = collection((A + "Patient/1", patient("1")), (B + "Patient/1", patient("1")),
                                     (A + "Observation/o", observation("Patient/1")))
    assert errors(same_id_two_servers) == {}


def test_a_reference_matching_several_entries_is_an_error():
    found = errors(collection((A + "Patient/1", patient("1", "1")), (A + "Patient/1", patient("1", "2")),
                              (A + "Observation/o", observation("Patient/1"))))
    assert "Multiple matches" in found["Bundle.entry[2].resource.subject"]


def test_a_version_specific_reference_picks_the_entry_with_that_version():
    entries = ((A + "Patient/1", patient("1", "1")), (A + "Patient/1", patient("1", "2")))
    assert errors(collection(*entries, (A + "Observation/o", observation("Patient/1/_history/2")))) == {}
    found = errors(collection(*entries, (A + "Observation/o", observation(A + "Patient/1/_history/3"))))
    assert "none with version 3" in found["Bundle.entry[2].resource.subject"]


def test_from_a_urn_entry_a_relative_reference_is_not_an_error_outside_documents():
    # it resolves to nothing in the Bundle (a reference to a server), which only documents
    # and messages forbid (test_bundle.py)
    bundle = collection((uuid(1), patient("1")), (uuid(2), observation("Patient/1")))
    assert errors(bundle) == {}


def test_the_resolved_target_decides_the_target_type():
    wrong = {**observation(uuid(1)), "subject": {"reference": uuid(1)}, "performer": [{"reference": uuid(1)}]}
    bundle = collection((uuid(1), {"resourceType": "Location", "id": "l"}), (uuid(2), wrong))
    found = errors(bundle)
    assert "Location" in found["Bundle.entry[1].resource.performer[0]"]


def test_contained_references_resolve_in_the_resource():
    obs = {**observation("#p"), "contained": [{"resourceType": "Patient", "id": "p"}]}
    assert errors(obs) == {}
    found = errors({**obs, "subject": {"reference": "#q"}})
    assert "Observation.subject" in found
