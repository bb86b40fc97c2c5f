"""The profile validator (fhir_server.conformance.validator) on hand-written profiles.

Each rule family has its own small differential: cardinality, types and target
profiles, fixed and pattern values, required/extensible bindings against local value
sets (and their expansion), FHIRPath invariants, slicing by value / pattern / type /
profile / exists, extensions (slices, url, context, value types), Bundles and
contained resources, QuestionnaireResponses against their Questionnaire, and
StructureDefinitions themselves.  Nothing here needs ../shared/fhir-spec.
"""

from __future__ import annotations

import copy
import random
import time

import pytest

from fhir_server.conformance.structure import SD_PREFIX
from fhir_server.conformance.validator import ValidationIssue, Validator, local_value_sets

EX = "http://example.org/fhir/"
CS = EX + "CodeSystem/colour"
VS = EX + "ValueSet/colour"


def sd(name: str, base: str, elements: list[dict], **extra) -> dict:
    kind = extra.pop("kind", "resource")
    return {"resourceType": "StructureDefinition", "url": EX + "StructureDefinition/" + name, "name": name,
            "status": "active", "kind": kind, "abstract": False, "type": extra.pop("type", base),
            "baseDefinition": extra.pop("base_url", SD_PREFIX + base), "derivation": "constraint",
            "differential": {"element": elements}, **extra}


def el(eid: str, **facts) -> dict:
    path = ".".join(part.split(":")[0] for part in eid.split("."))
    out = {"id": eid, "path": path, **facts}
    last = eid.rsplit(".", 1)[-1]
    if ":" in last:
        out["sliceName"] = last.split(":", 1)[1]
    return out


def url(name: str) -> str:
    return EX + "StructureDefinition/" + name


COLOURS = {"resourceType": "CodeSystem", "url": CS, "status": "active", "content": "complete",
           "concept": [{"code": "red", "concept": [{"code": "crimson"}, {"code": "scarlet"}]},
                       {"code": "green"}, {"code": "blue"}]}
COLOUR_VS = {"resourceType": "ValueSet", "url": VS, "status": "active", "compose": {"include": [{"system": CS}]}}

PATIENT = sd("patient", "Patient", [
    el("Patient", constraint=[{"key": "ex-pat-1", "severity": "error", "human": "A patient has a name or an identifier",
                               "expression": "name.exists() or identifier.exists()"},
                              {"key": "ex-pat-2", "severity": "warning", "human": "A patient should have a gender",
                               "expression": "gender.exists()"}]),
    el("Patient.identifier", min=1, slicing={"discriminator": [{"type": "value", "path": "system"}], "rules": "open"}),
    el("Patient.identifier:mrn", min=0, max="1"),
    el("Patient.identifier:mrn.system", min=1, fixedUri=EX + "mrn"),
    el("Patient.identifier:mrn.value", min=1, constraint=[{"key": "ex-mrn-1", "severity": "error",
                                                            "human": "An MRN is six digits",
                                                            "expression": "matches('^[0-9]{6}$')"}]),
    el("Patient.birthDate", min=1),
    el("Patient.maritalStatus", patternCodeableConcept={"coding": [{"system": EX + "marital", "code": "S"}]}),
    el("Patient.gender", fixedCode="female"),
    el("Patient.generalPractitioner", max="1", type=[{"code": "Reference", "targetProfile": [SD_PREFIX + "Organization"]}]),
])

GOOD_PATIENT = {"resourceType": "Patient", "meta": {"profile": [url("patient")]},
                "identifier": [{"system": EX + "mrn", "value": "123456"}], "birthDate": "2010-04-01",
                "gender": "female", "generalPractitioner": [{"reference": "Organization/o1"}]}


def errors(issues: list[ValidationIssue]) -> set[tuple[str, str | None]]:
    return {(i.expression, i.constraint) for i in issues if i.severity == "error"}


def only_errors(issues):
    return [i for i in issues if i.severity == "error"]


@pytest.fixture(scope="module")
def validator() -> Validator:
    profiles = [PATIENT, COLOURS, COLOUR_VS]
    return Validator(profiles, local_value_sets(profiles))


# ------------------------------------------------------------------------------ base rules


def test_a_valid_resource_has_no_errors(validator):
    assert only_errors(validator.validate(GOOD_PATIENT)) == []


def test_base_structure_rules():
    v = Validator()
    issues = v.validate({"resourceType": "Observation", "code": {"text": "x"}, "bogus": 1,
                         "effectiveDateTime": "2020-13-01", "valueBoolean": "yes", "id": "bad id",
                         "category": [], "note": {"text": "not an array"}})
    found = {(i.expression, i.code) for i in only_errors(issues)}
    assert ("Observation.status", "required") in found                 # min 1 in the base
    assert ("Observation.bogus", "structure") in found                 # unknown property
    assert ("Observation.effectiveDateTime", "invalid") in found       # not a date
    assert ("Observation.valueBoolean", "structure") in found          # wrong JSON kind
    assert ("Observation.id", "invalid") in found                      # id format
    assert ("Observation.category", "invalid") in found                # empty array
    assert ("Observation.note", "structure") in found                  # must be an array
    status = next(i for i in issues if i.expression == "Observation.status")
    assert "minimum required = 1" in status.message


def test_base_required_binding_and_core_invariant():
    v = Validator()
    issues = v.validate({"resourceType": "Encounter", "status": "walking", "class": {"code": "AMB"},
                         "period": {"start": "2020-02-01", "end": "2020-01-01"}})
    assert ("Encounter.status", None) in errors(issues)
    assert ("Encounter.period", "per-1") in errors(issues)
    per = next(i for i in issues if i.constraint == "per-1")
    assert per.message.startswith("per-1: ") and per.code == "invariant"


def test_primitive_extensions_and_unknown_extensions():
    v = Validator()
    issues = v.validate({"resourceType": "Patient", "birthDate": "2001",
                         "_birthDate": {"extension": [{"url": "http://acme.se/ext/x", "valueString": "a"}]},
                         "name": [{"given": ["A", "B"], "_given": [None, {"extension": [
                             {"url": "http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier",
                              "valueCode": "CL"}]}]}]})
    assert only_errors(issues) == []
    assert any(i.severity == "information" and "http://acme.se/ext/x" in i.message for i in issues)
    bad = v.validate({"resourceType": "Patient", "_birthDate": {"extension": [
        {"url": "http://example.org/fhir/StructureDefinition/nope", "valueString": "a"}]}})
    assert "Patient._birthDate" not in {i.expression for i in bad}
    assert any("could not be found" in i.message for i in only_errors(bad))


def test_validate_never_raises_on_garbage():
    v = Validator([PATIENT])
    rnd = random.Random(3)
    junk = [None, [], {}, [None], "", 0, 3.5, True, {"a": 1}, [1, {}], {"extension": 5}, {"reference": 7}]
    for _ in range(300):
        doc = copy.deepcopy(GOOD_PATIENT)
        target = rnd.choice(["identifier", "meta", "birthDate", "gender", "generalPractitioner", "_gender", "text"])
        doc[target] = copy.deepcopy(rnd.choice(junk))
        issues = v.validate(doc)
        assert all(i.code != "exception" for i in issues), issues
    assert only_errors(v.validate("not a resource"))  # type: ignore[arg-type]
    assert only_errors(v.validate({"resourceType": "NoSuchType"}))


# ------------------------------------------------------------------------------ profiles


def test_cardinality_fixed_pattern_and_reference_type(validator):
    bad = {**GOOD_PATIENT, "gender": "male", "maritalStatus": {"coding": [{"system": EX + "marital", "code": "M"}]},
           "generalPractitioner": [{"reference": "Practitioner/p1"}]}
    del bad["birthDate"]
    issues = validator.validate(bad)
    assert errors(issues) == {("Patient.birthDate", None), ("Patient.gender", None),
                              ("Patient.maritalStatus", None), ("Patient.generalPractitioner[0]", None)}
    by_path = {i.expression: i.message for i in only_errors(issues)}
    assert "minimum required = 1" in by_path["Patient.birthDate"]
    assert "fixed value" in by_path["Patient.gender"]
    assert "pattern" in by_path["Patient.maritalStatus"]
    assert "reference type" in by_path["Patient.generalPractitioner[0]"]
    two = {**GOOD_PATIENT, "generalPractitioner": [{"reference": "Organization/a"}, {"reference": "Organization/b"}]}
    assert "max allowed = 1" in next(i.message for i in only_errors(validator.validate(two)))


def test_profile_invariants_carry_their_key(validator):
    issues = validator.validate({**GOOD_PATIENT, "identifier": [{"system": EX + "mrn", "value": "12x"}],
                                 "gender": None})
    mrn = next(i for i in issues if i.constraint == "ex-mrn-1")
    assert (mrn.severity, mrn.expression, mrn.code) == ("error", "Patient.identifier[0].value", "invariant")
    assert mrn.message == "ex-mrn-1: An MRN is six digits"
    nameless = {k: v for k, v in GOOD_PATIENT.items() if k not in ("identifier", "gender")}
    issues = validator.validate(nameless)
    assert ("Patient", "ex-pat-1") in errors(issues)
    assert any(i.constraint == "ex-pat-2" and i.severity == "warning" for i in issues)


def test_explicit_profiles_and_claims(validator):
    plain = {k: v for k, v in GOOD_PATIENT.items() if k != "meta"}
    assert only_errors(validator.validate({**plain, "gender": "male"})) == []  # base only
    assert ("Patient.gender", None) in errors(validator.validate({**plain, "gender": "male"}, [url("patient")]))
    issues = validator.validate({**plain, "meta": {"profile": [EX + "StructureDefinition/unknown"]}})
    assert [(i.severity, i.expression) for i in issues if "could not be found" in i.message] == [
        ("warning", "Patient.meta.profile[0]")]
    issues = validator.validate(plain, [EX + "StructureDefinition/unknown"])
    assert any(i.severity == "error" and i.code == "not-found" for i in issues)
    assert validator.known_profile(url("patient")) and validator.known_profile(SD_PREFIX + "Patient")
    assert not validator.known_profile(EX + "StructureDefinition/unknown")


def test_choice_types_and_type_profiles():
    profile = sd("obs", "Observation", [
        el("Observation.value[x]", min=1, type=[{"code": "Quantity"}]),
        el("Observation.subject", type=[{"code": "Reference", "targetProfile": [url("patient")]}]),
    ])
    v = Validator([profile, PATIENT])
    base = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
    issues = v.validate({**base, "valueString": "high"}, [url("obs")])
    assert errors(issues) == {("Observation.valueString", None)}
    assert "allows for the types [Quantity] but found type string" in only_errors(issues)[0].message
    assert errors(v.validate({**base}, [url("obs")])) == {("Observation.value[x]", None)}
    ok = {**base, "valueQuantity": {"value": 1}, "subject": {"reference": "Patient/x"}}
    assert only_errors(v.validate(ok, [url("obs")])) == []
    wrong = {**ok, "subject": {"reference": "Group/x"}}
    assert errors(v.validate(wrong, [url("obs")])) == {("Observation.subject", None)}


def test_min_max_values_and_lengths():
    profile = sd("minmax", "Observation", [
        el("Observation.valueQuantity", type=[{"code": "Quantity"}]),
        el("Observation.valueQuantity.value", minValueDecimal=0, maxValueDecimal=100),
        el("Observation.code.text", maxLength=5),
        el("Observation.effective[x]", type=[{"code": "dateTime"}], minValueDateTime="2000-01-01T00:00:00Z"),
    ])
    v = Validator([profile])
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "toolong"},
           "valueQuantity": {"value": 101}, "effectiveDateTime": "1999-12-31T10:00:00Z"}
    found = {i.expression: i.message for i in only_errors(v.validate(obs, [url("minmax")]))}
    assert set(found) == {"Observation.valueQuantity.value", "Observation.code.text", "Observation.effectiveDateTime"}
    assert "greater than the specified maximum" in found["Observation.valueQuantity.value"]
    assert "less than the specified minimum" in found["Observation.effectiveDateTime"]
    assert "maximum length 5" in found["Observation.code.text"]


# ------------------------------------------------------------------------------ bindings


def test_required_and_extensible_bindings():
    profile = sd("colour", "Observation", [
        el("Observation.code", binding={"strength": "required", "valueSet": VS}),
        el("Observation.method", binding={"strength": "extensible", "valueSet": VS}),
        el("Observation.interpretation", binding={"strength": "required", "valueSet": EX + "ValueSet/unknown"}),
    ])
    resources = [profile, COLOURS, COLOUR_VS]
    v = Validator(resources, local_value_sets(resources))
    good = {"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": CS, "code": "crimson"}]}}
    assert [i for i in v.validate(good, [url("colour")]) if i.severity != "information"] == []
    bad = {**good, "code": {"coding": [{"system": CS, "code": "purple"}]},
           "method": {"coding": [{"system": EX + "other", "code": "x"}]},
           "interpretation": [{"coding": [{"system": EX + "i", "code": "H"}]}]}
    issues = v.validate(bad, [url("colour")])
    code = next(i for i in issues if i.expression == "Observation.code")
    assert (code.severity, code.code) == ("error", "code-invalid") and "value set" in code.message
    method = next(i for i in issues if i.expression == "Observation.method")
    assert method.severity == "warning"
    unknown = [i for i in issues if i.expression == "Observation.interpretation[0]"]
    assert [i.severity for i in unknown] == ["warning"] and "not known" in unknown[0].message


def test_local_value_set_expansion():
    vs_filter = {"resourceType": "ValueSet", "url": EX + "ValueSet/reds", "compose": {
        "include": [{"system": CS, "filter": [{"property": "concept", "op": "is-a", "value": "red"}]}],
        "exclude": [{"system": CS, "concept": [{"code": "scarlet"}]}]}}
    vs_import = {"resourceType": "ValueSet", "url": EX + "ValueSet/mixed", "compose": {"include": [
        {"valueSet": [EX + "ValueSet/reds"]}, {"system": "http://loinc.org", "concept": [{"code": "1-8"}]}]}}
    vs_expanded = {"resourceType": "ValueSet", "url": EX + "ValueSet/expanded", "expansion": {"contains": [
        {"system": CS, "code": "blue"}, {"system": CS, "code": "green", "contains": [{"system": CS, "code": "red"}]}]}}
    vs_external = {"resourceType": "ValueSet", "url": EX + "ValueSet/snomed", "compose": {"include": [
        {"system": "http://snomed.info/sct"}]}}
    cs = {**COLOURS, "valueSet": EX + "ValueSet/all-colours"}
    lookup = local_value_sets([cs, COLOUR_VS, vs_filter, vs_import, vs_expanded, vs_external])
    assert lookup(VS) == {(CS, c) for c in ("red", "crimson", "scarlet", "green", "blue")}
    assert lookup(EX + "ValueSet/reds|1.0") == {(CS, "red"), (CS, "crimson")}
    assert lookup(EX + "ValueSet/mixed") == {(CS, "red"), (CS, "crimson"), ("http://loinc.org", "1-8")}
    assert lookup(EX + "ValueSet/expanded") == {(CS, "blue"), (CS, "green"), (CS, "red")}
    assert lookup(EX + "ValueSet/all-colours") == lookup(VS)
    assert lookup(EX + "ValueSet/snomed") is None and lookup(EX + "ValueSet/none") is None
    gender = lookup("http://hl7.org/fhir/ValueSet/administrative-gender")  # the core table
    assert ("http://hl7.org/fhir/administrative-gender", "female") in gender


# ------------------------------------------------------------------------------ slicing


def test_slicing_by_pattern_type_exists_and_closed():
    profile = sd("sliced", "Observation", [
        el("Observation.category", slicing={"discriminator": [{"type": "pattern", "path": "$this"}], "rules": "closed"}),
        el("Observation.category:vital", min=1, max="1",
           patternCodeableConcept={"coding": [{"system": EX + "cat", "code": "vital"}]}),
        el("Observation.component", slicing={"discriminator": [{"type": "exists", "path": "dataAbsentReason"}],
                                             "rules": "open"}),
        el("Observation.component:missing", max="1"),
        el("Observation.component:missing.dataAbsentReason", min=1),
        el("Observation.value[x]", slicing={"discriminator": [{"type": "type", "path": "$this"}], "rules": "closed"}),
        el("Observation.value[x]:valueQuantity", type=[{"code": "Quantity"}]),
        el("Observation.value[x]:valueQuantity.unit", min=1),
    ])
    v = Validator([profile])
    good = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "category": [{"coding": [{"system": EX + "cat", "code": "vital"}]}],
            "valueQuantity": {"value": 1, "unit": "mg"},
            "component": [{"code": {"text": "a"}, "dataAbsentReason": {"text": "n/a"}}, {"code": {"text": "b"}}]}
    assert only_errors(v.validate(good, [url("sliced")])) == []
    bad = {**good, "category": [{"coding": [{"system": EX + "cat", "code": "lab"}]}],
           "valueQuantity": {"value": 1},
           "component": [{"code": {"text": "a"}, "dataAbsentReason": {"text": "1"}},
                         {"code": {"text": "b"}, "dataAbsentReason": {"text": "2"}}]}
    issues = v.validate(bad, [url("sliced")])
    messages = {i.expression: i.message for i in only_errors(issues)}
    assert "vital" in messages["Observation.category"]                      # slice minimum
    assert "does not match any known slice" in messages["Observation.category[0]"]  # closed
    assert "missing" in messages["Observation.component"]                   # slice maximum
    assert "Observation.valueQuantity.unit" in messages                     # the type slice's rule
    no_quantity = {k: x for k, x in good.items() if k != "valueQuantity"}
    issues = v.validate({**no_quantity, "valueString": "x"}, [url("sliced")])
    assert errors(issues) == {("Observation.valueString", None)}            # closed type slicing


def test_slicing_by_profile_and_resolved_type_in_a_bundle():
    person = sd("named-patient", "Patient", [el("Patient.name", min=1)])
    bundle_profile = sd("doc", "Bundle", [
        el("Bundle.entry", slicing={"discriminator": [{"type": "profile", "path": "resource"}], "rules": "open"}),
        el("Bundle.entry:patient", min=1, max="1"),
        el("Bundle.entry:patient.resource", type=[{"code": "Patient", "profile": [url("named-patient")]}]),
    ])
    v = Validator([person, bundle_profile])
    named = {"resourceType": "Patient", "id": "a", "name": [{"family": "A"}]}
    anonymous = {"resourceType": "Patient", "id": "b"}
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:" + "1" * 8 + "-1111-4111-8111-" + "1" * 12, "resource": named},
        {"fullUrl": "urn:uuid:" + "2" * 8 + "-2222-4222-8222-" + "2" * 12, "resource": anonymous}]}
    assert only_errors(v.validate(bundle, [url("doc")])) == []
    bundle["entry"][0]["resource"] = {**anonymous, "id": "c"}
    issues = only_errors(v.validate(bundle, [url("doc")]))
    assert [(i.expression, "patient" in i.message) for i in issues] == [("Bundle.entry", True)]


def test_appointment_like_slicing_by_resolved_reference_type():
    profile = sd("appt", "Appointment", [
        el("Appointment.participant", slicing={"discriminator": [{"type": "type", "path": "actor.resolve()"}],
                                               "rules": "open"}),
        el("Appointment.participant:patient", min=1, max="1"),
        el("Appointment.participant:patient.actor", min=1,
           type=[{"code": "Reference", "targetProfile": [SD_PREFIX + "Patient"]}]),
    ])
    v = Validator([profile])
    appt = {"resourceType": "Appointment", "status": "proposed", "participant": [
        {"actor": {"reference": "Practitioner/1"}, "status": "accepted"}]}
    assert errors(v.validate(appt, [url("appt")])) == {("Appointment.participant", None)}
    appt["participant"].append({"actor": {"reference": "Patient/1"}, "status": "accepted"})
    assert only_errors(v.validate(appt, [url("appt")])) == []


# ------------------------------------------------------------------------------ extensions


NICKNAME = sd("nickname", "Extension", [
    el("Extension", min=0, max="1"),
    el("Extension.url", fixedUri=url("nickname")),
    el("Extension.value[x]", min=1, type=[{"code": "string"}]),
], kind="complex-type", context=[{"type": "element", "expression": "Patient"}])
HOME = sd("home", "Extension", [
    el("Extension.extension:town", min=1, max="1"),
    el("Extension.extension:town.url", fixedUri="town"),
    el("Extension.extension:town.value[x]", type=[{"code": "Coding"}],
       binding={"strength": "required", "valueSet": VS}),
    el("Extension.extension:since", max="1"),
    el("Extension.extension:since.url", fixedUri="since"),
    el("Extension.extension:since.value[x]", type=[{"code": "date"}]),
    el("Extension.url", fixedUri=url("home")),
    el("Extension.value[x]", max="0"),
], kind="complex-type", context=[{"type": "element", "expression": "Patient"}])
WITH_EXT = sd("with-ext", "Patient", [
    el("Patient.extension:nickname", min=1, type=[{"code": "Extension", "profile": [url("nickname")]}]),
    el("Patient.extension:home", type=[{"code": "Extension", "profile": [url("home")]}]),
])


@pytest.fixture(scope="module")
def ext_validator() -> Validator:
    resources = [NICKNAME, HOME, WITH_EXT, COLOURS, COLOUR_VS]
    return Validator(resources, local_value_sets(resources))


def test_extension_slices_values_and_parts(ext_validator):
    patient = {"resourceType": "Patient", "extension": [
        {"url": url("nickname"), "valueString": "Bo"},
        {"url": url("home"), "extension": [{"url": "town", "valueCoding": {"system": CS, "code": "red"}}]}]}
    assert only_errors(ext_validator.validate(patient, [url("with-ext")])) == []
    missing = {"resourceType": "Patient"}
    issues = only_errors(ext_validator.validate(missing, [url("with-ext")]))
    assert [(i.expression, "nickname" in i.message) for i in issues] == [("Patient.extension", True)]
    wrong = {"resourceType": "Patient", "extension": [
        {"url": url("nickname"), "valueInteger": 3},
        {"url": url("home"), "extension": [{"url": "town", "valueCoding": {"system": CS, "code": "mauve"}},
                                           {"url": "since", "valueString": "2001"}]}]}
    found = errors(ext_validator.validate(wrong, [url("with-ext")]))
    assert found == {("Patient.extension[0].valueInteger", None),
                     ("Patient.extension[1].extension[0].valueCoding", None),
                     ("Patient.extension[1].extension[1].valueString", None)}
    no_town = {"resourceType": "Patient", "extension": [
        {"url": url("nickname"), "valueString": "Bo"}, {"url": url("home"), "extension": [
            {"url": "since", "valueDate": "2001"}]}]}
    issues = only_errors(ext_validator.validate(no_town, [url("with-ext")]))
    assert [(i.expression, "town" in i.message) for i in issues] == [("Patient.extension[1].extension", True)]


def test_extension_context_and_ext_1(ext_validator):
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
           "extension": [{"url": url("nickname"), "valueString": "Bo"}]}
    issues = only_errors(ext_validator.validate(obs))
    assert [(i.expression, i.code) for i in issues] == [("Observation.extension[0]", "business-rule")]
    assert "not allowed to be used at this point" in issues[0].message
    both = {"resourceType": "Patient", "extension": [{"url": "http://acme.se/x", "valueString": "a",
                                                      "extension": [{"url": "y", "valueString": "b"}]}]}
    assert ("Patient.extension[0]", "ext-1") in errors(ext_validator.validate(both))


# ------------------------------------------------------------------------------ resources in resources


def test_bundle_entries_contained_and_local_references():
    v = Validator([PATIENT])
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:0", "resource": {**GOOD_PATIENT, "gender": "male"},
         "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": "Patient/1", "resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}}]}
    found = errors(v.validate(bundle))
    assert ("Bundle.entry[0].resource.gender", None) in found     # the entry's own meta.profile
    assert ("Bundle.entry[1]", None) in found                     # fullUrl must be absolute
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
           "subject": {"reference": "#p"}, "performer": [{"reference": "#nope"}],
           "contained": [{"resourceType": "Patient", "id": "p", "gender": "unknown-ish"}]}
    found = errors(v.validate(obs))
    assert ("Observation.performer[0]", "ref-1") in found and ("Observation.performer[0]", None) in found
    assert ("Observation.contained[0].gender", None) in found
    assert ("Observation.subject", "ref-1") not in found


def test_questionnaire_response_against_its_questionnaire():
    q = {"resourceType": "Questionnaire", "url": EX + "Questionnaire/q", "status": "active", "item": [
        {"linkId": "name", "type": "string", "required": True},
        {"linkId": "grp", "type": "group", "item": [{"linkId": "age", "type": "integer"}]},
        {"linkId": "col", "type": "choice", "answerOption": [{"valueString": "red"}]}]}
    v = Validator([q])
    qr = {"resourceType": "QuestionnaireResponse", "status": "completed", "questionnaire": EX + "Questionnaire/q|1",
          "item": [{"linkId": "name", "answer": [{"valueString": "A"}]},
                   {"linkId": "grp", "item": [{"linkId": "age", "answer": [{"valueInteger": 3}]}]},
                   {"linkId": "col", "answer": [{"valueString": "red"}]}]}
    assert only_errors(v.validate(qr)) == []
    qr["item"] = [{"linkId": "grp", "item": [{"linkId": "age", "answer": [{"valueString": "3"}]},
                                             {"linkId": "height"}]}]
    found = {i.expression: i.message for i in only_errors(v.validate(qr))}
    assert "LinkId 'height' not found" in found["QuestionnaireResponse.item[0].item[1]"]
    assert "type integer" in found["QuestionnaireResponse.item[0].item[0].answer[0].valueString"]
    assert "required item 'name'" in found["QuestionnaireResponse"]


def test_structure_definitions_are_checked_themselves():
    broken = sd("broken", "Patient", [el("Patient.birthDate", type=[{"code": "string"}]),
                                      el("Patient.identifier", slicing={"discriminator": [
                                          {"type": "value", "path": "nosuch"}], "rules": "open"})])
    issues = only_errors(Validator().validate(broken))
    assert any("snapshot" in i.message and "birthDate" in i.message for i in issues)
    fine = sd("fine", "Patient", [el("Patient.identifier", slicing={"discriminator": [
        {"type": "value", "path": "nosuch"}], "rules": "open"})])
    issues = only_errors(Validator().validate(fine))
    assert [i.expression for i in issues] == ["StructureDefinition.differential.element[0].slicing.discriminator[0]"]


# ------------------------------------------------------------------------------ caching, speed


def test_compiled_profiles_are_cached(validator):
    validator.validate(GOOD_PATIENT)
    model = validator._defs.model(url("patient"))
    assert model is validator._defs.model(url("patient") + "|1.0")
    start = time.perf_counter()
    for _ in range(200):
        validator.validate(GOOD_PATIENT)
    assert (time.perf_counter() - start) / 200 < 0.02   # well under 20 ms a resource


def test_reference_aggregation_modes():
    profile = sd("agg", "Observation", [
        el("Observation.subject", type=[{"code": "Reference", "aggregation": ["contained"]}]),
        el("Observation.performer", type=[{"code": "Reference", "aggregation": ["bundled"]}]),
    ])
    v = Validator([profile])
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "meta": {"profile": [url("agg")]},
           "subject": {"reference": "Patient/1"}, "performer": [{"reference": "Practitioner/1"}]}
    assert errors(v.validate(obs)) == {("Observation.subject", None), ("Observation.performer[0]", None)}
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "http://x.org/fhir/Observation/o", "resource": {
            **obs, "id": "o", "subject": {"reference": "#p"},
            "contained": [{"resourceType": "Patient", "id": "p"}]}},
        {"fullUrl": "http://x.org/fhir/Practitioner/1", "resource": {"resourceType": "Practitioner", "id": "1"}}]}
    assert only_errors(v.validate(bundle)) == []


def test_one_validator_serves_many_threads():
    from concurrent.futures import ThreadPoolExecutor

    v = Validator([PATIENT, NICKNAME, HOME, WITH_EXT])
    bad = {**GOOD_PATIENT, "gender": "male"}
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda r: errors(v.validate(r)), [bad] * 64))
    assert all(r == {("Patient.gender", None)} for r in results)


# ------------------------------------------------------------------------------ the server's own failures


def test_an_invariant_fhirpath_cannot_evaluate_passes_but_a_server_failure_raises():
    """fhirpathpy's evaluation errors (an expression it cannot evaluate on this data) do not
    count against the resource; a failure of the server's own part (the value-set lookup
    behind memberOf, here a file gone) is no issue of the resource: it raises (500)."""
    profile = sd("member", "Patient", [el("Patient", constraint=[
        {"key": "ex-eval-1", "severity": "error", "human": "a given name made of A",
         "expression": "name.given.matches('^A+$')"},  # several given names: fhirpathpy raises
        {"key": "ex-member-1", "severity": "error", "human": "gender from the colours",
         "expression": "gender.memberOf('" + VS + "')"}])])
    patient = {"resourceType": "Patient", "name": [{"given": ["A", "B"]}], "gender": "female"}
    ok = Validator([profile, COLOURS, COLOUR_VS], local_value_sets([profile, COLOURS, COLOUR_VS]))
    found = errors(ok.validate(patient, [url("member")]))
    assert ("Patient", "ex-eval-1") not in found and ("Patient", "ex-member-1") in found

    def gone(url):
        raise FileNotFoundError(2, "No such file or directory", "/srv/evi/fhir_server/spec/data/valuesets.json")

    with pytest.raises(FileNotFoundError):
        Validator([profile], gone).validate(patient, [url("member")])


def test_a_fault_of_the_validator_raises_instead_of_blaming_the_resource(monkeypatch):
    from fhir_server.conformance.validation.walker import Run

    def boom(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(Run, "resource", boom)
    with pytest.raises(KeyError):
        Validator([PATIENT]).validate(GOOD_PATIENT)
    monkeypatch.setattr(Run, "resource", lambda *a, **k: (_ for _ in ()).throw(RecursionError()))
    assert [i.code for i in Validator([PATIENT]).validate(GOOD_PATIENT)] == ["too-costly"]  # the client's nesting
