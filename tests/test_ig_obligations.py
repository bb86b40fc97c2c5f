"""The guide as an EHR vendor's integrator reads it (issue 17): must-support flags and the
obligations page ``docs/ig.md``; English definitions, Swedish shorts, examples and binding
descriptions; SearchParameter metadata; every invariant has an expression and never
evaluates to an empty result (HL7's validator counts empty as a failure)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from fhirpathpy import evaluate
from fhirpathpy.models import models

from fhir_server.model import identifier_problem
from tests.test_ig_content import FHIRPATH_OPTIONS

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ROOT / "profiles"
SDS = {p.stem.split("-", 1)[1]: json.loads(p.read_text()) for p in sorted(PROFILES.glob("StructureDefinition-*.json"))}
RESOURCE_PROFILES = sorted(k for k, sd in SDS.items() if sd["kind"] == "resource")
OBLIGATIONS = (ROOT / "docs" / "ig.md").read_text()
MODEL = models["r4"]
#: English function words: none in a Swedish short (outside parentheses), some in every definition
ENGLISH = re.compile(r"\b(the|of|and|with|is|are|to|an|which|who)\b", re.I)


def _constrained(sd: dict) -> list[dict]:
    """The differential elements that say something (prohibited ones carry no text)."""
    return [e for e in sd["differential"]["element"] if str(e.get("max")) != "0"]


@pytest.mark.parametrize("name", sorted(SDS))
def test_every_constrained_element_has_a_definition_and_a_short(name):
    for el in _constrained(SDS[name]):
        assert el.get("definition", "").strip() and el.get("short", "").strip(), f"{name} {el['id']}"
        assert el["definition"] != el["short"], f"{name} {el['id']}: the definition repeats the short"
        assert ENGLISH.search(el["definition"]), f"{name} {el['id']}: the definition is in English"
        swedish = re.sub(r"\([^)]*\)", "", el["short"])  # an English gloss in parentheses may follow
        assert not ENGLISH.search(swedish), f"{name} {el['id']}: the short is in Swedish: {el['short']!r}"


@pytest.mark.parametrize("name", sorted(SDS))
def test_must_support_flags(name):
    sd = SDS[name]
    for el in _constrained(sd):
        if "." not in el["id"]:
            continue
        wanted = sd["kind"] == "resource" or el["id"].endswith("value[x]") or re.fullmatch(
            r"Extension\.extension:[A-Za-z]+(\.value\[x\])?", el["id"]) is not None
        if wanted:
            assert el.get("mustSupport") is True, f"{name} {el['id']}"
    prohibited = [e["id"] for e in sd["differential"]["element"] if str(e.get("max")) == "0" and e.get("mustSupport")]
    assert prohibited == []


@pytest.mark.parametrize("name", sorted(SDS))
def test_bindings_have_descriptions(name):
    for el in SDS[name]["differential"]["element"]:
        if "binding" in el:
            assert len(el["binding"].get("description", "")) > 20, f"{name} {el['id']}"


@pytest.mark.parametrize("name", sorted(SDS))
def test_every_profile_has_examples_and_identifier_examples_are_valid(name):
    elements = {e["id"]: e for e in SDS[name]["differential"]["element"]}
    examples = [(eid, x) for eid, el in elements.items() for x in el.get("example", ())]
    assert examples or SDS[name]["kind"] != "resource", name
    assert all(x.get("label") for _, x in examples)
    for eid, x in examples:
        if eid.endswith(".value") and f"{eid[:-6]}.system" in elements:
            system = elements[f"{eid[:-6]}.system"]["fixedUri"]
            assert identifier_problem(system, x["valueString"]) is None, (eid, x)


def test_the_obligations_page_covers_every_profile_and_must_support_element():
    sections = dict(re.findall(r"^### (\S+).*?\n(.*?)(?=^### |\Z)", OBLIGATIONS, re.S | re.M))
    assert "## What must-support means here" in OBLIGATIONS
    for name in RESOURCE_PROFILES:
        text = sections[name]
        assert "**Sender**" in text and "**Receiver**" in text, name
        snapshot = {e["id"]: e for e in SDS[name]["snapshot"]["element"]}
        rows = dict(re.findall(r"^\| `([^`]+)` \| (\d+\.\.[\d*]+) \|", text, re.M))
        for el in SDS[name]["differential"]["element"]:
            if el.get("mustSupport"):
                found = snapshot[el["id"]]
                assert rows.get(el["id"]) == f"{found['min']}..{found['max']}", f"docs/ig.md, {name}: {el['id']}"
    for name in set(SDS) - set(RESOURCE_PROFILES):
        assert re.search(rf"^\| {re.escape(name)} \|", sections["Extensions"], re.M), name


def test_the_guide_build_settings_are_documented():
    readme = (ROOT / "README.md").read_text()
    for setting in ("EVI_IG_PUBLISHER", "EVI_IG_CONTACT_NAME", "EVI_IG_CONTACT_URL", "EVI_IG_COPYRIGHT"):
        assert setting in readme, setting


def test_search_parameters_have_date_jurisdiction_and_experimental():
    for path in sorted(PROFILES.glob("SearchParameter-*.json")):
        sp = json.loads(path.read_text())
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", sp.get("date", "")), path.name
        assert sp.get("experimental") is False, path.name
        assert sp["jurisdiction"][0]["coding"][0] == {"system": "urn:iso:std:iso:3166", "code": "SE", "display": "Sweden"}


# ---- invariants ----------------------------------------------------------------------------

CONSTRAINTS = [(name, el["id"], c) for name, sd in SDS.items() for el in sd["differential"]["element"]
               for c in el.get("constraint", ())]


def test_every_invariant_of_the_guide_has_an_expression():
    assert CONSTRAINTS
    assert [(n, c["key"]) for n, _, c in CONSTRAINTS if not c.get("expression")] == []


def test_rules_that_need_other_resources_are_documented_server_rules():
    keys = {c["key"] for _, _, c in CONSTRAINTS}
    for key in ("evi-ctr-1", "evi-sct-1", "evi-sip-2"):
        assert key not in keys and f"`{key}`" in OBLIGATIONS, key


def _examples_of(resource_type: str) -> list[dict]:
    found = []
    for folder in ("valid", "invalid"):
        for path in sorted((ROOT / "examples" / folder).glob("*.json")):
            data = json.loads(path.read_text())
            if data.get("resourceType") == resource_type:
                found.append(data)
    return found


def _optional_in_r4(sd: dict) -> set[str]:
    """Top-level elements R4 itself lets go (base min 0): a profile may require them."""
    return {e["path"].split(".")[1] for e in sd["snapshot"]["element"]
            if e["path"].count(".") == 1 and e.get("base", {}).get("min", 0) == 0}


def _variants(resource: dict, optional: set[str]) -> list[dict]:
    """The resource; without each element R4 lets go, in turn; with every Identifier's value
    replaced by a data-absent-reason; with every extension's value removed."""
    out = [resource]
    for key in resource:
        if key.lstrip("_") in optional:
            out.append({k: v for k, v in resource.items() if k != key})
    absent = copy.deepcopy(resource)
    for identifier in absent.get("identifier", ()):
        identifier.pop("value", None)
        identifier["_value"] = {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
                                               "valueCode": "unknown"}]}
    out.append(absent)
    bare = copy.deepcopy(resource)
    for ext in bare.get("extension", ()):
        for key in [k for k in ext if k.startswith("value")]:
            del ext[key]
    out.append(bare)
    return out


def _nodes(resource: dict, element_id: str) -> list:
    """The nodes an element id reaches (slices by the fixed system of their identifier)."""
    nodes = [resource]
    for part in element_id.split(".")[1:]:
        name, _, slice_name = part.partition(":")
        nxt = []
        for node in nodes:
            value = node.get(name) if isinstance(node, dict) else None
            nxt += value if isinstance(value, list) else [value] if value is not None else []
        nodes = nxt
        if slice_name:
            system = SDS_FIXED.get(slice_name)
            nodes = [n for n in nodes if isinstance(n, dict) and n.get("system") == system]
    return nodes


SDS_FIXED = {el["id"].rsplit(":", 1)[1].split(".")[0]: el["fixedUri"] for sd in SDS.values()
             for el in sd["differential"]["element"] if el["id"].endswith(".system") and "fixedUri" in el}


@pytest.mark.parametrize("name, element_id, constraint", CONSTRAINTS, ids=lambda v: v if isinstance(v, str) else v["key"])
def test_invariant_never_evaluates_to_empty(name, element_id, constraint):
    """HL7's validator fails an invariant whose result is empty; evi-fhir's guide must never
    depend on the difference: on every probe the result is exactly true or false."""
    probes = 0
    for example in _examples_of(SDS[name]["type"]):
        for variant in _variants(example, _optional_in_r4(SDS[name])):
            for node in _nodes(variant, element_id):
                result = evaluate(node, constraint["expression"], {}, MODEL, FHIRPATH_OPTIONS)
                assert result in ([True], [False]), (constraint["key"], node, result)
                probes += 1
    assert probes, f"no example reaches {element_id}"


def test_a_personnummer_with_a_data_absent_reason_passes_evi_pnr_1_in_both_semantics():
    expression = next(c["expression"] for _, _, c in CONSTRAINTS if c["key"] == "evi-pnr-1")
    absent = {"system": "http://electronichealth.se/identifier/personnummer",
              "_value": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
                                        "valueCode": "unknown"}]}}
    assert evaluate(absent, expression, {}, MODEL, FHIRPATH_OPTIONS) == [True]
    wrong = {"system": "http://electronichealth.se/identifier/personnummer", "value": "201203042383"}
    assert evaluate(wrong, expression, {}, MODEL, FHIRPATH_OPTIONS) == [False]
