"""Nothing ``$validate`` refuses is stored (issue 11): the base invariants, reference
targets and the guide's extension definitions on every write -- create, update, the result of a PATCH, the
entries of transactions and batches (engine/write.py ``prepare``). One regression test
per gap the write path had (docs/input-limits.md): the write is a 400 naming the
invariant and where, nothing is stored, and ``$validate`` reports the same."""

from __future__ import annotations

import copy

import orjson
import pytest

JSON = "application/fhir+json"
EVI = "https://evi-fhir.org/fhir"
XHTML = 'xmlns="http://www.w3.org/1999/xhtml"'
CONTACT_CHANNEL = f"{EVI}/StructureDefinition/evi-contact-channel"


def _sr(uid: str, **extra) -> dict:
    return {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
            "identifier": [{"system": "urn:test", "value": uid}], "subject": {"reference": "Patient/x"}, **extra}


def _org(**extra) -> dict:
    return {"resourceType": "Organization", "id": "o", "name": "Mottagning", **extra}


#: name -> (what the ServiceRequest gets, the key or text the answer names, where)
GAPS = {
    "txt-1 script": ({"text": {"status": "generated", "div": f"<div {XHTML}><script>alert(1)</script></div>"}},
                     "txt-1", "ServiceRequest.text.div"),
    "txt-1 not a div": ({"text": {"status": "generated", "div": "<p>plain</p>"}}, "txt-1", "ServiceRequest.text.div"),
    "ref-1": ({"requester": {"reference": "#missing"}}, "ref-1", "ServiceRequest.requester"),
    "dom-2": ({"contained": [_org(contained=[{"resourceType": "Patient", "id": "p"}])],
               "requester": {"reference": "#o"}}, "dom-2", "ServiceRequest"),
    "dom-4": ({"contained": [_org(meta={"versionId": "3"})], "requester": {"reference": "#o"}},
              "dom-4", "ServiceRequest"),
    "dom-5": ({"contained": [_org(meta={"security": [{"system": "urn:s", "code": "R"}]})],
               "requester": {"reference": "#o"}}, "dom-5", "ServiceRequest"),
    "per-1": ({"occurrencePeriod": {"start": "2026-03-02T10:00:00+01:00", "end": "2026-03-01T10:00:00+01:00"}},
              "per-1", "ServiceRequest.occurrencePeriod"),
    "qty-3": ({"quantityQuantity": {"value": 2, "code": "h"}}, "qty-3", "ServiceRequest.quantityQuantity"),
    # not an invariant, but $validate's too (the 20,000-case fuzz run, seed 0, stored one)
    "reference type": ({"subject": {"reference": "http://other.example/fhir/Organization/1"}},
                       "Invalid reference type", "ServiceRequest.subject"),
    "extension value type": ({"extension": [{"url": CONTACT_CHANNEL, "valueString": "phone-acute"}]},
                             CONTACT_CHANNEL, "ServiceRequest.extension[0]"),
    "extension code outside its binding": (
        {"extension": [{"url": CONTACT_CHANNEL, "valueCoding": {"system": "urn:other", "code": "phone-acute"}}]},
        "evi-contact-channel", "ServiceRequest.extension[0]"),
}


def _refused(r, mention: str, where: str) -> None:
    assert r.status_code == 400, r.text
    issues = r.json()["issue"]
    assert any(mention in i["diagnostics"] and any(e.startswith(where) for e in i.get("expression", ()))
               for i in issues), issues


def _validate_reports(http, resource: dict, mention: str, where: str) -> None:
    r = http.post(f"/{resource['resourceType']}/$validate", json=resource)
    assert r.status_code == 200, r.text
    errors = [i for i in r.json()["issue"] if i["severity"] == "error"]
    assert any(mention in i["diagnostics"] and any(e.startswith(where) for e in i.get("expression", ()))
               for i in errors), errors


def _stored(http, uid: str) -> int:
    return http.get("/ServiceRequest", params={"identifier": f"urn:test|{uid}", "_summary": "count"}).json()["total"]


@pytest.mark.parametrize("gap", GAPS, ids=list(GAPS))
def test_a_create_is_refused_as_validate_refuses_it(http, uid, gap):
    extra, mention, where = GAPS[gap]
    resource = _sr(uid, **extra)
    _refused(http.post("/ServiceRequest", json=resource), mention, where)
    assert _stored(http, uid) == 0
    _validate_reports(http, resource, mention, where)
    if mention.startswith(("txt", "ref", "dom", "per", "qty")):  # an invariant: its key and the wording of $validate
        issue = http.post("/ServiceRequest", json=resource).json()["issue"][0]
        assert issue["code"] == "invariant" and issue["diagnostics"].startswith(f"{mention}: ")


@pytest.mark.parametrize("gap", ["txt-1 script", "per-1", "extension code outside its binding"])
def test_an_update_and_a_patch_are_refused_and_change_nothing(http, uid, gap):
    extra, mention, where = GAPS[gap]
    created = http.post("/ServiceRequest", json=_sr(uid)).json()
    rid = created["id"]
    _refused(http.put(f"/ServiceRequest/{rid}", json={**_sr(uid, **extra), "id": rid}), mention, where)
    ops = [{"op": "add", "path": f"/{key}", "value": value} for key, value in extra.items()]
    _refused(http.patch(f"/ServiceRequest/{rid}", content=orjson.dumps(ops),
                        headers={"Content-Type": "application/json-patch+json"}), mention, where)
    assert http.get(f"/ServiceRequest/{rid}").json()["meta"]["versionId"] == created["meta"]["versionId"]


def test_a_transaction_with_one_invalid_entry_stores_nothing(http, uid):
    extra, mention, where = GAPS["dom-4"]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": _sr(uid), "request": {"method": "POST", "url": "ServiceRequest"}},
        {"resource": _sr(uid, **extra), "request": {"method": "POST", "url": "ServiceRequest"}},
    ]}
    r = http.post("", json=bundle)
    _refused(r, mention, where)
    assert "Bundle.entry[1]" in r.json()["issue"][0]["diagnostics"]
    assert _stored(http, uid) == 0
    bundle["type"] = "batch"
    entries = http.post("", json=bundle).json()["entry"]
    assert [e["response"]["status"][:3] for e in entries] == ["201", "400"]
    assert mention in entries[1]["response"]["outcome"]["issue"][0]["diagnostics"]
    assert _stored(http, uid) == 1


def test_valid_uses_of_the_same_constructs_are_stored(http, uid):
    resource = _sr(uid, text={"status": "generated", "div": f"<div {XHTML}><p>Remiss</p></div>"},
                   contained=[_org()], requester={"reference": "#o"},
                   occurrencePeriod={"start": "2026-03-01T10:00:00+01:00", "end": "2026-03-01T10:00:00+01:00"},
                   quantityQuantity={"value": 2, "system": "http://unitsofmeasure.org", "code": "h"},
                   extension=[{"url": CONTACT_CHANNEL, "valueCoding": {
                       "system": f"{EVI}/CodeSystem/evi-contact-channel", "code": "phone-acute"}}])
    r = http.post("/ServiceRequest", json=resource)
    assert r.status_code == 201, r.text
    stored = http.get(f"/ServiceRequest/{r.json()['id']}").json()
    outcome = http.post("/ServiceRequest/$validate", json=stored).json()
    assert [i for i in outcome["issue"] if i["severity"] == "error"] == []


def test_the_guides_snapshots_are_refused_from_clients(http, uid):
    """The guide's StructureDefinitions are seeded by the server although their generated
    snapshots break sdf-3 and eld-18 (engine/guide.py, GuideContent.validate): a client
    may not store such a snapshot, and $validate says why."""
    served = http.get("/StructureDefinition/evi-patient").json()
    own = {k: v for k, v in copy.deepcopy(served).items() if k not in ("id", "meta")}
    own.update(url=f"https://region.example/fhir/StructureDefinition/{uid}", name="RegionPatient")
    _refused(http.post("/StructureDefinition", json=own), "eld-18", "StructureDefinition.snapshot.element[")
    _validate_reports(http, served, "sdf-3", "StructureDefinition.snapshot")
    assert http.get("/StructureDefinition", params={"url": own["url"]}).json()["total"] == 0
