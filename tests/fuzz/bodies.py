"""Mutated bodies, as hypothesis strategies: the examples sent as create, update,
JSON Patch, conditional create/update/patch/delete, ``$validate`` and ``$triage``
(``write_cases``), and inside transaction and batch Bundles, with the scenario
Bundles (``bundle_cases``).
"""

from __future__ import annotations

import uuid
from functools import lru_cache
from urllib.parse import quote

from hypothesis import strategies as st

from tests.fuzz.case import FHIR_JSON, Case
from tests.fuzz.mutations import copy, encode, mutated, paths_of, raw_body
from tests.fuzz.seeds import examples, scenarios
from tests.fuzz.urls import odd_id, search_query, url_type

__all__ = ["write_cases", "bundle_cases"]

_PATCH = "application/json-patch+json"



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
    rt = draw(st.one_of(st.just(resource["resourceType"]), st.just(resource["resourceType"]), url_type()))
    without_id = {k: v for k, v in resource.items() if k != "id"}
    return Case("create", "POST", f"/{rt}", draw(_body_of(without_id)), draw(_json_headers()))


@st.composite
def _update(draw) -> Case:
    resource = draw(_seed())
    rt, rid = resource["resourceType"], resource["id"]
    url_id = draw(st.one_of(st.just(rid), st.just(rid), st.just(uuid.uuid4().hex[:12]), odd_id()))
    return Case("update", "PUT", f"/{rt}/{url_id}", draw(_body_of(resource)), draw(_json_headers()), ((rt, rid),))


@st.composite
def _conditional_create(draw) -> Case:
    resource = draw(_seed())
    rt = resource["resourceType"]
    query = draw(search_query(rt))
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
        rid = draw(st.one_of(st.just(resource["id"]), odd_id()))
        return Case("validate", "GET", f"/{rt}/{rid}/$validate?mode={draw(st.sampled_from(['update', 'delete', 'x']))}")
    body = draw(mutated(resource))
    if kind == "parameters":
        params = {"resourceType": "Parameters", "parameter": [
            {"name": "resource", "resource": body}, {"name": "mode", "valueCode": draw(st.sampled_from(["create", "x"]))}]}
        return Case("validate", "POST", f"/{rt}/$validate", encode(draw(st.one_of(st.just(params), mutated(params)))),
                    (("Content-Type", FHIR_JSON),))
    profile = draw(st.sampled_from(["x", "http://hl7.org/fhir/StructureDefinition/Patient", "%zz"]))
    query = "" if kind == "body" else "?profile=" + quote(profile, safe="%")
    return Case("validate", "POST", f"/{rt}/$validate{query}", encode(body), (("Content-Type", FHIR_JSON),))


@st.composite
def _conditional(draw) -> Case:
    """Conditional update, patch and delete: the search criteria are hostile too."""
    resource = draw(_seed())
    rt = resource["resourceType"]
    query = draw(st.one_of(st.just(f"_id={resource['id']}"), search_query(rt)))
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
    url = {"POST": rt, "PUT": f"{rt}/{resource['id']}", "DELETE": f"{rt}/{draw(odd_id())}",
           "GET": f"{rt}?{draw(search_query(rt))}", "PATCH": f"{rt}/{resource['id']}", "HEAD": rt}[method]
    full_url = f"urn:uuid:{uuid.UUID(int=draw(st.integers(0, 2**128 - 1)))}"
    entry = {"fullUrl": full_url, "request": {"method": method, "url": url}}
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
