"""Questionnaires and their responses (questionnaire.html, questionnaireresponse.html):
coded answers against answerOption and answerValueSet -- a value set contained in the
questionnaire that imports another contained one and a canonical one, a value set the
validator knows, one it does not --, answer types, enableWhen, and the questionnaire's
own enableWhen targets."""

from __future__ import annotations

from fhir_server.conformance.validator import Validator

CS = "http://acme.example.se/fhir/CodeSystem/mood"
VS_CALM = "http://acme.example.se/fhir/ValueSet/calm"
Q = "http://acme.example.se/fhir/Questionnaire/mood"
MOODS = {"resourceType": "CodeSystem", "url": CS, "status": "active", "content": "complete",
         "concept": [{"code": "happy"}, {"code": "calm"}, {"code": "sad"}, {"code": "angry"}]}
CALM = {"resourceType": "ValueSet", "url": VS_CALM, "status": "active",
        "compose": {"include": [{"system": CS, "concept": [{"code": "calm"}]}]}}
QUESTIONNAIRE = {
    "resourceType": "Questionnaire", "id": "mood", "url": Q, "status": "active",
    "contained": [
        {"resourceType": "ValueSet", "id": "happy", "status": "active",
         "compose": {"include": [{"system": CS, "concept": [{"code": "happy"}]}]}},
        {"resourceType": "ValueSet", "id": "good", "status": "active",
         "compose": {"include": [{"valueSet": ["#happy"]}, {"valueSet": [VS_CALM]}]}}],
    "item": [
        {"linkId": "nested", "type": "choice", "answerValueSet": "#good"},
        {"linkId": "canonical", "type": "choice", "answerValueSet": VS_CALM},
        {"linkId": "unknown", "type": "choice", "answerValueSet": "http://acme.example.se/fhir/ValueSet/nowhere"},
        {"linkId": "options", "type": "choice", "answerOption": [{"valueCoding": {"system": CS, "code": "sad"}}]},
        {"linkId": "age", "type": "integer"},
        {"linkId": "why", "type": "string", "required": True,
         "enableWhen": [{"question": "options", "operator": "exists", "answerBoolean": True}]}]}


def validator() -> Validator:
    return Validator([MOODS, CALM, QUESTIONNAIRE])


def response(*items: dict, status: str = "completed") -> dict:
    return {"resourceType": "QuestionnaireResponse", "status": status, "questionnaire": Q, "item": list(items)}


def coded(link: str, code: str) -> dict:
    return {"linkId": link, "answer": [{"valueCoding": {"system": CS, "code": code}}]}


def issues(resource: dict, severity: str = "error") -> dict[str, str]:
    return {i.expression: i.message for i in validator().validate(resource) if i.severity == severity}


def test_the_questionnaire_with_nested_contained_value_sets_is_valid():
    assert issues(QUESTIONNAIRE) == {}
    assert issues(QUESTIONNAIRE, "warning") == {}


def test_answers_from_a_contained_value_set_that_imports_others():
    assert issues(response(coded("nested", "happy"))) == {}
    assert issues(response(coded("nested", "calm"))) == {}
    found = issues(response(coded("nested", "angry")))
    assert "#good" in found["QuestionnaireResponse.item[0].answer[0].valueCoding"]


def test_answers_from_a_known_value_set_and_from_answer_options():
    assert issues(response(coded("canonical", "calm"), coded("options", "sad"), {"linkId": "why", "answer": [
        {"valueString": "rain"}]})) == {}
    found = issues(response(coded("canonical", "sad"), coded("options", "calm"), {"linkId": "why", "answer": [
        {"valueString": "rain"}]}))
    assert set(found) == {"QuestionnaireResponse.item[0].answer[0].valueCoding",
                          "QuestionnaireResponse.item[1].answer[0].valueCoding"}


def test_an_unknown_answer_value_set_is_noted_not_judged():
    qr = response(coded("unknown", "anything"))
    assert issues(qr) == {}
    assert "QuestionnaireResponse.item[0].answer[0].valueCoding" in issues(qr, "warning")


def test_answer_types_and_enable_when():
    found = issues(response({"linkId": "age", "answer": [{"valueString": "3"}]}))
    assert "integer" in found["QuestionnaireResponse.item[0].answer[0].valueString"]
    # 'why' is enabled by an answer to 'options' and then required
    found = issues(response(coded("options", "sad")))
    assert "why" in found["QuestionnaireResponse"]
    assert issues(response(coded("options", "sad"), status="in-progress")) == {}
    disabled = issues(response({"linkId": "why", "answer": [{"valueString": "x"}]}))
    assert "QuestionnaireResponse.item[0]" in disabled


def test_enable_when_must_name_another_item_outside_its_own_children():
    q = {"resourceType": "Questionnaire", "status": "active", "item": [
        {"linkId": "a", "type": "group", "enableWhen": [{"question": "a1", "operator": "exists", "answerBoolean": True}],
         "item": [{"linkId": "a1", "type": "boolean"}]}]}
    assert "Questionnaire.item[0].enableWhen[0]" in issues(q)


def test_a_local_answer_value_set_must_be_contained():
    q = {**QUESTIONNAIRE, "item": [*QUESTIONNAIRE["item"],
                                   {"linkId": "lost", "type": "choice", "answerValueSet": "#missing"}]}
    found = issues(q)
    assert set(found) == {"Questionnaire.item[6].answerValueSet"}
