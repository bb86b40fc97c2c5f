"""Profiles that depend on definitions the validator does not hold (another IG's
profiles, extensions and value sets -- packages not loaded): what can be checked is,
what cannot is reported as such -- a claimed profile that is unavailable is a warning
and the base definition still applies, a profile asked for explicitly is an error, a
binding to an unknown value set is noted and its code not judged, an element typed by
an unknown profile is an error, an unknown target profile leaves the target unjudged."""

from __future__ import annotations

from fhir_server.conformance.structure import SD_PREFIX
from fhir_server.conformance.validator import Validator

OTHER_IG = "http://other-ig.example.se/fhir/StructureDefinition/"
OTHER_VS = "http://other-ig.example.se/fhir/ValueSet/marital"
EX = "http://acme.example.se/fhir/StructureDefinition/"


def sd(name: str, base: str, rtype: str, elements: list[dict]) -> dict:
    return {"resourceType": "StructureDefinition", "url": EX + name, "name": name.title(), "status": "active",
            "kind": "resource", "abstract": False, "type": rtype, "baseDefinition": base,
            "derivation": "constraint", "differential": {"element": elements}}


ON_OTHER_BASE = sd("on-other", OTHER_IG + "patient", "Patient",
                   [{"id": "Patient.birthDate", "path": "Patient.birthDate", "min": 1}])
USING_OTHER = sd("using-other", SD_PREFIX + "Patient", "Patient", [
    {"id": "Patient.maritalStatus", "path": "Patient.maritalStatus",
     "binding": {"strength": "required", "valueSet": OTHER_VS}},
    {"id": "Patient.managingOrganization", "path": "Patient.managingOrganization",
     "type": [{"code": "Reference", "targetProfile": [OTHER_IG + "organization"]}]},
    {"id": "Patient.photo", "path": "Patient.photo", "type": [{"code": "Attachment",
                                                                "profile": [OTHER_IG + "photo"]}]},
])


def validator() -> Validator:
    return Validator([ON_OTHER_BASE, USING_OTHER])


def by_severity(issues) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for i in issues:
        out.setdefault(i.severity, set()).add(i.expression)
    return out


def test_a_claimed_profile_that_is_unavailable_is_a_warning_and_the_base_still_applies():
    claimed = {"resourceType": "Patient", "meta": {"profile": [OTHER_IG + "patient"]}, "gender": "often"}
    found = by_severity(validator().validate(claimed))
    assert found["warning"] == {"Patient.meta.profile[0]"}
    assert found["error"] == {"Patient.gender"}


def test_a_profile_whose_base_is_unavailable_cannot_be_used():
    claimed = {"resourceType": "Patient", "meta": {"profile": [EX + "on-other"]}}
    assert by_severity(validator().validate(claimed)) == {"warning": {"Patient.meta.profile[0]"}}
    asked = validator().validate({"resourceType": "Patient"}, [EX + "on-other"])
    assert by_severity(asked) == {"error": {"Patient"}}
    own = [i for i in validator().validate(ON_OTHER_BASE) if i.severity == "error"]
    assert any(OTHER_IG + "patient" in i.message for i in own)


def test_a_profile_asked_for_explicitly_must_be_available():
    found = validator().validate({"resourceType": "Patient"}, [OTHER_IG + "patient"])
    assert by_severity(found) == {"error": {"Patient"}}


def test_bindings_and_target_profiles_from_elsewhere_are_not_judged():
    patient = {"resourceType": "Patient", "maritalStatus": {"coding": [{"system": "http://x.example.se/cs",
                                                                         "code": "Q"}]},
               "managingOrganization": {"reference": "Organization/1"}}
    found = by_severity(validator().validate(patient, [EX + "using-other"]))
    assert "error" not in found
    assert "Patient.maritalStatus" in found["warning"]


def test_an_element_typed_by_an_unavailable_profile_is_an_error():
    patient = {"resourceType": "Patient", "photo": [{"contentType": "image/png", "url": "http://x.example.se/a.png"}]}
    found = [i for i in validator().validate(patient, [EX + "using-other"]) if i.severity == "error"]
    assert [(i.expression, OTHER_IG + "photo" in i.message) for i in found] == [("Patient.photo[0]", True)]
