"""Extensions (extensibility.html): where an extension may be used -- context types
element (a path or a type), extension (inside an extension with that url) and fhirpath
-- and its contextInvariants; extension definitions that refer to themselves or to
each other in a circle; unknown extensions."""

from __future__ import annotations

from fhir_server.conformance.structure import SD_PREFIX
from fhir_server.conformance.validator import Validator

EX = "http://acme.example.se/fhir/StructureDefinition/"


def extension(name: str, context: list[dict], elements: list[dict] = (), *, value: str | None = "string",
              base: str = SD_PREFIX + "Extension", **extra) -> dict:
    diff = [{"id": "Extension", "path": "Extension"},
            {"id": "Extension.url", "path": "Extension.url", "fixedUri": EX + name}, *elements]
    if value:
        diff.append({"id": "Extension.value[x]", "path": "Extension.value[x]", "type": [{"code": value}]})
    return {"resourceType": "StructureDefinition", "url": EX + name, "name": name.title(), "status": "active",
            "kind": "complex-type", "abstract": False, "type": "Extension", "baseDefinition": base,
            "derivation": "constraint", "context": context, "differential": {"element": diff}, **extra}


def ctx(kind: str, expression: str) -> dict:
    return {"type": kind, "expression": expression}


def errors(validator: Validator, resource: dict) -> dict[str, str]:
    return {i.expression: i.message for i in validator.validate(resource) if i.severity == "error"}


def ext(name: str, **value) -> dict:
    return {"url": EX + name, **(value or {"valueString": "x"})}


def test_element_contexts_name_paths_and_types():
    v = Validator([extension("on-name", [ctx("element", "HumanName")]),
                   extension("on-family", [ctx("element", "HumanName.family")]),
                   extension("on-patient", [ctx("element", "Patient")])])
    name = {"family": "A", "_family": {"extension": [ext("on-family")]}, "extension": [ext("on-name")]}
    assert errors(v, {"resourceType": "Patient", "name": [name], "extension": [ext("on-patient")]}) == {}
    wrong = {"resourceType": "Patient", "extension": [ext("on-name")], "name": [{"extension": [ext("on-patient")]}]}
    found = errors(v, wrong)
    assert set(found) == {"Patient.extension[0]", "Patient.name[0].extension[0]"}
    assert all("not allowed to be used at this point" in m for m in found.values())


def test_extension_context_allows_use_only_inside_that_extension():
    parent = extension("parent", [ctx("element", "Patient")], value=None)
    child = extension("child", [ctx("extension", EX + "parent")])
    v = Validator([parent, child])
    inside = {"resourceType": "Patient", "extension": [{"url": EX + "parent", "extension": [ext("child")]}]}
    assert errors(v, inside) == {}
    outside = {"resourceType": "Patient", "extension": [ext("child")]}
    assert "not allowed" in errors(v, outside)["Patient.extension[0]"]


def test_fhirpath_context_selects_the_elements_it_may_sit_on():
    v = Validator([extension("on-official", [ctx("fhirpath", "Patient.identifier.where(use = 'official')")])])
    good = {"resourceType": "Patient", "identifier": [{"use": "official", "value": "1", "extension": [ext("on-official")]}]}
    assert errors(v, good) == {}
    bad = {"resourceType": "Patient", "identifier": [{"use": "usual", "value": "1", "extension": [ext("on-official")]}]}
    assert set(errors(v, bad)) == {"Patient.identifier[0].extension[0]"}


def test_context_invariants_hold_on_the_element_the_extension_sits_on():
    v = Validator([extension("adults", [ctx("element", "Patient")], contextInvariant=["birthDate < @2010-01-01"])])
    assert errors(v, {"resourceType": "Patient", "birthDate": "1990-05-01", "extension": [ext("adults")]}) == {}
    found = errors(v, {"resourceType": "Patient", "birthDate": "2015-05-01", "extension": [ext("adults")]})
    assert "context invariant" in found["Patient.extension[0]"]


def test_an_extension_that_may_hold_itself_terminates_at_any_depth():
    nesting = extension("nest", [ctx("element", "Patient"), ctx("extension", EX + "nest")], value=None)
    v = Validator([nesting])
    deep: dict = {"url": EX + "nest", "extension": [{"url": EX + "nest", "extension": [
        {"url": EX + "nest", "extension": [{"url": EX + "other-thing", "valueString": "leaf"}]}]}]}
    assert errors(v, {"resourceType": "Patient", "extension": [deep]}) == {}
    # a nest with nothing inside breaks ext-1 (an extension has a value or extensions)
    empty = {"url": EX + "nest", "extension": [{"url": EX + "nest"}]}
    found = [i for i in v.validate({"resourceType": "Patient", "extension": [empty]}) if i.severity == "error"]
    assert [(i.expression, i.constraint) for i in found] == [("Patient.extension[0].extension[0]", "ext-1")]


def test_extension_definitions_derived_from_each_other_in_a_circle_are_errors_not_hangs():
    a = extension("circle-a", [ctx("element", "Patient")], base=EX + "circle-b")
    b = extension("circle-b", [ctx("element", "Patient")], base=EX + "circle-a")
    v = Validator([a, b])
    found = errors(v, {"resourceType": "Patient", "extension": [ext("circle-a")]})
    assert set(found) == {"Patient.extension[0]"}
    assert any("snapshot" in m for m in errors(v, a).values())


def test_unknown_extensions_are_noted_and_example_urls_refused():
    v = Validator()
    unknown = {"resourceType": "Patient", "extension": [{"url": "http://other.example.se/ext", "valueString": "x"}]}
    issues = v.validate(unknown)
    assert [i.severity for i in issues] == ["information"]
    example = {"resourceType": "Patient", "extension": [{"url": "http://example.org/ext", "valueString": "x"}]}
    assert errors(v, example)
    assert errors(Validator(allow_examples=True), example) == {}


def test_example_domains_and_oids_are_recognised():
    from fhir_server.conformance.validation.extensions import is_example_url

    assert all(is_example_url(u) for u in ("http://example.org/x", "https://fhir.example.com/x", "http://acme.org/ext",
                                           "http://example.net", "urn:oid:2.999.1.2"))
    assert not any(is_example_url(u) for u in ("http://hl7.org/fhir/x", "https://evi-fhir.org/fhir/x",
                                               "http://acme.example.se/x", "urn:oid:1.2.752.129.2.1.3.1"))


def test_modifier_extensions_sit_in_modifier_extension_and_only_they_do():
    refused = extension("refused", [ctx("element", "Patient")], value="boolean")
    refused["differential"]["element"][0]["isModifier"] = True
    refused["differential"]["element"][0]["isModifierReason"] = "Says the patient is not to be contacted"
    v = Validator([refused, extension("plain", [ctx("element", "Patient")])])
    mod = {"url": EX + "refused", "valueBoolean": True}
    assert errors(v, {"resourceType": "Patient", "modifierExtension": [mod], "extension": [ext("plain")]}) == {}
    found = errors(v, {"resourceType": "Patient", "extension": [mod], "modifierExtension": [ext("plain")]})
    assert "must be used as a modifierExtension" in found["Patient.extension[0]"]
    assert "not a modifier" in found["Patient.modifierExtension[0]"]


def _tree(name: str, child: str) -> dict:
    """A complex extension whose 'child' part is typed by the extension *child* (itself, or
    one that points back): a recursive definition."""
    return extension(name, [ctx("element", "Element")], [
        {"id": "Extension.extension:child", "path": "Extension.extension", "sliceName": "child", "max": "1",
         "type": [{"code": "Extension", "profile": [EX + child]}]},
        {"id": "Extension.extension:leaf", "path": "Extension.extension", "sliceName": "leaf", "max": "1"},
        {"id": "Extension.extension:leaf.url", "path": "Extension.extension.url", "fixedUri": "leaf"},
        {"id": "Extension.extension:leaf.value[x]", "path": "Extension.extension.value[x]",
         "type": [{"code": "string"}]},
        {"id": "Extension.value[x]", "path": "Extension.value[x]", "max": "0"}], value=None)


def test_recursive_extension_definitions_validate_each_level():
    v = Validator([_tree("tree", "tree"), _tree("ping", "pong"), _tree("pong", "ping")])
    leaf = lambda **x: {"url": "leaf", **(x or {"valueString": "x"})}  # noqa: E731
    ok = {"url": EX + "tree", "extension": [{"url": EX + "tree", "extension": [leaf()]}, leaf()]}
    assert errors(v, {"resourceType": "Patient", "extension": [ok]}) == {}
    bad = {"url": EX + "ping", "extension": [{"url": EX + "pong", "extension": [
        {"url": EX + "ping", "extension": [leaf(valueBoolean=True)]}]}]}
    found = errors(v, {"resourceType": "Patient", "extension": [bad]})
    assert set(found) == {"Patient.extension[0].extension[0].extension[0].extension[0].valueBoolean"}
    assert errors(v, _tree("tree", "tree")) == {}
