"""Fuzz cases: one HTTP request each, as hypothesis strategies.

``write_cases``: mutated examples sent as create, update, JSON Patch, conditional
create/update/patch/delete, ``$validate`` and ``$triage``. ``bundle_cases``: mutated examples inside transaction and
batch Bundles, and mutated scenario Bundles. ``url_cases``: hostile URLs — search
parameters with every prefix and modifier, huge and negative numbers, malformed
dates, deep and unknown chains/_has/_include, very many and repeated parameters,
percent-encoded junk, odd path segments (ids, versions, operations), the result
parameters and the history parameters.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

import orjson
from hypothesis import strategies as st

from fhir_server.conformance import ig_directory, ig_search_parameters
from fhir_server.search import SearchRegistry
from tests.fuzz.mutations import copy, encode, mutated, paths_of, raw_body
from tests.fuzz.seeds import examples, scenarios

__all__ = ["Case", "cases", "write_cases", "bundle_cases", "url_cases", "FHIR_JSON"]

FHIR_JSON = "application/fhir+json"
_PATCH = "application/json-patch+json"
_FORM = "application/x-www-form-urlencoded"
#: a query string's length, well inside what uvicorn's HTTP parser takes
_MAX_QUERY = 12_000


@dataclass(frozen=True)
class Case:
    interaction: str
    method: str
    #: relative to the base, already percent-encoded ("/Patient?name=x")
    path: str
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()
    #: stored resources (type, id) that a refused request must leave as they were
    targets: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        body = "" if self.body is None else f" body[{len(self.body)}]={self.body[:300]!r}"
        return f"{self.method} {self.path[:300]}{body}"


# ------------------------------------------------------------------ bodies


def _seed() -> st.SearchStrategy:
    """An example as it is, or without its meta: an example claims an EVI profile, whose
    validator would refuse many mutations before the base validation is put to the test."""
    return st.one_of(st.sampled_from(examples()), st.sampled_from(_without_meta()))


@lru_cache(maxsize=1)
def _without_meta() -> tuple[dict, ...]:
    return tuple({k: v for k, v in r.items() if k != "meta"} for r in examples())


def _body_of(resource) -> st.SearchStrategy:
    """A mutated resource's bytes; now and then the example unchanged, or bytes broken below JSON."""
    body = encode(resource)
    return st.one_of(*[mutated(resource).map(encode)] * 5, st.just(body), st.just(body), raw_body(resource))


def _json_headers(content_type: str = FHIR_JSON) -> st.SearchStrategy:
    return st.sampled_from([
        *[(("Content-Type", content_type),)] * 6,
        (("Content-Type", "application/xml"),),
        (("Content-Type", content_type), ("Prefer", "return=OperationOutcome")),
        (("Content-Type", content_type), ("If-Match", 'W/"1"')),
        (("Content-Type", content_type), ("If-Match", 'W/"99999999999999999999"')),
        (),
    ])


@st.composite
def _create(draw) -> Case:
    resource = draw(_seed())
    rt = draw(st.one_of(st.just(resource["resourceType"]), st.just(resource["resourceType"]), _url_type()))
    without_id = {k: v for k, v in resource.items() if k != "id"}
    return Case("create", "POST", f"/{rt}", draw(_body_of(without_id)), draw(_json_headers()))


@st.composite
def _update(draw) -> Case:
    resource = draw(_seed())
    rt, rid = resource["resourceType"], resource["id"]
    url_id = draw(st.one_of(st.just(rid), st.just(rid), st.just(uuid.uuid4().hex[:12]), _odd_id()))
    return Case("update", "PUT", f"/{rt}/{url_id}", draw(_body_of(resource)), draw(_json_headers()), ((rt, rid),))


@st.composite
def _conditional_create(draw) -> Case:
    resource = draw(_seed())
    rt = resource["resourceType"]
    query = draw(_query(rt))
    body = draw(_body_of({k: v for k, v in resource.items() if k != "id"}))
    return Case("create", "POST", f"/{rt}", body, (("Content-Type", FHIR_JSON), ("If-None-Exist", query)))


@st.composite
def _patch(draw) -> Case:
    resource = draw(_seed())
    rt, rid = resource["resourceType"], resource["id"]
    ops = draw(_json_patch(resource))
    body = draw(st.one_of(st.just(encode(ops)), st.just(encode(ops)), st.just(encode(ops)), raw_body(ops)))
    headers = draw(st.sampled_from([(("Content-Type", _PATCH),)] * 4 + [(("Content-Type", FHIR_JSON),)]))
    return Case("patch", "PATCH", f"/{rt}/{rid}", body, headers, ((rt, rid),))


def _pointer(path) -> str:
    return "".join("/" + str(k).replace("~", "~0").replace("/", "~1") for k in path)


@st.composite
def _json_patch(draw, resource: dict):
    paths = paths_of(resource)
    ops = []
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths[1:]))
        node = resource
        for key in path:
            node = node[key]
        pointer = draw(st.sampled_from([_pointer(path)] * 5 + [
            _pointer(path[:-1]) + "/-", _pointer(path) + "/0", "", "/", _pointer(path) + "/nope", "nope", "/~2",
            _pointer(path).upper(), "/id", "/resourceType", "/meta/versionId", "/extension/-",
        ]))
        op = {"op": draw(st.sampled_from(["add", "replace", "replace", "remove", "move", "copy", "test", "bogus"])),
              "path": pointer}
        if op["op"] in ("add", "replace", "test"):
            op["value"] = draw(st.one_of(st.just(copy(node)), mutated({"v": copy(node)}).map(lambda d: d.get("v")
                                         if isinstance(d, dict) else d)))
        if op["op"] in ("move", "copy"):
            op["from"] = _pointer(draw(st.sampled_from(paths[1:])))
        ops.append(op)
    return draw(st.one_of(st.just(ops), st.just(ops), mutated(ops, 1)))


@st.composite
def _validate(draw) -> Case:
    resource = draw(_seed())
    rt = resource["resourceType"]
    kind = draw(st.sampled_from(["body", "body", "parameters", "instance", "mode"]))
    if kind == "instance":
        rid = draw(st.one_of(st.just(resource["id"]), _odd_id()))
        return Case("validate", "GET", f"/{rt}/{rid}/$validate?mode={draw(st.sampled_from(['update', 'delete', 'x']))}")
    body = draw(mutated(resource))
    if kind == "parameters":
        params = {"resourceType": "Parameters", "parameter": [
            {"name": "resource", "resource": body}, {"name": "mode", "valueCode": draw(st.sampled_from(["create", "x"]))}]}
        return Case("validate", "POST", f"/{rt}/$validate", encode(draw(st.one_of(st.just(params), mutated(params)))),
                    (("Content-Type", FHIR_JSON),))
    query = "" if kind == "body" else "?profile=" + quote(draw(st.sampled_from(["x", "http://hl7.org/fhir/StructureDefinition/Patient", "%zz"])), safe="%")
    return Case("validate", "POST", f"/{rt}/$validate{query}", encode(body), (("Content-Type", FHIR_JSON),))


@st.composite
def _conditional(draw) -> Case:
    """Conditional update, patch and delete: the search criteria are hostile too."""
    resource = draw(_seed())
    rt = resource["resourceType"]
    query = draw(st.one_of(st.just(f"_id={resource['id']}"), _query(rt)))
    method = draw(st.sampled_from(["PUT", "PUT", "PATCH", "DELETE"]))
    if method == "PUT":
        return Case("update", "PUT", f"/{rt}?{query}", draw(_body_of(resource)), (("Content-Type", FHIR_JSON),))
    if method == "PATCH":
        body = encode(draw(_json_patch(resource)))
        return Case("patch", "PATCH", f"/{rt}?{query}", body, (("Content-Type", _PATCH),))
    return Case("delete", "DELETE", f"/{rt}?{query}")


_OUTCOMES = ["advice", "book-first-visit", "refer-acute", "redirect-existing-contact", "not-eligible", "nonsense"]


@st.composite
def _triage(draw) -> Case:
    task = draw(st.sampled_from([r["id"] for r in examples() if r["resourceType"] == "Task"] + ["x", "%00"]))
    outcome = draw(st.sampled_from(_OUTCOMES))
    params = {"resourceType": "Parameters", "parameter": [
        {"name": "outcome", "valueCoding": {"system": "https://evi-fhir.org/fhir/CodeSystem/evi-triage-outcome",
                                            "code": outcome}},
        {"name": "slot", "valueReference": {"reference": "Slot/bup-uddevalla-2026-02-10-0900"}},
        {"name": "note", "valueString": "fuzz"},
    ]}
    body = draw(st.one_of(st.just(params), mutated(params)))
    return Case("operation", "POST", f"/Task/{task}/$triage", encode(body), (("Content-Type", FHIR_JSON),))


def write_cases() -> st.SearchStrategy:
    return st.one_of(_create(), _create(), _update(), _update(), _patch(), _patch(), _validate(), _conditional_create(),
                     _conditional(), _triage())


# ------------------------------------------------------------------ bundles


@st.composite
def _entry(draw) -> dict:
    resource = draw(_seed())
    rt = resource["resourceType"]
    method = draw(st.sampled_from(["POST", "POST", "PUT", "PUT", "DELETE", "GET", "PATCH", "HEAD"]))
    body = draw(st.one_of(st.just(copy(resource)), mutated(resource)))
    url = {"POST": rt, "PUT": f"{rt}/{resource['id']}", "DELETE": f"{rt}/{draw(_odd_id())}",
           "GET": f"{rt}?{draw(_query(rt))}", "PATCH": f"{rt}/{resource['id']}", "HEAD": rt}[method]
    entry = {"fullUrl": f"urn:uuid:{uuid.UUID(int=draw(st.integers(0, 2**128 - 1)))}", "request": {"method": method, "url": url}}
    if method in ("POST", "PUT"):
        entry["resource"] = body
    return entry


@st.composite
def _bundle(draw) -> Case:
    kind = draw(st.sampled_from(["transaction", "batch"]))
    if draw(st.integers(0, 3)) == 0:
        bundle = copy(draw(st.sampled_from(scenarios())))
        bundle["type"] = kind
    else:
        bundle = {"resourceType": "Bundle", "type": kind, "entry": draw(st.lists(_entry(), min_size=1, max_size=4))}
    targets = tuple(
        tuple(e["request"]["url"].split("/", 1)) for e in bundle.get("entry", ())
        if isinstance(e, dict) and e.get("request", {}).get("method") == "PUT" and "/" in e["request"]["url"]
    )
    body = draw(st.one_of(st.just(encode(bundle)), mutated(bundle).map(encode), mutated(bundle).map(encode)))
    return Case(kind, "POST", "/", body, (("Content-Type", FHIR_JSON),), targets)


def bundle_cases() -> st.SearchStrategy:
    return _bundle()


# ------------------------------------------------------------------ URLs


@lru_cache(maxsize=1)
def _registry() -> SearchRegistry:
    return SearchRegistry.from_spec(extra=ig_search_parameters(ig_directory(None)))


@lru_cache(maxsize=None)
def _parameters(resource_type: str) -> tuple[tuple[str, str], ...]:
    return tuple((d.code, d.type) for d in _registry().supported_for(resource_type))


def _types() -> list[str]:
    return sorted({r["resourceType"] for r in examples()} | {"Observation", "Bundle", "ValueSet", "CodeSystem"})


def _url_type() -> st.SearchStrategy:
    return st.one_of(st.sampled_from(_types()), st.sampled_from(["Nonsense", "patient", "Resource", "DomainResource", "_history", "$x"]))


def _odd_id() -> st.SearchStrategy:
    return st.sampled_from([
        "x", "a" * 64, "a" * 65, "%00", "%2F", "..", ".", "%20", "-", "a.b", "%C0%80", "%FF", "é", "1" * 30,
        "%25", "a%0Ab", "_history", "$validate", "child-ella", "evi-vgr",
    ])


_MODIFIERS = ["missing", "exact", "contains", "text", "not", "above", "below", "in", "not-in", "of-type", "identifier",
              "Patient", "Nonsense", "iterate", "", "MISSING", "missing:not", "$x", "%00"]
_PREFIXES = ["", "", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap", "xx", "gtge", "EQ"]
_DATES = ["2020", "2020-01", "2020-01-01", "2020-01-01T10:00", "2020-01-01T10:00:00Z", "2020-01-01T10:00:00.123456789+01:00",
          "2020-01-01T00:00:00+14:00", "2020-01-01T00:00:00-14:00", "2020-01-01T00:00:00+14:01", "2020-01-01T00:00:00+99:00",
          "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2020-13-01", "2020-02-30", "2020-01-01T24:00", "20200101",
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
    shape = draw(st.sampled_from(["plain"] * 6 + ["modifier", "modifier", "chain", "has", "or", "unknown", "result", "result"]))
    if shape == "modifier":
        return f"{code}:{draw(st.sampled_from(_MODIFIERS))}", draw(st.one_of(_value(kind), st.sampled_from(["true", "false"])))
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
        return draw(st.sampled_from(["nonsense", "_nonsense", "", "%00", "a" * 300, "_text", "_filter", "_query", "_content"])), "x"
    if shape == "result":
        return draw(_result_parameter(resource_type))
    return code, draw(_value(kind))


@st.composite
def _result_parameter(draw, resource_type: str) -> tuple[str, str]:
    name = draw(st.sampled_from(["_count", "_offset", "_sort", "_elements", "_summary", "_total", "_contained", "_include",
                                 "_revinclude", "_include:iterate", "_revinclude:iterate", "_type", "_format", "_pretty",
                                 "_getpages", "_getpagesoffset", "_include:recurse", "_include:x"]))
    numbers = ["0", "1", "-1", "20", "1000", "1001", "1000000", "1000001", "9223372036854775808", "99999999999999999999", "abc",
               "1.5", "１", ""]
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
def _query(draw, resource_type: str) -> str:
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
    rt = draw(_url_type())
    rid = draw(st.one_of(st.sampled_from([r["id"] for r in examples()]), _odd_id()))
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
        return Case("search", "GET", f"/{draw(st.sampled_from(['Patient', 'Practitioner', 'Encounter', 'RelatedPerson', rt]))}"
                    f"/{rid}/{target}?{draw(_query(target if target not in ('*', 'Nonsense') else 'Patient'))}")
    if kind == "everything":
        return Case("operation", "GET", f"/Patient/{rid}/$everything?{draw(_query('Patient'))}")
    if kind == "delete":
        return Case("delete", "DELETE", f"/{rt}/{draw(_odd_id())}")
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
    query = draw(_query(rt))
    where = draw(st.sampled_from(["type", "type", "type", "post", "strict", "system", "unknown-type"]))
    if where == "post":
        return Case("search", "POST", f"/{rt}/_search", query.encode(), (("Content-Type", _FORM),))
    if where == "strict":
        return Case("search", "GET", f"/{rt}?{query}", None, (("Prefer", "handling=strict"),))
    if where == "system":
        return Case("search", "GET", f"/?{query}&_type={rt}" if draw(st.booleans()) else f"/?{query}")
    if where == "unknown-type":
        return Case("search", "GET", f"/{draw(_url_type())}?{query}")
    return Case("search", "GET", f"/{rt}?{query}")


def url_cases() -> st.SearchStrategy:
    return st.one_of(_search(), _search(), _search(), _read_like(), _read_like())


def cases() -> st.SearchStrategy:
    """Every kind of case, writes a little more often than reads."""
    return st.one_of(write_cases(), write_cases(), bundle_cases(), url_cases(), url_cases())
