"""Primitive value rules of the validator (values.py): markdown is not HTML."""

from __future__ import annotations

from fhir_server.conformance.validator import Validator


def _issues(description: str):
    ad = {"resourceType": "ActivityDefinition", "status": "active", "description": description}
    return Validator().validate(ad)


def test_markdown_with_an_embedded_html_tag_is_warned_not_refused():
    found = _issues("Give *one* dose <b>daily</b>")
    assert [(i.severity, i.expression) for i in found] == [("warning", "ActivityDefinition.description")]
    assert "'<b'" in found[0].message


def test_markdown_comparisons_and_plain_text_pass_silently():
    assert _issues("a < b and c > d; 5<6; **bold** and [link](http://example.org)") == []
