"""JSON kinds of element values and string content (model/primitives.py)."""

import pytest

from fhir_server.errors import InvalidResource
from fhir_server.model import validate_resource
from fhir_server.model.primitives import InvariantSites, check_primitive_kinds

OBS = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}


def _expressions(resource: dict) -> list[str]:
    return [e for issue in check_primitive_kinds(resource) for e in issue.expression]


@pytest.mark.parametrize(
    "resource, expression",
    [
        # fhir.resources json-decodes these strings into models: the JSON format forbids them
        ({**OBS, "code": '{"text": "x"}'}, "Observation.code"),
        ({**OBS, "subject": '{"reference": "Patient/1"}'}, "Observation.subject"),
        ({"resourceType": "Patient", "identifier": ["{}"]}, "Patient.identifier[0]"),
        ({"resourceType": "Patient", "name": [{"period": "{}"}]}, "Patient.name[0].period"),
        ({**OBS, "valueQuantity": '{"value": 1}'}, "Observation.valueQuantity"),  # a choice type
        ({**OBS, "component": [{"code": {"text": "c"}, "valueCodeableConcept": "[]"}]},
         "Observation.component[0].valueCodeableConcept"),  # a backbone element
        ({"resourceType": "Patient", "_birthDate": '{"id": "a"}'}, "Patient.birthDate"),
        ({"resourceType": "Patient", "name": [["nested"]]}, "Patient.name[0]"),
        ({"resourceType": "Patient", "identifier": [5]}, "Patient.identifier[0]"),
        ({"resourceType": "Patient", "identifier": [True]}, "Patient.identifier[0]"),
    ],
)
def test_a_complex_element_must_be_a_json_object(resource, expression):
    assert expression in _expressions(resource)
    with pytest.raises(InvalidResource) as info:
        validate_resource(resource)
    assert info.value.status == 400


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x0e", "\x1b", "\x1f"])
@pytest.mark.parametrize(
    "make, expression",
    [
        (lambda s: {"resourceType": "Patient", "name": [{"family": f"a{s}b"}]}, "Patient.name[0].family"),
        (lambda s: {"resourceType": "Patient", "name": [{"given": ["ok", f"x{s}"]}]}, "Patient.name[0].given[1]"),
        (lambda s: {"resourceType": "Patient", "gender": f"male{s}"}, "Patient.gender"),  # code
        (lambda s: {"resourceType": "Patient", "extension": [{"url": f"http://x{s}", "valueBoolean": True}]},
         "Patient.extension[0].url"),
        (lambda s: {"resourceType": "Patient", "text": {"status": "generated",
                    "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{s}</div>'}}, "Patient.text.div"),
        (lambda s: {**OBS, "valueString": s + "x"}, "Observation.valueString"),
        (lambda s: {"resourceType": "Patient", "name": [{"_family": {"id": f"i{s}"}}]}, "Patient.name[0].family.id"),
    ],
)
def test_control_characters_are_refused_in_every_string_based_primitive(char, make, expression):
    resource = make(char)
    assert expression in _expressions(resource)
    with pytest.raises(InvalidResource) as info:
        validate_resource(resource)
    assert f"U+{ord(char):04X}" in info.value.issues[0].diagnostics


@pytest.mark.parametrize("text", ["tab\there", "line\nbreak", "cr\r\nlf", "åäö ✓ \u007f \u00a0 \U0001f600"])
def test_tab_cr_lf_and_other_unicode_are_allowed(text):
    assert check_primitive_kinds({"resourceType": "Patient", "name": [{"family": text}]}) == []


def test_nested_resources_are_walked():
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": {"resourceType": "Patient", "identifier": ["{}"]}}]}
    assert "Bundle.entry[0].resource.identifier[0]" in _expressions(bundle)


@pytest.mark.parametrize(
    "extension",
    [
        {"url": "http://x", "valueString": "a", "extension": [{"url": "y", "valueString": "b"}]},
        {"url": "http://x"},
        {"url": "http://x", "_valueString": {"id": "a"}},
    ],
)
def test_ext_1_an_extension_has_a_value_or_extensions(extension):
    for resource, where in (
        ({"resourceType": "Patient", "extension": [extension]}, "Patient.extension[0]"),
        ({"resourceType": "Patient", "name": [{"family": "x", "extension": [extension]}]}, "Patient.name[0].extension[0]"),
        ({"resourceType": "Patient", "_birthDate": {"extension": [extension]}}, "Patient.birthDate.extension[0]"),
    ):
        assert where in _expressions(resource)
        with pytest.raises(InvalidResource, match="ext-1"):
            validate_resource(resource)


def test_ext_1_holds_for_values_and_nested_extensions():
    resource = {"resourceType": "Patient", "extension": [
        {"url": "http://x", "valueCodeableConcept": {"text": "a"}},
        {"url": "http://y", "extension": [{"url": "z", "valueBoolean": True}]},
    ]}
    assert check_primitive_kinds(resource) == []


def test_ele_1_an_element_has_more_than_an_id():
    assert "Observation.code" in _expressions({**OBS, "code": {"id": "a"}})
    with pytest.raises(InvalidResource, match="ele-1"):
        validate_resource({**OBS, "code": {"id": "a"}})
    # a primitive's '_' part may hold just its id next to the value
    assert check_primitive_kinds({"resourceType": "Patient", "birthDate": "2000", "_birthDate": {"id": "a"}}) == []


class _Watch(dict):
    def __missing__(self, type_name):
        return None


def _sites(resource: dict, watch: dict) -> list:
    sites = InvariantSites(_Watch(watch))
    assert check_primitive_kinds(resource, sites) == []
    return sites.found


def test_the_walk_notes_where_a_watched_rule_applies():
    watch = {
        "Period": ((("both", (frozenset({"start"}), frozenset({"end"})), (), None),), frozenset({"start", "end"})),
        "Patient.contact": ((("unless-named", (), ((frozenset({"name"}),),), None),), None),
        "Reference": ((("local", (frozenset({"reference"}),), (), lambda r: r["reference"].startswith("#")),),
                      frozenset({"reference"})),
    }
    patient = {"resourceType": "Patient",
               "name": [{"period": {"start": "2020"}}, {"period": {"start": "2020", "end": "2021"}}],
               "contact": [{"name": {"family": "x"}}, {"gender": "male"}],
               "managingOrganization": {"reference": "#o"}, "generalPractitioner": [{"reference": "Practitioner/1"}]}
    found = _sites(patient, watch)
    assert [(s.rule, s.path) for s in found] == [
        ("both", "Patient.name[1].period"), ("unless-named", "Patient.contact[1]"), ("local", "Patient.managingOrganization")]
    assert all(s.resource is patient and s.root is patient and s.bundle is None for s in found)


def test_sites_know_the_resources_around_them():
    watch = {"Reference": ((("any", (frozenset({"reference"}),), (), None),), frozenset({"reference"}))}
    inner = {"resourceType": "Patient", "id": "p", "managingOrganization": {"reference": "#o"}}
    container = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "contained": [inner]}
    [site] = _sites(container, watch)
    assert (site.path, site.resource, site.root, site.bundle) == (
        "Observation.contained[0].managingOrganization", inner, container, None)
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": container}]}
    [site] = _sites(bundle, watch)
    assert (site.resource, site.root, site.bundle) == (inner, container, bundle)  # an entry is its own root
