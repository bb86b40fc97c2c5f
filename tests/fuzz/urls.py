"""Hostile URLs, as hypothesis strategies: search parameters with every prefix and
modifier, huge and negative numbers, malformed dates, deep and unknown
chains/_has/_include, very many and repeated parameters, percent-encoded junk, odd
path segments (ids, versions, operations), the result parameters (``_count``,
``_offset``, ``_sort``, ``_elements``, ``_summary``...) and the history parameters.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import quote

from hypothesis import strategies as st

from fhir_server.conformance import ig_directory, ig_search_parameters
from fhir_server.search import SearchRegistry
from tests.fuzz.case import Case
from tests.fuzz.seeds import examples

__all__ = ["url_cases", "search_query", "url_type", "odd_id"]

_FORM = "application/x-www-form-urlencoded"
#: a query string's length, well inside what uvicorn's HTTP parser takes
_MAX_QUERY = 12_000



@lru_cache(maxsize=1)
def _registry() -> SearchRegistry:
    return SearchRegistry.from_spec(extra=ig_search_parameters(ig_directory(None)))


@lru_cache(maxsize=None)
def _parameters(resource_type: str) -> tuple[tuple[str, str], ...]:
    return tuple((d.code, d.type) for d in _registry().supported_for(resource_type))


def _types() -> list[str]:
    return sorted({r["resourceType"] for r in examples()} | {"Observation", "Bundle", "ValueSet", "CodeSystem"})


def url_type() -> st.SearchStrategy:
    odd = ["Nonsense", "patient", "Resource", "DomainResource", "_history", "$x"]
    return st.one_of(st.sampled_from(_types()), st.sampled_from(odd))


def odd_id() -> st.SearchStrategy:
    return st.sampled_from([
        "x", "a" * 64, "a" * 65, "%00", "%2F", "..", ".", "%20", "-", "a.b", "%C0%80", "%FF", "é", "1" * 30,
        "%25", "a%0Ab", "_history", "$validate", "child-ella", "evi-vgr",
    ])


_MODIFIERS = ["missing", "exact", "contains", "text", "not", "above", "below", "in", "not-in", "of-type", "identifier",
              "Patient", "Nonsense", "iterate", "", "MISSING", "missing:not", "$x", "%00"]
_PREFIXES = ["", "", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap", "xx", "gtge", "EQ"]
_DATES = ["2020", "2020-01", "2020-01-01", "2020-01-01T10:00", "2020-01-01T10:00:00Z", "2020-01-01T10:00:00.123456789+01:00",
          "2020-01-01T00:00:00+14:00", "2020-01-01T00:00:00-14:00", "2020-01-01T00:00:00+14:01", "2020-01-01T00:00:00+99:00",
          "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2020-13-01", "2020-02-30", "2020-01-01T24:00",
          "20200101",
          "2020-1-1", "-2020", "10000", "2020-01-01T10:00:60", "yesterday", "2020-01-01T10", "2020-01-01 10:00", "0000"]
_NUMBERS = ["0", "-1", "1.5", "1e3", "1e999", "-1e999", "NaN", "Infinity", "99999999999999999999999999", ".5", "1.", "0x10",
            "1_000", "１", "-0", "1e-999", "2147483648", "+5"]
_TOKENS = ["a", "a|b", "|b", "a|", "|", "||", "a|b|c", "a\\|b", "a\\,b", "http://x|y", "%00", "urn:oid:1.2|3",
           "http://loinc.org|", "\\", "a|b\\"]
_REFERENCES = ["Patient/child-ella", "child-ella", "Patient/", "Patient/a/_history/1", "http://x/Patient/1", "Nonsense/1",
               "urn:uuid:1", "Organization/evi-vgr", "%2F", "Patient/" + "a" * 70, "a|b"]
_STRINGS = ["a", "Ella", "åäö", "A%C3%85", "%00", "%zz", "%", "%2", "%C0%80", "%FF%FE", "'", "\"", "a b", "*", "_", "\\",
            "x" * 3000, "𝔘𝔫𝔦", "e%CC%81"]


def _value(kind: str) -> st.SearchStrategy:
    if kind in ("date",):
        return st.builds(str.__add__, st.sampled_from(_PREFIXES), st.sampled_from(_DATES))
    if kind == "number":
        return st.builds(str.__add__, st.sampled_from(_PREFIXES), st.sampled_from(_NUMBERS))
    if kind == "quantity":
        return st.builds(lambda p, n, u: p + n + u, st.sampled_from(_PREFIXES), st.sampled_from(_NUMBERS),
                         st.sampled_from(["", "|http://unitsofmeasure.org|mg", "||mg", "|x", "|||", "|a|b|c"]))
    if kind == "token":
        return st.sampled_from(_TOKENS)
    if kind == "reference":
        return st.sampled_from(_REFERENCES)
    if kind == "composite":
        return st.sampled_from(["a$b", "a$b$c", "$", "a|b$gt5", "a$", "a$2020-01-01"])
    if kind == "uri":
        return st.sampled_from(["http://x", "http://hl7.org/fhir/ValueSet/", "urn:oid:1", "", "%00", "x" * 500])
    return st.one_of(st.sampled_from(_STRINGS), st.text(max_size=10).map(lambda t: quote(t, safe="")))


def _encode(value: str) -> str:
    """Percent-encode what must be, keep the percent signs the fuzzer wrote."""
    return quote(value, safe="%|$:,/-._~*+'!()@")


@st.composite
def _parameter(draw, resource_type: str) -> tuple[str, str]:
    parameters = _parameters(resource_type) or (("_id", "token"),)
    code, kind = draw(st.sampled_from(parameters))
    shapes = ["plain"] * 6 + ["modifier", "modifier", "chain", "has", "or", "unknown", "result", "result"]
    shape = draw(st.sampled_from(shapes))
    if shape == "modifier":
        value = draw(st.one_of(_value(kind), st.sampled_from(["true", "false"])))
        return f"{code}:{draw(st.sampled_from(_MODIFIERS))}", value
    if shape == "chain":
        links = draw(st.lists(st.sampled_from(["subject", "patient", "organization", "owner", "name", "x", "subject:Patient",
                                                "_has:Task:focus:status", "partof"]), min_size=1, max_size=7))
        return ".".join([code, *links]), draw(_value("string"))
    if shape == "has":
        depth = draw(st.integers(1, 7))
        inner = ":".join(["_has:Task:focus"] * depth + [draw(st.sampled_from(["status", "code", "nonsense", "_id"]))])
        return draw(st.sampled_from([inner, "_has:Nonsense:x:y", "_has:Task", "_has::", "_has:Task:status:code"])), "x"
    if shape == "or":
        n = draw(st.sampled_from([2, 10, 99, 100, 101, 150]))
        return code, ",".join(draw(_value(kind)) for _ in range(n))
    if shape == "unknown":
        unknown = ["nonsense", "_nonsense", "", "%00", "a" * 300, "_text", "_filter", "_query", "_content"]
        return draw(st.sampled_from(unknown)), "x"
    if shape == "result":
        return draw(_result_parameter(resource_type))
    return code, draw(_value(kind))


@st.composite
def _result_parameter(draw, resource_type: str) -> tuple[str, str]:
    name = draw(st.sampled_from(["_count", "_offset", "_sort", "_elements", "_summary", "_total", "_contained", "_include",
                                 "_revinclude", "_include:iterate", "_revinclude:iterate", "_type", "_format", "_pretty",
                                 "_getpages", "_getpagesoffset", "_include:recurse", "_include:x"]))
    numbers = ["0", "1", "-1", "20", "1000", "1001", "1000000", "1000001", "9223372036854775808",
               "99999999999999999999", "abc", "1.5", "１", ""]
    values = {
        "_count": numbers, "_offset": numbers, "_getpagesoffset": numbers,
        "_sort": ["_id", "-_lastUpdated", "name,-birthdate", "nonsense", "-", ",", "code-value-quantity", "_id," * 120],
        "_elements": ["id", "name,birthDate", "nonsense", "", ",", "meta.tag", "*", "x," * 120],
        "_summary": ["true", "false", "text", "data", "count", "x"],
        "_total": ["none", "estimate", "accurate", "x"],
        "_contained": ["true", "false", "both", "x"],
        "_type": ["Patient", "Patient,Task", "Nonsense", "", ",", "Patient," * 120],
        "_format": ["json", "application/fhir+json", "xml", "x"],
        "_pretty": ["true", "false", "x"],
        "_getpages": ["x", "", "0" * 32],
    }.get(name.split(":")[0], [f"{resource_type}:subject", "*", f"{resource_type}:*", "Task:focus:ServiceRequest",
                               "Nonsense:x", f"{resource_type}:nonsense", ":", f"{resource_type}:subject:Nonsense"])
    return name, draw(st.sampled_from(values))


@st.composite
def search_query(draw, resource_type: str) -> str:
    many = draw(st.integers(0, 9)) == 0
    count = draw(st.integers(25, 45)) if many else draw(st.integers(0, 5))
    if many and draw(st.booleans()):
        params = [draw(_parameter(resource_type))] * count  # one parameter repeated
    else:
        params = [draw(_parameter(resource_type)) for _ in range(count)]
    pairs = [f"{_encode(name)}={_encode(value)}" for name, value in params]
    while len(pairs) > 1 and sum(len(p) + 1 for p in pairs) > _MAX_QUERY:
        pairs.pop()  # longer URLs never reach the application (the HTTP parser answers)
    return "&".join(pairs)[:_MAX_QUERY]


_HISTORY = ["_since=2020-01-01T00:00:00Z", "_since=2020-01-01", "_since=2020-01-01T00:00:00%2B99:00", "_at=2020",
            "_at=2020-01-01T00:00:00-15:00", "_at=x", "_count=0", "_count=1", "_count=99999999999999999999",
            "_count=-1", "_count=%C2%B2", "_cursor=1", "_cursor=99999999999999999999", "_cursor=x", "_format=json",
            "_sort=x", "_since=", "_at=0001-01-01T00:00:00%2B01:00"]


@st.composite
def _read_like(draw) -> Case:
    rt = draw(url_type())
    rid = draw(st.one_of(st.sampled_from([r["id"] for r in examples()]), odd_id()))
    kind = draw(st.sampled_from(["read", "vread", "history", "history-type", "history-system", "compartment",
                                 "everything", "operation", "delete"]))
    if kind == "read":
        return Case("read", "GET", f"/{rt}/{rid}")
    if kind == "vread":
        vid = draw(st.sampled_from(["1", "2", "0", "-1", "99999999999999999999", "9223372036854775808", "abc", "1.0",
                                    "%C2%B2", "%D9%A3", "1" * 400, ""]))
        return Case("vread", "GET", f"/{rt}/{rid}/_history/{vid}")
    if kind.startswith("history"):
        query = "&".join(draw(st.lists(st.sampled_from(_HISTORY), max_size=3)))
        path = {"history": f"/{rt}/{rid}/_history", "history-type": f"/{rt}/_history", "history-system": "/_history"}[kind]
        return Case("history", "GET", f"{path}?{query}")
    if kind == "compartment":
        target = draw(st.sampled_from(["Task", "ServiceRequest", "Observation", "*", "Nonsense", "Patient"]))
        owner = draw(st.sampled_from(["Patient", "Practitioner", "Encounter", "RelatedPerson", rt]))
        query = draw(search_query(target if target not in ("*", "Nonsense") else "Patient"))
        return Case("search", "GET", f"/{owner}/{rid}/{target}?{query}")
    if kind == "everything":
        return Case("operation", "GET", f"/Patient/{rid}/$everything?{draw(search_query('Patient'))}")
    if kind == "delete":
        return Case("delete", "DELETE", f"/{rt}/{draw(odd_id())}")
    op = draw(st.sampled_from([
        "/ValueSet/$expand?url=http://hl7.org/fhir/ValueSet/administrative-gender&count=99999999999999999999",
        "/ValueSet/$expand?url=x&offset=-1", "/ValueSet/$expand?filter=%00&count=%C2%B2",
        "/ValueSet/$expand?url=http://hl7.org/fhir/ValueSet/administrative-gender&count=%C2%B2",
        "/CodeSystem/$lookup?system=http://hl7.org/fhir/administrative-gender&code=%00",
        "/CodeSystem/$lookup?system=&code=", "/ValueSet/$validate-code?url=x&code=y&system=%zz",
        "/ValueSet/$validate-code?url=http://hl7.org/fhir/ValueSet/administrative-gender&code=male&display=%00",
        "/Task/$triage-queue?_count=99999999999999999999", "/Task/$triage-queue?x=y", f"/{rt}/$nonsense", "/$nonsense",
        f"/{rt}/{rid}/$nonsense", "/metadata?mode=x", "/metadata", "/", "/%00", "/Patient/$validate",
    ]))
    return Case("operation", "GET", op)


@st.composite
def _search(draw) -> Case:
    rt = draw(st.sampled_from(_types()))
    query = draw(search_query(rt))
    where = draw(st.sampled_from(["type", "type", "type", "post", "strict", "system", "unknown-type"]))
    if where == "post":
        return Case("search", "POST", f"/{rt}/_search", query.encode(), (("Content-Type", _FORM),))
    if where == "strict":
        return Case("search", "GET", f"/{rt}?{query}", None, (("Prefer", "handling=strict"),))
    if where == "system":
        return Case("search", "GET", f"/?{query}&_type={rt}" if draw(st.booleans()) else f"/?{query}")
    if where == "unknown-type":
        return Case("search", "GET", f"/{draw(url_type())}?{query}")
    return Case("search", "GET", f"/{rt}?{query}")


def url_cases() -> st.SearchStrategy:
    return st.one_of(_search(), _search(), _search(), _read_like(), _read_like())
