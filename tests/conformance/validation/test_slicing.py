"""Slicing (profiling.html#slicing, #discriminator) written from the specification:
each discriminator type -- value, pattern, exists, type, profile -- on its own and
combined, several slices of one element, an item that fits two slices, closed and
ordered rules, and discriminators a slice gives nothing to match on."""

from __future__ import annotations

from fhir_server.conformance.structure import SD_PREFIX
from fhir_server.conformance.validator import Validator

EX = "http://example.org/fhir/"
MRN, SSN = EX + "mrn", EX + "ssn"


def sd(name: str, base: str, elements: list[dict]) -> dict:
    return {"resourceType": "StructureDefinition", "url": EX + "StructureDefinition/" + name, "name": name.title(),
            "status": "active", "kind": "resource", "abstract": False, "type": base,
            "baseDefinition": SD_PREFIX + base, "derivation": "constraint", "differential": {"element": elements}}


def el(eid: str, **facts) -> dict:
    out = {"id": eid, "path": ".".join(p.split(":")[0] for p in eid.split(".")), **facts}
    if ":" in eid.rsplit(".", 1)[-1]:
        out["sliceName"] = eid.rsplit(":", 1)[1].split(".")[0]
    return out


def url(name: str) -> str:
    return EX + "StructureDefinition/" + name


def issues(profiles: list[dict], resource: dict, profile: str) -> dict[str, str]:
    found = Validator(profiles).validate(resource, [url(profile)])
    return {i.expression: i.message for i in found if i.severity == "error"}


IDENTIFIERS = sd("ids", "Patient", [
    el("Patient.identifier", slicing={"discriminator": [{"type": "value", "path": "system"},
                                                        {"type": "value", "path": "use"}], "rules": "closed"}),
    el("Patient.identifier:mrn", min=1, max="1"),
    el("Patient.identifier:mrn.system", fixedUri=MRN),
    el("Patient.identifier:mrn.use", fixedCode="usual"),
    el("Patient.identifier:old", min=0, max="*"),
    el("Patient.identifier:old.system", fixedUri=MRN),
    el("Patient.identifier:old.use", fixedCode="old"),
    el("Patient.identifier:ssn", min=1, max="1"),
    el("Patient.identifier:ssn.system", fixedUri=SSN),
    el("Patient.identifier:ssn.use", fixedCode="official"),
])


def ident(system: str, use: str, value: str = "1") -> dict:
    return {"system": system, "use": use, "value": value}


def test_several_slices_of_one_element_by_two_value_discriminators():
    ok = {"resourceType": "Patient", "identifier": [ident(MRN, "usual"), ident(MRN, "old"), ident(MRN, "old", "2"),
                                                    ident(SSN, "official")]}
    assert issues([IDENTIFIERS], ok, "ids") == {}
    # both discriminators must match: an MRN with use 'official' is in no slice (closed)
    found = issues([IDENTIFIERS], {**ok, "identifier": [ident(MRN, "usual"), ident(MRN, "official"),
                                                        ident(SSN, "official")]}, "ids")
    assert set(found) == {"Patient.identifier[1]"}
    # each slice's cardinality counts its own items only
    found = Validator([IDENTIFIERS]).validate({**ok, "identifier": [ident(MRN, "usual"), ident(MRN, "usual", "2")]},
                                              [url("ids")])
    assert sorted(i.message.split(":")[1] for i in found if i.severity == "error") == ["mrn", "ssn"]


PATTERN = sd("cat", "Observation", [
    el("Observation.category", slicing={"discriminator": [{"type": "pattern", "path": "$this"}], "rules": "open"}),
    el("Observation.category:lab", min=1, max="1",
       patternCodeableConcept={"coding": [{"system": EX + "cat", "code": "lab"}]}),
])
OBS = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}


def test_a_pattern_discriminator_matches_items_that_contain_the_pattern():
    fuller = {"coding": [{"system": EX + "other", "code": "z"}, {"system": EX + "cat", "code": "lab", "display": "Lab"}],
              "text": "Laboratory"}
    assert issues([PATTERN], {**OBS, "category": [fuller]}, "cat") == {}
    found = issues([PATTERN], {**OBS, "category": [{"coding": [{"system": EX + "cat", "code": "vital"}]}]}, "cat")
    assert set(found) == {"Observation.category"}


def test_an_item_that_fits_two_slices_is_an_error():
    twice = sd("twice", "Observation", [
        el("Observation.category", slicing={"discriminator": [{"type": "pattern", "path": "$this"}], "rules": "open"}),
        el("Observation.category:a", patternCodeableConcept={"coding": [{"system": EX + "cat", "code": "lab"}]}),
        el("Observation.category:b", patternCodeableConcept={"coding": [{"system": EX + "cat"}]}),
    ])
    found = issues([twice], {**OBS, "category": [{"coding": [{"system": EX + "cat", "code": "lab"}]}]}, "twice")
    assert "more than one slice" in found["Observation.category[0]"]


def test_exists_discriminator_with_required_and_forbidden_paths():
    profile = sd("comp", "Observation", [
        el("Observation.component", slicing={"discriminator": [{"type": "exists", "path": "value"}],
                                             "rules": "closed"}),
        el("Observation.component:measured", min=1),
        el("Observation.component:measured.value[x]", min=1),
        el("Observation.component:absent", max="1"),
        el("Observation.component:absent.value[x]", max="0"),
        el("Observation.component:absent.dataAbsentReason", min=1),
    ])
    comp = lambda **x: {"code": {"text": "c"}, **x}  # noqa: E731
    ok = {**OBS, "component": [comp(valueString="1"), comp(dataAbsentReason={"text": "asked"})]}
    assert issues([profile], ok, "comp") == {}
    found = issues([profile], {**OBS, "component": [comp(), comp(dataAbsentReason={"text": "a"})]}, "comp")
    assert "Observation.component" in found                          # 'measured' needs one
    assert "Observation.component[0].dataAbsentReason" in found        # the first is 'absent' too


def test_type_discriminator_on_a_resource_element_and_on_a_choice():
    profile = sd("tx", "Bundle", [
        el("Bundle.entry", slicing={"discriminator": [{"type": "type", "path": "resource"}], "rules": "closed"}),
        el("Bundle.entry:patient", min=1, max="1"),
        el("Bundle.entry:patient.resource", type=[{"code": "Patient"}]),
        el("Bundle.entry:obs", min=0, max="*"),
        el("Bundle.entry:obs.resource", type=[{"code": "Observation"}]),
    ])
    entry = lambda n, res: {"fullUrl": f"urn:uuid:{n:08d}-0000-4000-8000-000000000000", "resource": res}  # noqa: E731
    pat = {"resourceType": "Patient"}
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [entry(1, pat), entry(2, OBS), entry(3, OBS)]}
    assert issues([profile], bundle, "tx") == {}
    found = issues([profile], {**bundle, "entry": [entry(2, OBS), entry(4, {"resourceType": "Location"})]}, "tx")
    assert set(found) == {"Bundle.entry", "Bundle.entry[1]"}
    choice = sd("val", "Observation", [
        el("Observation.value[x]", slicing={"discriminator": [{"type": "type", "path": "$this"}], "rules": "closed"}),
        el("Observation.value[x]:valueString", type=[{"code": "string"}], maxLength=3),
    ])
    assert issues([choice], {**OBS, "valueString": "abc"}, "val") == {}
    assert set(issues([choice], {**OBS, "valueString": "abcd"}, "val")) == {"Observation.valueString"}
    assert set(issues([choice], {**OBS, "valueBoolean": True}, "val")) == {"Observation.valueBoolean"}


def test_profile_discriminator_places_items_by_conformance():
    named = sd("named", "Patient", [el("Patient.name", min=1)])
    profile = sd("coll", "Bundle", [
        el("Bundle.entry", slicing={"discriminator": [{"type": "profile", "path": "resource"}], "rules": "closed"}),
        el("Bundle.entry:named", min=1, max="1"),
        el("Bundle.entry:named.resource", type=[{"code": "Patient", "profile": [url("named")]}]),
    ])
    entry = lambda n, res: {"fullUrl": f"urn:uuid:{n:08d}-0000-4000-8000-000000000000", "resource": res}  # noqa: E731
    ok = {"resourceType": "Bundle", "type": "collection", "entry": [entry(1, {"resourceType": "Patient",
                                                                               "name": [{"text": "A"}]})]}
    assert issues([named, profile], ok, "coll") == {}
    found = issues([named, profile], {**ok, "entry": [entry(1, {"resourceType": "Patient"})]}, "coll")
    assert set(found) == {"Bundle.entry", "Bundle.entry[0]"}


def test_a_discriminator_the_slice_sets_nothing_for_cannot_be_evaluated():
    vague = sd("vague", "Patient", [
        el("Patient.identifier", slicing={"discriminator": [{"type": "value", "path": "system"}], "rules": "open"}),
        el("Patient.identifier:any", min=0, max="1"),
    ])
    found = issues([vague], {"resourceType": "Patient", "identifier": [ident(MRN, "usual")]}, "vague")
    assert "cannot be evaluated" in found["Patient.identifier[0]"]
    assert issues([vague], {"resourceType": "Patient"}, "vague") == {}   # nothing to place: nothing to say
    # the value may be fixed in a type profile that is not available: not judged
    elsewhere = sd("elsewhere", "Patient", [
        el("Patient.identifier", slicing={"discriminator": [{"type": "value", "path": "system"}], "rules": "open"}),
        el("Patient.identifier:other", type=[{"code": "Identifier", "profile": [EX + "unavailable/identifier"]}]),
    ])
    found = issues([elsewhere], {"resourceType": "Patient", "identifier": [ident(MRN, "usual")]}, "elsewhere")
    assert not any("cannot be evaluated" in m for m in found.values())


def test_ordered_slicing_keeps_the_slices_order():
    profile = sd("ord", "Patient", [
        el("Patient.identifier", slicing={"discriminator": [{"type": "value", "path": "system"}], "rules": "open",
                                          "ordered": True}),
        el("Patient.identifier:mrn"), el("Patient.identifier:mrn.system", fixedUri=MRN),
        el("Patient.identifier:ssn"), el("Patient.identifier:ssn.system", fixedUri=SSN),
    ])
    assert issues([profile], {"resourceType": "Patient", "identifier": [ident(MRN, "usual"), ident(SSN, "usual")]},
                  "ord") == {}
    found = issues([profile], {"resourceType": "Patient", "identifier": [ident(SSN, "usual"), ident(MRN, "usual")]},
                   "ord")
    assert "out of order" in found["Patient.identifier[1]"]


def test_a_type_discriminator_needs_the_slice_to_name_one_type():
    loose = sd("loose", "Observation", [
        el("Observation.component", slicing={"discriminator": [{"type": "type", "path": "value"}], "rules": "open"}),
        el("Observation.component:any", max="1"),
    ])
    obs = {**OBS, "component": [{"code": {"text": "c"}, "valueString": "x"}]}
    assert "cannot be evaluated" in issues([loose], obs, "loose")["Observation.component[0]"]
