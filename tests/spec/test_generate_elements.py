"""The committed element tables: reproducible, compact, and faithful to the R4 package."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from fhir_server.conformance.structure import core_definition, core_ids
from fhir_server.spec import load_table
from fhir_server.spec.generate import CORE, DEFAULT_OUT
from fhir_server.spec.generate_elements import TABLES, generate

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC = REPO_ROOT.parent / "shared" / "fhir-spec"
PACKAGE = SPEC / CORE
needs_spec = pytest.mark.skipif(not PACKAGE.is_dir(),
                                reason=f"official FHIR R4 spec not present at {SPEC} (only needed to regenerate)")


@needs_spec
def test_generator_reproduces_committed_tables(tmp_path: Path) -> None:
    sizes = generate(SPEC, tmp_path)
    assert set(sizes) == {f"{t}.json" for t in TABLES}
    for name in sizes:
        assert (tmp_path / name).read_bytes() == (DEFAULT_OUT / name).read_bytes(), (
            f"{name} is stale: run python -m fhir_server.spec.generate_elements")


@pytest.mark.parametrize("name", TABLES)
def test_tables_are_deterministic_compact_json_with_source(name: str) -> None:
    raw = (DEFAULT_OUT / f"{name}.json").read_bytes()
    table = orjson.loads(raw)
    assert raw == orjson.dumps(table, option=orjson.OPT_SORT_KEYS) + b"\n"
    source = table["_source"]
    assert "HL7 FHIR R4 4.0.1" in source and "hl7.fhir.r4.core" in source and "CC0-1.0" in source
    assert len(raw) < 1_200_000
    # Facts only: the one text kept is each constraint's short human message.
    texts = [s for k, v in table.items() if k not in ("_source", "_constraints") for s in _strings(v)]
    assert [s for s in texts if " the " in s.lower() or " shall " in s.lower()] == []
    assert not {"short", "definition", "comment", "xpath", "mapping"} & set(_keys(table))
    # Every constraint an element names is in the table.
    refs = {r for k, v in table.items() if not k.startswith("_") for el in v["el"] for r in el.get("inv", ())}
    assert refs == set(table["_constraints"])


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


def _keys(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from _keys(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _keys(v)


def test_what_the_tables_hold() -> None:
    base, profiles = load_table("elements"), load_table("elements_profiles")
    assert {"Patient", "Observation", "Bundle", "Resource", "DomainResource", "Element",
            "BackboneElement", "Extension", "Identifier", "Quantity", "string", "xhtml"} <= set(base)
    assert {"vitalsigns", "bodyweight", "bp", "SimpleQuantity", "patient-birthPlace",
            "data-absent-reason", "11179-objectClass"} <= set(profiles)
    assert base["Patient"]["k"] == "resource" and base["Patient"]["bd"] == "DomainResource"
    assert profiles["bodyweight"]["bd"] == "vitalsigns" and profiles["bodyweight"]["d"] == "constraint"
    assert profiles["patient-birthPlace"]["ctx"] == [["element", "Patient"]]
    # the two SMART extensions are not under the HL7 prefix
    assert profiles["capabilities"]["url"].startswith("http://fhir-registry.smarthealthit.org/")
    assert len(core_ids()) == 651


def test_element_shape() -> None:
    els = {e["id"]: e for e in load_table("elements")["Patient"]["el"]}
    assert els["Patient.id"]["b"] == ["Resource.id", "0..1"] and els["Patient.id"]["sum"] == 1
    assert els["Patient.gender"]["bi"] == {"s": "required", "v": "http://hl7.org/fhir/ValueSet/administrative-gender"}
    assert els["Patient.generalPractitioner"]["t"] == [
        {"c": "Reference", "tp": ["Organization", "Practitioner", "PractitionerRole"]}]
    assert els["Patient.contact"]["inv"] == ["ele-1", "pat-1"]
    assert "b" not in els["Patient.contact"]  # same path and cardinality as its own
    assert els["Patient.link.other"]["c"] == "1..1"
    string_value = load_table("elements")["string"]["el"][-1]
    assert string_value["t"][0]["rx"] == "[ \\r\\n\\t\\S]+" and string_value["maxLength"] == 1048576
    constraints = load_table("elements")["_constraints"]
    assert constraints["pat-1"]["e"] == "name.exists() or telecom.exists() or address.exists() or organization.exists()"
    assert constraints["pat-1"]["s"] == "error" and constraints["pat-1"]["h"]
    # one key, two definitions: the second gets its own reference
    assert {c.get("k") for r, c in constraints.items() if r.startswith("inv-1")} >= {None, "inv-1"}


def test_core_definition_rebuilds_a_snapshot() -> None:
    sd = core_definition("http://hl7.org/fhir/StructureDefinition/Observation|4.0.1")
    assert sd is core_definition("http://hl7.org/fhir/StructureDefinition/Observation")
    assert sd["kind"] == "resource" and sd["type"] == "Observation"
    assert sd["baseDefinition"] == "http://hl7.org/fhir/StructureDefinition/DomainResource"
    value = next(e for e in sd["snapshot"]["element"] if e["id"] == "Observation.value[x]")
    assert value["path"] == "Observation.value[x]" and value["min"] == 0 and value["max"] == "1"
    assert value["base"] == {"path": "Observation.value[x]", "min": 0, "max": "1"}
    assert value["type"][0] == {"code": "Quantity"} and value["isSummary"] is True
    vs = core_definition("vitalsigns")
    cat = next(e for e in vs["snapshot"]["element"] if e["id"] == "Observation.category:VSCat.coding.code")
    assert cat["fixedCode"] == "vital-signs" and cat["mustSupport"] is True
    assert core_definition("http://example.org/nothing") is None
    assert core_definition("http://fhir-registry.smarthealthit.org/StructureDefinition/capabilities")["type"] == "Extension"


def _facts(el: dict) -> dict:
    """What the tables promise to keep of an element, normalised."""
    types = [{"code": t.get("code", "http://hl7.org/fhirpath/System.String"),
              "ext": sorted((x["url"], str(x.get("valueUrl") or x.get("valueString"))) for x in t.get("extension", ())
                            if x["url"].endswith(("fhir-type", "/regex"))),
              **{k: t[k] for k in ("profile", "targetProfile", "aggregation", "versioning") if k in t}}
             for t in el.get("type", ())]
    binding = el.get("binding")
    return {
        "id": el["id"], "path": el["path"], "min": el["min"], "max": el["max"], "base": el.get("base"),
        "type": types, "contentReference": el.get("contentReference"), "sliceName": el.get("sliceName"),
        "slicing": el.get("slicing") and {"ordered": False, **{k: v for k, v in el["slicing"].items() if k != "description"}},
        "binding": binding and (binding["strength"], binding.get("valueSet", "").split("|")[0]),
        "constraint": [(c["key"], c["severity"], c.get("expression", ""), c["human"]) for c in el.get("constraint", ())],
        "values": {k: v for k, v in el.items() if k.startswith(("fixed", "pattern", "minValue", "maxValue", "maxLength"))},
        "flags": (bool(el.get("isModifier")), bool(el.get("isSummary")), bool(el.get("mustSupport"))),
    }


@needs_spec
def test_every_core_definition_round_trips_against_the_package() -> None:
    checked = 0
    for path in sorted(PACKAGE.glob("StructureDefinition-*.json")):
        official = orjson.loads(path.read_bytes())
        if official["id"] not in core_ids():
            assert official["kind"] == "logical" or "snapshot" not in official, official["id"]
            continue
        ours = core_definition(official["url"])
        assert ours["url"] == official["url"] and ours["kind"] == official["kind"]
        assert ours.get("baseDefinition") == official.get("baseDefinition")
        assert ours.get("context") == official.get("context")
        expected = [_facts(e) for e in official["snapshot"]["element"]]
        assert [_facts(e) for e in ours["snapshot"]["element"]] == expected, official["id"]
        checked += 1
    assert checked == 651
