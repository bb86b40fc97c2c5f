"""Client text never becomes a MongoDB operator or field name.

Search values that look like query operators (``{"$gt": ""}``, ``$where``,
``$ne``), regular expressions (``.*``) or field paths (``$_idx.token``) are stored
and searched as plain values: each finds exactly the resource holding that
text, never everything. The compiled filters contain only this backend's own
field names and operators.
"""

from __future__ import annotations

import pytest

from fhir_server.search import SearchParamDef, SearchRegistry, extract_index
from fhir_server.storage.mongo import MongoStore
from fhir_server.storage.mongo.compile import compile_filter, literal_regex
from fhir_server.storage.mongo.sort import sort_pipeline
from tests.storage.helpers import BASE, plan, put, search_ids
from tests.support.mongo_replica_set import ReplicaSet

NASTY = [
    '{"$gt": ""}',
    "$where",
    "this.i == 'p0' || true",
    "$ne",
    ".*",
    "^",
    "a.b",
    "$_idx.token",
    "\\",
    "(x",
    "[",
    "nul\x00byte",
]
PERSONNUMMER = "http://electronichealth.se/identifier/personnummer"


def _patients():
    out = [{"resourceType": "Patient", "id": "plain", "identifier": [{"system": PERSONNUMMER, "value": "1"}],
            "name": [{"family": "Plain"}], "telecom": [{"system": "email", "value": "plain@x"}]}]
    for n, text in enumerate(NASTY):
        out.append({
            "resourceType": "Patient", "id": f"p{n}",
            "identifier": [{"system": text, "value": text}],
            "name": [{"family": f"Fam{text}ily"}],
            "telecom": [{"system": "email", "value": text}],
        })
    return out


@pytest.fixture(scope="module")
def store():
    s = MongoStore(ReplicaSet(), "evi")
    with s.unit_of_work(write=True) as uow:
        for n, patient in enumerate(_patients()):
            put(uow, patient, last_updated=f"2026-01-01T00:00:{n:02d}.000000Z")
    return s


def _escape(text: str) -> str:
    """FHIR search escaping for a token/string value (R4 search.html#escaping)."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace(",", "\\,").replace("$", "\\$")


@pytest.mark.parametrize("n, text", list(enumerate(NASTY)), ids=[repr(t) for t in NASTY])
def test_operator_looking_values_match_literally(store, n, text):
    value = _escape(text)
    assert search_ids(store, "Patient", [("identifier", value)]) == [f"p{n}"]
    assert search_ids(store, "Patient", [("identifier", f"{value}|{value}")]) == [f"p{n}"]
    assert search_ids(store, "Patient", [("telecom", value)]) == [f"p{n}"]
    assert search_ids(store, "Patient", [("family:exact", f"Fam{value}ily")]) == [f"p{n}"]
    assert search_ids(store, "Patient", [("family:contains", value)]) == [f"p{n}"]
    assert f"p{n}" not in search_ids(store, "Patient", [("identifier:not", value)])


def test_regex_text_is_not_a_pattern(store):
    # ".*" as a pattern would match every name; as text only the one that contains it
    assert search_ids(store, "Patient", [("family:contains", ".*")]) == ["p4"]
    assert search_ids(store, "Patient", [("family:contains", "^")]) == ["p5"]
    assert search_ids(store, "Patient", [("family:contains", "a.b")]) == ["p6"]
    # starts-with on the text "fam$", not an end-of-line anchor
    assert search_ids(store, "Patient", [("family", "fam$")]) == ["p1", "p3", "p7"]


def test_ids_and_references_are_values(store):
    assert search_ids(store, "Patient", [("_id", "$where")]) == []
    assert search_ids(store, "Observation", [("subject", "Patient/$where")]) == []
    assert search_ids(store, "Patient", [("_id", "plain")]) == ["plain"]


def test_literal_regex_escapes_every_metacharacter():
    import re

    for text in NASTY + ["a+b?c*{1}|(d)[e]^$f\\g", "tab\there", "åäö"]:
        pattern = literal_regex(text)
        assert re.search(pattern, f"xx{text}yy").group(0) == text
        assert not re.search(pattern, "")


_FIELDS = {
    "t", "i", "del", "lu", "_id", "_idx.present", "p", "s", "c", "n", "e", "lo", "hi", "u", "tt", "ti", "url",
    *(f"_idx.{k}" for k in ("token", "string", "number", "date", "quantity", "uri", "reference", "composite")),
    *(f"_idx.{k}.p" for k in ("token", "string", "number", "date", "quantity", "uri", "reference", "composite")),
    *(f"c{n}.{f}" for n in range(3) for f in ("a", "b", "lo", "hi")),
}
_OPERATORS = {"$and", "$or", "$nor", "$in", "$nin", "$elemMatch", "$gte", "$gt", "$lte", "$lt", "$ne", "$regex"}


def _keys(node, out: set):
    if isinstance(node, dict):
        for k, v in node.items():
            out.add(k)
            _keys(v, out)
    elif isinstance(node, list):
        for v in node:
            _keys(v, out)
    return out


@pytest.mark.parametrize("params", [
    [("identifier", "$where")],
    [("identifier:not", '{"$gt": ""}')],
    [("family:contains", "$ne")],
    [("telecom:text", "$regex")],
    [("birthdate", "ge2012"), ("_lastUpdated", "lt2027")],
    [("general-practitioner:Organization.name", "$where")],
    [("_has:Observation:subject:code", "$where")],
    [("_id", "$where,$ne")],
])
def test_compiled_filters_use_only_fixed_names(store, params):
    class NoFollowUp:
        def ids(self, resource_type, filter):
            assert _keys(filter, set()) <= _FIELDS | _OPERATORS
            return ["x"]

        def referenced(self, source_type, filter, param, target_type):
            assert _keys(filter, set()) <= _FIELDS | _OPERATORS
            return [("Patient", "x")]

    keys = _keys(compile_filter(plan("Patient", params), NoFollowUp()), set())
    assert keys <= _FIELDS | _OPERATORS, keys - (_FIELDS | _OPERATORS)
    assert "$where" not in keys and "$expr" not in keys


def test_a_parameter_code_is_a_value_even_in_sort_expressions():
    """A run-time SearchParameter may carry any code; sort pipelines quote it with $literal."""
    odd = SearchParamDef(
        code="$family", type="string", url="http://evi.example/fhir/SearchParameter/odd", base=("Patient",),
        expression="Patient.name.family",
    )
    reg = SearchRegistry.from_spec(extra=[odd])
    s = MongoStore(ReplicaSet(), "evi")
    with s.unit_of_work(write=True) as uow:
        for i, family in (("a", "Berg"), ("b", "Alm"), ("c", None)):
            body = {"resourceType": "Patient", "id": i, **({"name": [{"family": family}]} if family else {})}
            put(uow, body, reg=reg)
    from fhir_server.search import parse_search

    p = parse_search("Patient", [("_sort", "$family")], reg, base_url=BASE)
    assert not p.unknown
    stages = sort_pipeline(p, {"t": "Patient"}, 0, 10)
    assert {"$literal": "$family"} in [stage for stage in _walk(stages)]
    with s.unit_of_work(write=False) as uow:
        assert uow.search(p, with_total=False).ids == ["b", "a", "c"]
    assert search_ids(s, "Patient", [("$family", "alm")], reg=reg) == ["b"]
    body = {"resourceType": "Patient", "id": "z", "name": [{"family": "Zed"}]}
    assert [e.param for e in extract_index(reg, body, BASE).entries if e.kind == "string"].count("$family") == 1


def _walk(node):
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)
