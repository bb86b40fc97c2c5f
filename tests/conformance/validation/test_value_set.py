"""ValueSet definitions (valueset.html#compose) as the validator checks them: include
systems are absolute code-system URIs, listed concepts exist in a complete code
system held here, unknown imports are noted, never judged."""

from __future__ import annotations

from fhir_server.conformance.validator import Validator

CS = "http://example.org/fhir/CodeSystem/shape"
OTHER_VS = "http://example.org/fhir/ValueSet/other"
SHAPES = {"resourceType": "CodeSystem", "url": CS, "status": "active", "content": "complete",
          "concept": [{"code": "round", "concept": [{"code": "oval"}]}, {"code": "square"}]}
PARTIAL = {**SHAPES, "url": CS + "-fragment", "content": "fragment"}
SUPPLEMENT = {**SHAPES, "url": CS + "-supplement", "content": "supplement", "supplements": CS}
IMPORTED = {"resourceType": "ValueSet", "url": OTHER_VS, "status": "active", "compose": {"include": [{"system": CS}]}}


def value_set(*includes: dict, exclude: tuple = ()) -> dict:
    compose = {"include": list(includes)}
    if exclude:
        compose["exclude"] = list(exclude)
    return {"resourceType": "ValueSet", "url": "http://example.org/fhir/ValueSet/vs", "status": "active",
            "compose": compose}


def issues(vs: dict, severity: str = "error") -> dict[str, str]:
    v = Validator([SHAPES, PARTIAL, SUPPLEMENT, IMPORTED])
    return {i.expression: i.message for i in v.validate(vs) if i.severity == severity}


def test_concepts_of_a_complete_code_system_are_checked_nested_ones_included():
    assert issues(value_set({"system": CS, "concept": [{"code": "oval"}, {"code": "square"}]})) == {}
    found = issues(value_set({"system": CS, "concept": [{"code": "round"}, {"code": "triangle"}]},
                             exclude=({"system": CS, "concept": [{"code": "hexagon"}]},)))
    assert set(found) == {"ValueSet.compose.include[0].concept[1]", "ValueSet.compose.exclude[0].concept[0]"}
    assert "triangle" in found["ValueSet.compose.include[0].concept[1]"]


def test_codes_of_systems_not_held_in_full_are_not_judged():
    assert issues(value_set({"system": CS + "-fragment", "concept": [{"code": "triangle"}]})) == {}
    assert issues(value_set({"system": "http://snomed.info/sct", "concept": [{"code": "12345"}]})) == {}


def test_include_system_must_be_an_absolute_code_system_uri():
    found = issues(value_set({"system": "#shapes"}, {"system": "shapes"}, {"system": OTHER_VS},
                             {"system": CS + "-supplement"}, {"system": CS + "|2.0"}))
    assert set(found) == {f"ValueSet.compose.include[{n}].system" for n in range(5)}
    assert "fragment" in found["ValueSet.compose.include[0].system"]
    assert "value set" in found["ValueSet.compose.include[2].system"]
    assert "supplement" in found["ValueSet.compose.include[3].system"]
    assert "include.version" in found["ValueSet.compose.include[4].system"]
    assert set(issues(value_set({"system": CS + "|"}), "warning")) == {"ValueSet.compose.include[0].system"}
    assert issues(value_set({"system": CS + "|"})) == {}


def test_imports_of_unknown_value_sets_are_warned_known_ones_pass():
    vs = value_set({"valueSet": [OTHER_VS]}, {"valueSet": ["http://example.org/fhir/ValueSet/nowhere"]})
    assert issues(vs) == {}
    assert set(issues(vs, "warning")) == {"ValueSet.compose.include[1].valueSet[0]"}
