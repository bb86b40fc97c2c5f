"""Resource -> IndexSet (search/extract.py)."""

import json
import logging
from pathlib import Path

import pytest

from fhir_server.search import IndexSet, SearchParamDef, SearchRegistry, extract_index
from fhir_server.search.index import DateEntry, NumberEntry, ReferenceEntry, StringEntry, TokenEntry, UriEntry
from fhir_server.search.params.date import MAX_INSTANT

BASE = "http://evi.example/fhir"
EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "fhir-spec" / "r4-examples"


@pytest.fixture(scope="module")
def registry():
    return SearchRegistry.from_spec()


def _of(index: IndexSet, param: str) -> list:
    return [e for e in index.entries if e.param == param]


PATIENT = {
    "resourceType": "Patient", "id": "p1", "meta": {"versionId": "1", "lastUpdated": "2026-01-01T00:00:00.000000Z"},
    "identifier": [{"system": "http://electronichealth.se/identifier/personnummer", "value": "201203042385"}],
    "name": [{"family": "Öberg", "given": ["Åsa"]}],
    "gender": "female", "birthDate": "2012-03-04",
    "managingOrganization": {"reference": f"{BASE}/Organization/o1"},
    "generalPractitioner": [{"reference": "http://other.example/fhir/Practitioner/pr1"}, {"reference": "#c1"}],
}


def test_patient_entries_and_present(registry):
    index = extract_index(registry, PATIENT, BASE)
    assert _of(index, "family") == [StringEntry("family", "oberg", "Öberg")]
    assert _of(index, "given") == [StringEntry("given", "asa", "Åsa")]
    assert _of(index, "gender") == [TokenEntry("gender", None, "female")]
    assert _of(index, "birthdate") == [DateEntry("birthdate", "2012-03-04T00:00:00.000000Z", "2012-03-04T23:59:59.999999Z")]
    assert {"family", "given", "name", "gender", "birthdate", "identifier", "organization", "general-practitioner"} <= index.present
    assert "telecom" not in index.present and "address" not in index.present
    # _id and _lastUpdated are columns of the resource, never index entries
    assert not _of(index, "_id") and not _of(index, "_lastUpdated")
    assert len(set(index.entries)) == len(index.entries)


def test_absolute_references_to_the_own_base_are_local(registry):
    index = extract_index(registry, PATIENT, BASE)
    assert _of(index, "organization") == [ReferenceEntry("organization", "Organization", "o1", None)]
    # another server's url stays a url; a contained reference is not indexed
    assert _of(index, "general-practitioner") == [
        ReferenceEntry("general-practitioner", "Practitioner", "pr1", "http://other.example/fhir/Practitioner/pr1"),
    ]


def test_own_base_with_a_trailing_slash(registry):
    index = extract_index(registry, PATIENT, BASE + "/")
    assert _of(index, "organization") == [ReferenceEntry("organization", "Organization", "o1", None)]


def test_without_a_base_absolute_references_stay_urls(registry):
    index = extract_index(registry, PATIENT)
    assert _of(index, "organization") == [ReferenceEntry("organization", "Organization", "o1", f"{BASE}/Organization/o1")]


def test_reference_identifier_is_a_token_under_param_identifier(registry):
    sr = {
        "resourceType": "ServiceRequest", "id": "s", "status": "active", "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "requester": {"identifier": {"system": "urn:oid:1.2.752.29.4.19", "value": "SE123"}},
        "performer": [{"reference": "#p1"}],
    }
    index = extract_index(registry, sr, BASE)
    assert _of(index, "requester:identifier") == [TokenEntry("requester:identifier", "urn:oid:1.2.752.29.4.19", "SE123")]
    assert _of(index, "requester") == [] and "requester" in index.present
    assert _of(index, "performer") == [] and "performer" not in index.present


def test_versioned_canonicals_are_indexed_with_and_without_the_version(registry):
    sr = {"resourceType": "ServiceRequest", "id": "s", "status": "active", "intent": "order",
          "subject": {"reference": "Patient/p1"},
          "instantiatesCanonical": ["http://canonical.example/PlanDefinition/intake|1.0"]}
    assert _of(extract_index(registry, sr, BASE), "instantiates-canonical") == [
        ReferenceEntry("instantiates-canonical", "PlanDefinition", "intake", "http://canonical.example/PlanDefinition/intake"),
        ReferenceEntry("instantiates-canonical", None, None, "http://canonical.example/PlanDefinition/intake|1.0"),
    ]


def test_own_base_canonical_with_a_version_is_found_like_one_without(registry):
    """A canonical ``{base}/PlanDefinition/x|2.0`` must be found by ``{base}/PlanDefinition/x`` like
    an unversioned one: the plan localises that search value, so the versionless entry must be local too."""
    def entries(canonical):
        sr = {"resourceType": "ServiceRequest", "id": "s", "status": "active", "intent": "order",
              "subject": {"reference": "Patient/p1"}, "instantiatesCanonical": [canonical]}
        return _of(extract_index(registry, sr, BASE), "instantiates-canonical")

    assert set(entries(f"{BASE}/PlanDefinition/x")) <= set(entries(f"{BASE}/PlanDefinition/x|2.0"))


def test_timing_is_indexed_from_first_to_last_event(registry):
    sr = {"resourceType": "ServiceRequest", "id": "s", "status": "active", "intent": "order",
          "subject": {"reference": "Patient/p1"},
          "occurrenceTiming": {"event": ["2026-04-08T10:00:00Z", "2026-04-01T10:00:00Z"]}}
    assert _of(extract_index(registry, sr, BASE), "occurrence") == [
        DateEntry("occurrence", "2026-04-01T10:00:00.000000Z", "2026-04-08T10:00:00.999999Z"),
    ]


def test_timing_bounds_period(registry):
    sr = {"resourceType": "ServiceRequest", "id": "s", "status": "active", "intent": "order",
          "subject": {"reference": "Patient/p1"},
          "occurrenceTiming": {"repeat": {"boundsPeriod": {"start": "2026-05-01"}, "frequency": 1, "period": 1, "periodUnit": "wk"}}}
    assert _of(extract_index(registry, sr, BASE), "occurrence") == [
        DateEntry("occurrence", "2026-05-01T00:00:00.000000Z", MAX_INSTANT),
    ]


def test_period_and_datetime_choices(registry):
    task = {"resourceType": "Task", "id": "t", "status": "requested", "intent": "order",
            "authoredOn": "2026-03-02T09:00:00+01:00", "executionPeriod": {"start": "2026-03-02", "end": "2026-03-05"}}
    index = extract_index(registry, task, BASE)
    assert _of(index, "authored-on") == [DateEntry("authored-on", "2026-03-02T08:00:00.000000Z", "2026-03-02T08:00:00.999999Z")]
    assert _of(index, "period") == [DateEntry("period", "2026-03-02T00:00:00.000000Z", "2026-03-05T23:59:59.999999Z")]


def test_number_range_and_uri(registry):
    ra = {"resourceType": "RiskAssessment", "id": "r", "status": "final", "subject": {"reference": "Patient/p1"},
          "prediction": [{"probabilityRange": {"low": {"value": 0.2}, "high": {"value": 0.4}}}, {"probabilityDecimal": 0.5}]}
    assert _of(extract_index(registry, ra, BASE), "probability") == [
        NumberEntry("probability", 0.2, 0.4), NumberEntry("probability", 0.5, 0.5),
    ]
    vs = {"resourceType": "ValueSet", "id": "v", "status": "active", "url": "http://evi.example/fhir/ValueSet/a"}
    assert _of(extract_index(registry, vs, BASE), "url") == [UriEntry("url", "http://evi.example/fhir/ValueSet/a")]


def test_indexed_codes_limit_what_is_extracted():
    only = SearchRegistry.from_spec(frozenset({"identifier"}))
    index = extract_index(only, PATIENT, BASE)
    assert {e.param for e in index.entries} == {"identifier"} and index.present == {"identifier"}


def test_a_failing_expression_never_fails_the_write(caplog):
    bad = SearchParamDef(
        code="bad", type="string", url="http://evi.example/fhir/SearchParameter/bad", base=("Patient",),
        expression="Patient.name.single().family",  # single() on two names is an error
    )
    registry = SearchRegistry.from_spec(extra=[bad])
    patient = dict(PATIENT, name=[{"family": "A"}, {"family": "B"}])
    with caplog.at_level(logging.WARNING, logger="fhir_server.search"):
        index = extract_index(registry, patient, BASE)
    assert "bad" not in index.present and not _of(index, "bad")
    assert [e.normalized for e in _of(index, "family")] == ["a", "b"]


def test_an_expression_that_does_not_compile_is_skipped():
    broken = SearchParamDef(
        code="broken", type="string", url="http://evi.example/fhir/SearchParameter/broken", base=("Patient",),
        expression="Patient.name.where(",
    )
    index = extract_index(SearchRegistry.from_spec(extra=[broken]), PATIENT, BASE)
    assert "broken" not in index.present and "family" in index.present


def test_a_runtime_search_parameter_is_extracted():
    school = SearchParamDef(
        code="school", type="string", url="http://evi.example/fhir/SearchParameter/Patient-school", base=("Patient",),
        expression="Patient.extension('http://evi.example/fhir/StructureDefinition/school').value",
    )
    patient = dict(PATIENT, extension=[{"url": "http://evi.example/fhir/StructureDefinition/school", "valueString": "Tallkrogens skola"}])
    index = extract_index(SearchRegistry.from_spec(extra=[school]), patient, BASE)
    assert _of(index, "school") == [StringEntry("school", "tallkrogens skola", "Tallkrogens skola")]


def test_the_official_examples_index_without_warnings(registry, caplog):
    if not EXAMPLES.is_dir():
        pytest.skip(f"official FHIR R4 examples not present at {EXAMPLES}")
    resources = []
    for f in sorted(EXAMPLES.glob("*.json")):
        r = json.loads(f.read_text())
        resources.append(r)
        resources.extend(e["resource"] for e in r.get("entry") or () if isinstance(e.get("resource"), dict))
    with caplog.at_level(logging.WARNING, logger="fhir_server.search"):
        indexes = [extract_index(registry, r, "http://hl7.org/fhir") for r in resources]
    assert not caplog.records, [rec.getMessage() for rec in caplog.records]
    # every example but Parameters (which has no search parameters) has something indexed
    assert all(index.present for r, index in zip(resources, indexes) if r["resourceType"] != "Parameters")
    [patient] = [i for r, i in zip(resources, indexes) if r["resourceType"] == "Patient" and r.get("id") == "example"]
    assert {"identifier", "family", "given", "birthdate", "gender", "organization", "telecom", "address"} <= patient.present
