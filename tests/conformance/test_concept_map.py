"""conformance.concept_map: $translate over ConceptMaps, and its request (parameters.parse_translate)."""

from __future__ import annotations

import pytest

from fhir_server.conformance.concept_map import translate
from fhir_server.conformance.parameters import parse_translate
from fhir_server.errors import BadRequest

A, B = "http://a.example/cs", "http://b.example/cs"


def _map(url="http://m.example/1", unmapped=None, **scope) -> dict:
    group = {"source": A, "target": B, "element": [
        {"code": "x", "target": [{"code": "X", "equivalence": "wider"}]},
        {"code": "y", "target": [{"equivalence": "unmatched"}]}]}
    if unmapped:
        group["unmapped"] = unmapped
    return {"resourceType": "ConceptMap", "url": url, "group": [group], **scope}


def _codes(answer: dict) -> list[tuple[str, str]]:
    return [(next(x["valueCode"] for x in p["part"] if x["name"] == "equivalence"),
             next(x["valueCoding"]["code"] for x in p["part"] if x["name"] == "concept"))
            for p in answer["parameter"] if p["name"] == "match"]


def _ask(maps, **inputs) -> dict:
    return translate(maps, parse_translate({k: [v] for k, v in inputs.items()}))


def test_forward_reverse_and_result():
    assert _codes(_ask([_map()], system=A, code="x")) == [("wider", "X")]
    assert _codes(_ask([_map()], system=B, code="X", reverse="true")) == [("narrower", "x")]
    unmatched = _ask([_map()], system=A, code="y")
    assert _codes(unmatched) == [("unmatched", "y")] and unmatched["parameter"][0] == {"name": "result", "valueBoolean": False}


def test_unmapped_modes():
    assert _codes(_ask([_map(unmapped={"mode": "provided"})], system=A, code="q")) == [("equal", "q")]
    assert _codes(_ask([_map(unmapped={"mode": "fixed", "code": "F"})], system=A, code="q")) == [("equivalent", "F")]
    other = {"resourceType": "ConceptMap", "url": "http://m.example/2", "group": [
        {"source": A, "target": B, "element": [{"code": "q", "target": [{"code": "Q", "equivalence": "equal"}]}]}]}
    first = _map(unmapped={"mode": "other-map", "url": other["url"]})
    answer = _ask([first, other], system=A, code="q", url=first["url"])
    assert _codes(answer) == [("equal", "Q")]


def test_scope_and_target_system_filter_the_maps():
    scoped = _map(sourceUri="http://a.example/vs", targetUri="http://b.example/vs")
    assert _codes(_ask([scoped], system=A, code="x", source="http://a.example/vs")) == [("wider", "X")]
    assert _codes(_ask([scoped], system=A, code="x", target="http://other.example/vs")) == []
    assert _codes(_ask([scoped], system=A, code="x", targetsystem="http://c.example")) == []


@pytest.mark.parametrize("inputs", [
    {"code": ["x"]},  # no system
    {"system": [A]},  # nothing to translate
    {"system": [A], "code": ["x"], "coding": [{"system": A, "code": "x"}]},  # two of them
    {"coding": [{"code": "x"}]},  # a coding without system
    {"codeableConcept": [{"text": "no coding"}]},
    {"system": [A], "code": ["x"], "dependency": [{"name": "element"}]},
    {"system": [A], "code": ["x"], "reverse": ["yes"]},
    {"system": [A], "code": ["x", "y"]},
])
def test_bad_requests(inputs):
    with pytest.raises(BadRequest):
        parse_translate(inputs)
