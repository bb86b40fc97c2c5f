"""The committed spec tables: reproducible from the official spec, and sane."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from fhir_server.spec import load_table
from fhir_server.spec.generate import CORE, DEFAULT_OUT, generate

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC = REPO_ROOT.parent / "shared" / "fhir-spec"
TABLES = ("types", "valuesets", "search_parameters", "compartments")


def test_generator_reproduces_committed_tables(tmp_path: Path) -> None:
    if not (SPEC / CORE).is_dir():
        pytest.skip(f"official FHIR R4 spec not present at {SPEC} (only needed to regenerate)")
    sizes = generate(SPEC, tmp_path)
    assert set(sizes) == {f"{t}.json" for t in TABLES}
    from fhir_server.spec.generate_elements import TABLES as ELEMENT_TABLES

    committed = sorted(p.name for p in DEFAULT_OUT.glob("*.json") if p.stem not in ELEMENT_TABLES)
    assert committed == sorted(sizes), "data/ holds files the generator does not write"
    for name in sizes:
        fresh = (tmp_path / name).read_bytes()
        assert fresh == (DEFAULT_OUT / name).read_bytes(), (
            f"{name} is stale: run python -m fhir_server.spec.generate")


@pytest.mark.parametrize("name", TABLES)
def test_tables_are_deterministic_json_with_source(name: str) -> None:
    raw = (DEFAULT_OUT / f"{name}.json").read_bytes()
    table = orjson.loads(raw)
    assert raw == orjson.dumps(table, option=orjson.OPT_SORT_KEYS) + b"\n"
    source = table["_source"]
    assert "HL7 FHIR R4 4.0.1" in source and "hl7.fhir.r4.core" in source and "CC0-1.0" in source
    # Facts only: no narrative copied from the spec (prose has " the " in it).
    del table["_source"]
    prose = [s for s in _strings(table) if " the " in s.lower() or " shall " in s.lower()]
    assert prose == []
    assert len(raw) < 1_000_000


def _strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


def test_load_table_is_cached() -> None:
    assert load_table("types") is load_table("types")
    with pytest.raises(ValueError):
        load_table("../types")


def test_service_request_status_binding() -> None:
    status = load_table("types")["ServiceRequest"]["e"]["status"]
    assert status["t"] == ["code"] and status["min"] == 1 and status["max"] == 1
    assert status["b"] == "http://hl7.org/fhir/ValueSet/request-status"
    codes = load_table("valuesets")[status["b"]]["http://hl7.org/fhir/request-status"]
    assert "active" in codes and "completed" in codes
    assert "bogus" not in codes


def test_types_shape() -> None:
    types = load_table("types")
    assert types["ServiceRequest"]["k"] == "resource"
    assert types["Quantity"]["k"] == "complex-type"
    assert types["string"]["k"] == "primitive-type"
    assert types["DomainResource"].get("a") == 1
    # Backbone elements are entries of their own, named by path.
    entry = types["Bundle"]["e"]["entry"]
    assert entry["t"] == ["Bundle.entry"] and entry["max"] == "*"
    request = types["Bundle.entry"]["e"]["request"]
    assert request["t"] == ["Bundle.entry.request"]
    assert types["Bundle.entry.request"]["e"]["method"]["b"] == "http://hl7.org/fhir/ValueSet/http-verb"
    # contentReference points at the referenced backbone entry.
    assert types["Questionnaire.item"]["e"]["item"]["t"] == ["Questionnaire.item"]
    # Choice elements are expanded to their JSON names.
    obs = types["Observation"]["e"]
    assert obs["valueQuantity"]["t"] == ["Quantity"] and obs["valueQuantity"]["x"] == "value"
    assert obs["valueCodeableConcept"]["t"] == ["CodeableConcept"]
    assert "Quantity" in obs["value[x]"]["t"] and "valueReference" not in obs
    assert types["Quantity"]["e"]["comparator"]["b"] == "http://hl7.org/fhir/ValueSet/quantity-comparator"
    # Inherited elements are present; id/extension are kept for the validator.
    assert {"id", "meta", "extension", "modifierExtension", "contained"} <= set(types["Patient"]["e"])
    assert types["Patient"]["e"]["generalPractitioner"]["r"] == ["Organization", "Practitioner", "PractitionerRole"]
    # Profiles are not base types.
    assert "SimpleQuantity" not in types and "vitalsigns" not in types


def test_skipped_value_sets_are_listed() -> None:
    valuesets = load_table("valuesets")
    skipped = valuesets["_skipped"]
    assert "http://hl7.org/fhir/ValueSet/mimetypes" in skipped
    assert "http://hl7.org/fhir/ValueSet/ucum-units" in skipped
    assert not set(skipped) & set(valuesets)
    # Every required binding is either expanded or listed as skipped.
    bound = {f["b"] for t in load_table("types").values() if isinstance(t, dict)
             for f in t.get("e", {}).values() if "b" in f}
    assert bound == (set(valuesets) - {"_source", "_skipped"}) | set(skipped)


def test_search_parameters() -> None:
    params = load_table("search_parameters")
    ident = params["http://hl7.org/fhir/SearchParameter/Patient-identifier"]
    assert ident["code"] == "identifier" and ident["type"] == "token"
    assert ident["base"] == ["Patient"] and "Patient.identifier" in ident["expression"]
    by_code = {(p["code"], b) for k, p in params.items() if k != "_source" for b in p["base"]}
    assert ("_id", "Resource") in by_code and ("_lastUpdated", "Resource") in by_code
    subject = params["http://hl7.org/fhir/SearchParameter/ServiceRequest-subject"]
    assert subject["type"] == "reference" and "Patient" in subject["target"]
    composite = params["http://hl7.org/fhir/SearchParameter/Observation-code-value-quantity"]
    assert composite["type"] == "composite" and len(composite["component"]) == 2
    assert {"definition", "expression"} == set(composite["component"][0])
    assert len(params) - 1 == 1375


def test_compartments() -> None:
    compartments = load_table("compartments")
    assert set(compartments) == {"_source", "Patient", "Encounter", "RelatedPerson", "Practitioner", "Device"}
    assert "subject" in compartments["Patient"]["ServiceRequest"]
    assert compartments["Patient"]["Patient"] == ["link"]
    assert "encounter" in compartments["Encounter"]["Observation"]
    # The official Device compartment, not the package's "example" definition.
    assert "device" in compartments["Device"]["DeviceRequest"]
    assert "Organization" not in compartments["Patient"]  # listed without params
