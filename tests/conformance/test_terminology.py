"""conformance/terminology.py: expansion, lookup and validate-code over plain dicts,
with the guide's own CodeSystems and a small hierarchical one."""

import pytest

from fhir_server.conformance import ig_directory, ig_resources
from fhir_server.conformance.parameters import ExpandRequest, LookupRequest, ValidateCodeRequest
from fhir_server.conformance.terminology import expand, lookup, validate_code, value_set_concepts
from fhir_server.errors import Unprocessable

EVI = "https://evi-fhir.org/fhir"
TRIAGE_CS, TRIAGE_VS = f"{EVI}/CodeSystem/evi-triage-outcome", f"{EVI}/ValueSet/evi-triage-outcome"
ORG_CS = f"{EVI}/CodeSystem/evi-organization-type"
ANIMALS = "urn:test:animals"

#: animal > mammal > (dog > puppy, cat), animal > bird; "fish" hangs under animal by a parent property
ANIMAL_CS = {
    "resourceType": "CodeSystem", "url": ANIMALS, "version": "2", "name": "Animals", "status": "active",
    "content": "complete", "language": "en", "hierarchyMeaning": "is-a",
    "property": [{"code": "legs", "type": "integer"}, {"code": "parent", "type": "code"},
                 {"code": "status", "type": "code"}],
    "concept": [
        {"code": "animal", "display": "Animal", "property": [{"code": "notSelectable", "valueBoolean": True}], "concept": [
            {"code": "mammal", "display": "Mammal", "concept": [
                {"code": "dog", "display": "Dog", "designation": [{"language": "sv", "value": "Hund"}],
                 "property": [{"code": "legs", "valueInteger": 4}], "concept": [
                    {"code": "puppy", "display": "Puppy", "property": [{"code": "legs", "valueInteger": 4}]}]},
                {"code": "cat", "display": "Cat", "designation": [{"language": "sv", "value": "Katt"}],
                 "property": [{"code": "legs", "valueInteger": 4}]},
            ]},
            {"code": "bird", "display": "Bird", "property": [{"code": "legs", "valueInteger": 2}]},
        ]},
        {"code": "fish", "display": "Fish", "property": [{"code": "parent", "valueCode": "animal"}]},
        {"code": "dodo", "display": "Dodo bird", "property": [{"code": "status", "valueCode": "retired"},
                                                              {"code": "legs", "valueInteger": 2}]},
    ],
}


def _vs(*include, exclude=(), url="urn:test:vs") -> dict:
    compose = {"include": list(include)}
    if exclude:
        compose["exclude"] = list(exclude)
    return {"resourceType": "ValueSet", "url": url, "status": "active", "compose": compose}


@pytest.fixture
def resolve():
    known = {(r["resourceType"], r.get("url")): r for r in ig_resources(ig_directory())}
    known[("CodeSystem", ANIMALS)] = ANIMAL_CS

    def resolve(resource_type, url, version=None):
        found = known.get((resource_type, url))
        return found if found is not None and (version is None or found.get("version") == version) else None

    resolve.known = known
    return resolve


def codes(vs, resolve, **request) -> list[str]:
    out = expand(vs, resolve, ExpandRequest(**request), identifier="urn:uuid:x", timestamp="2026-01-01T00:00:00Z")
    return [c["code"] for c in out["expansion"].get("contains", ())]


# ------------------------------------------------------------------ expand


def test_guide_value_set_expands_to_its_code_system_with_swedish_displays(resolve):
    vs = resolve("ValueSet", TRIAGE_VS)
    out = expand(vs, resolve, ExpandRequest(), identifier="urn:uuid:1", timestamp="2026-01-01T00:00:00Z")
    expansion = out["expansion"]
    assert expansion["total"] == 7 and len(expansion["contains"]) == 7
    assert expansion["identifier"] == "urn:uuid:1" and expansion["timestamp"] == "2026-01-01T00:00:00Z"
    first = expansion["contains"][0]
    assert (first["system"], first["code"], first["display"]) == (TRIAGE_CS, "advice", "Rådgivning")
    assert "compose" not in out and out["url"] == TRIAGE_VS
    assert {"name": "used-codesystem", "valueUri": f"{TRIAGE_CS}|0.1.0"} in expansion["parameter"]


def test_display_language_picks_the_english_designation(resolve):
    out = expand(resolve("ValueSet", TRIAGE_VS), resolve, ExpandRequest(display_language="en-GB"),
                 identifier="u", timestamp="t")
    assert out["expansion"]["contains"][0]["display"] == "Advice given"


def test_include_definition_and_designations(resolve):
    vs = resolve("ValueSet", TRIAGE_VS)
    out = expand(vs, resolve, ExpandRequest(include_definition=True, include_designations=True), identifier="u", timestamp="t")
    assert out["compose"] == vs["compose"]
    assert out["expansion"]["contains"][0]["designation"] == [{"language": "en", "value": "Advice given"}]


def test_listed_concepts_take_their_display_from_the_code_system(resolve):
    vs = _vs({"system": ANIMALS, "concept": [{"code": "cat"}, {"code": "dog", "display": "Doggo"}]})
    out = expand(vs, resolve, ExpandRequest(), identifier="u", timestamp="t")
    assert [(c["code"], c["display"], c["version"]) for c in out["expansion"]["contains"]] == [
        ("cat", "Cat", "2"), ("dog", "Doggo", "2")]


def test_listed_code_missing_from_a_complete_code_system_is_an_error(resolve):
    with pytest.raises(Unprocessable, match="does not define"):
        codes(_vs({"system": ANIMALS, "concept": [{"code": "unicorn"}]}), resolve)


def test_listed_codes_of_an_unknown_system_are_taken_as_given(resolve):
    vs = _vs({"system": "urn:elsewhere", "concept": [{"code": "a", "display": "A"}]})
    assert codes(vs, resolve) == ["a"]


def test_whole_unknown_code_system_cannot_be_expanded(resolve):
    with pytest.raises(Unprocessable, match="does not hold"):
        codes(_vs({"system": "urn:elsewhere"}), resolve)


@pytest.mark.parametrize("op,value,expected", [
    ("is-a", "mammal", ["mammal", "dog", "puppy", "cat"]),
    ("descendent-of", "mammal", ["dog", "puppy", "cat"]),
    ("descendent-of", "animal", ["mammal", "dog", "puppy", "cat", "bird", "fish"]),  # fish: by parent property
    ("is-a", "unknown", []),
    ("generalizes", "puppy", ["animal", "mammal", "dog", "puppy"]),
    ("is-not-a", "mammal", ["animal", "bird", "fish", "dodo"]),
])
def test_hierarchy_filters(resolve, op, value, expected):
    assert codes(_vs({"system": ANIMALS, "filter": [{"property": "concept", "op": op, "value": value}]}), resolve) == expected


@pytest.mark.parametrize("flt,expected", [
    ({"property": "legs", "op": "=", "value": "2"}, ["bird", "dodo"]),
    ({"property": "legs", "op": "in", "value": "2, 4"}, ["dog", "puppy", "cat", "bird", "dodo"]),
    ({"property": "legs", "op": "not-in", "value": "4"}, ["animal", "mammal", "bird", "fish", "dodo"]),
    ({"property": "code", "op": "regex", "value": "d.*"}, ["dog", "dodo"]),
    ({"property": "legs", "op": "exists", "value": "false"}, ["animal", "mammal", "fish"]),
])
def test_property_filters(resolve, flt, expected):
    assert codes(_vs({"system": ANIMALS, "filter": [flt]}), resolve) == expected


def test_filters_in_one_include_are_and_ed(resolve):
    include = {"system": ANIMALS, "filter": [{"property": "concept", "op": "is-a", "value": "mammal"},
                                             {"property": "legs", "op": "=", "value": "4"}]}
    assert codes(_vs(include), resolve) == ["dog", "puppy", "cat"]


def test_unsupported_filter_operator(resolve):
    with pytest.raises(Unprocessable, match="not supported"):
        codes(_vs({"system": ANIMALS, "filter": [{"property": "concept", "op": "child-of", "value": "x"}]}), resolve)


def test_exclude_and_nested_value_sets(resolve):
    mammals = _vs({"system": ANIMALS, "filter": [{"property": "concept", "op": "is-a", "value": "mammal"}]}, url="urn:test:mammals")
    resolve.known[("ValueSet", "urn:test:mammals")] = mammals
    no_puppies = _vs({"valueSet": ["urn:test:mammals"]}, exclude=[{"system": ANIMALS, "concept": [{"code": "puppy"}]}])
    assert codes(no_puppies, resolve) == ["mammal", "dog", "cat"]
    # system and valueSet in one include intersect
    legs4 = _vs({"system": ANIMALS, "filter": [{"property": "legs", "op": "=", "value": "4"}], "valueSet": ["urn:test:mammals"]})
    assert codes(legs4, resolve) == ["dog", "puppy", "cat"]
    # several includes are united, each code once
    assert codes(_vs({"valueSet": ["urn:test:mammals"]}, {"system": ANIMALS, "concept": [{"code": "cat"}, {"code": "bird"}]}),
                 resolve) == ["mammal", "dog", "puppy", "cat", "bird"]


def test_a_value_set_that_includes_itself_is_an_error(resolve):
    resolve.known[("ValueSet", "urn:test:loop")] = _vs({"valueSet": ["urn:test:loop"]}, url="urn:test:loop")
    with pytest.raises(Unprocessable, match="includes itself"):
        codes(resolve("ValueSet", "urn:test:loop"), resolve)


def test_unknown_nested_value_set_is_an_error(resolve):
    with pytest.raises(Unprocessable, match="does not hold"):
        codes(_vs({"valueSet": ["urn:test:nowhere"]}), resolve)


def test_text_filter_matches_word_starts_of_display_and_designations(resolve):
    vs = resolve("ValueSet", TRIAGE_VS)
    assert codes(vs, resolve, filter="primärv") == ["refer-primary-care"]
    assert codes(vs, resolve, filter="PRIMARY care") == ["refer-primary-care"]  # the English designation
    assert codes(vs, resolve, filter="rimär") == []  # not a word start
    assert codes(_vs({"system": ANIMALS}), resolve, filter="hun") == ["dog"]


def test_paging_with_count_and_offset(resolve):
    vs = _vs({"system": ANIMALS})
    out = expand(vs, resolve, ExpandRequest(offset=2, count=3), identifier="u", timestamp="t")
    assert out["expansion"]["total"] == 8 and out["expansion"]["offset"] == 2
    assert [c["code"] for c in out["expansion"]["contains"]] == ["dog", "puppy", "cat"]
    empty = expand(vs, resolve, ExpandRequest(count=0), identifier="u", timestamp="t")["expansion"]
    assert empty["total"] == 8 and "contains" not in empty
    assert codes(vs, resolve, offset=7) == ["dodo"]


def test_active_only_drops_retired_concepts_and_inactive_is_marked(resolve):
    vs = _vs({"system": ANIMALS})
    assert "dodo" not in codes(vs, resolve, active_only=True)
    contains = expand(vs, resolve, ExpandRequest(), identifier="u", timestamp="t")["expansion"]["contains"]
    assert [c for c in contains if c["code"] == "dodo"][0]["inactive"] is True
    assert [c for c in contains if c["code"] == "animal"][0]["abstract"] is True


def test_exclude_system_parameter(resolve):
    vs = _vs({"system": ANIMALS}, {"system": TRIAGE_CS})
    assert codes(vs, resolve, exclude_systems=(ANIMALS,)) == codes(resolve("ValueSet", TRIAGE_VS), resolve)


def test_a_pre_expanded_value_set_without_compose(resolve):
    vs = {"resourceType": "ValueSet", "url": "urn:x", "status": "active", "expansion": {
        "timestamp": "2020-01-01", "contains": [{"system": "urn:s", "code": "a", "contains": [{"system": "urn:s", "code": "b"}]}]}}
    assert [c.code for c in value_set_concepts(vs, resolve)] == ["a", "b"]


# ------------------------------------------------------------------ lookup


def _params(parameters: dict) -> dict[str, list]:
    out = {}
    for p in parameters["parameter"]:
        out.setdefault(p["name"], []).append(p)
    return out


def _properties(parameters: dict) -> dict[str, list]:
    out = {}
    for p in _params(parameters).get("property", ()):
        parts = {q["name"]: q for q in p["part"]}
        value = next(v for k, v in parts["value"].items() if k.startswith("value"))
        out.setdefault(parts["code"]["valueCode"], []).append(value)
    return out


def test_lookup_of_an_organisation_type_returns_its_principal(resolve):
    cs = resolve("CodeSystem", ORG_CS)
    out = lookup(cs, "sis-home", LookupRequest(ORG_CS, "sis-home"))
    p = _params(out)
    assert p["display"][0]["valueString"] == "SiS särskilt ungdomshem"
    assert p["version"][0]["valueString"] == "0.1.0"
    assert p["name"][0]["valueString"] == cs["title"]
    designation = {q["name"]: q for q in p["designation"][0]["part"]}
    assert designation["language"]["valueCode"] == "en" and designation["value"]["valueString"] == "SiS special youth home"
    props = _properties(out)
    assert props["principal"] == ["state"]
    assert props["definition"] == ["Särskilt ungdomshem inom Statens institutionsstyrelse (SiS)."]


def test_lookup_returns_only_the_requested_properties_and_the_hierarchy(resolve):
    out = lookup(ANIMAL_CS, "dog", LookupRequest(ANIMALS, "dog", properties=("parent", "child")))
    assert _properties(out) == {"parent": ["mammal"], "child": ["puppy"]}
    assert "designation" not in _params(out)
    english = lookup(ANIMAL_CS, "dog", LookupRequest(ANIMALS, "dog", display_language="sv"))
    assert _params(english)["display"][0]["valueString"] == "Hund"


def test_lookup_of_an_unknown_code_is_none(resolve):
    assert lookup(ANIMAL_CS, "unicorn", LookupRequest(ANIMALS, "unicorn")) is None


# ------------------------------------------------------------------ validate-code


def _result(parameters: dict) -> tuple[bool, str | None, str | None]:
    p = {x["name"]: next(v for k, v in x.items() if k.startswith("value")) for x in parameters["parameter"]}
    return p["result"], p.get("message"), p.get("display")


def check(target, resolve, *codings, **request):
    return _result(validate_code(target, resolve, ValidateCodeRequest(codings=codings, **request)))


def test_validate_code_in_a_value_set(resolve):
    vs = resolve("ValueSet", TRIAGE_VS)
    assert check(vs, resolve, (TRIAGE_CS, "advice", None, None)) == (True, None, "Rådgivning")
    assert check(vs, resolve, (TRIAGE_CS, "advice", None, "Advice given"))[0] is True  # a designation is a valid display
    assert check(vs, resolve, (TRIAGE_CS, "advice", None, "rådgivning"))[0] is True


def test_validate_code_failures_say_why(resolve):
    vs = resolve("ValueSet", TRIAGE_VS)
    ok, message, display = check(vs, resolve, (TRIAGE_CS, "advice", None, "Something else"))
    assert not ok and "not a valid display" in message and display == "Rådgivning"
    ok, message, _ = check(vs, resolve, (TRIAGE_CS, "nope", None, None))
    assert not ok and "not defined by" in message
    ok, message, _ = check(vs, resolve, (ORG_CS, "sis-home", None, None))
    assert not ok and "is not in ValueSet" in message
    ok, message, _ = check(vs, resolve, (TRIAGE_CS, "advice", "9.9", None))
    assert not ok and "version" in message


def test_validate_a_codeable_concept_one_coding_suffices(resolve):
    vs = resolve("ValueSet", TRIAGE_VS)
    assert check(vs, resolve, ("urn:other", "x", None, None), (TRIAGE_CS, "advice", None, None))[0] is True
    ok, message, _ = check(vs, resolve, ("urn:other", "x", None, None), (TRIAGE_CS, "nope", None, None))
    assert not ok and "urn:other#x" in message and "nope" in message


def test_validate_code_against_a_code_system(resolve):
    assert check(ANIMAL_CS, resolve, (None, "cat", None, "Katt")) == (True, None, "Cat")
    assert check(ANIMAL_CS, resolve, (ANIMALS, "unicorn", None, None))[0] is False
    assert check(ANIMAL_CS, resolve, ("urn:other", "cat", None, None))[0] is False
    # abstract concepts: valid unless the client says abstract codes are not allowed
    assert check(ANIMAL_CS, resolve, (ANIMALS, "animal", None, None))[0] is True
    assert check(ANIMAL_CS, resolve, (ANIMALS, "animal", None, None), abstract=False)[0] is False
