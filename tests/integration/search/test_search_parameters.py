"""SearchParameter resources at run time (R4 searchparameter.html) and $reindex:
an active SearchParameter is honoured for new writes; $reindex applies it to what
was stored before; a definition that cannot work is refused with 422; a retired
one stops being used."""

from __future__ import annotations

import pytest

from tests.integration.search.conftest import outcome, patient

MARITAL = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
KOMMUN_EXT = "http://electronichealth.se/fhir/StructureDefinition/kommun"
SP_MARITAL = "http://evi.example/fhir/SearchParameter/patient-marital-status"
SP_KOMMUN = "http://evi.example/fhir/SearchParameter/patient-kommun"


def _married(rid: str, code: str) -> dict:
    return patient(rid, maritalStatus={"coding": [{"system": MARITAL, "code": code}]})


def _kommun(rid: str, name: str) -> dict:
    return patient(rid, extension=[{"url": KOMMUN_EXT, "valueString": name}])


def _sp(url: str, code: str, kind: str, expression: str | None, status: str = "active", base=("Patient",)) -> dict:
    sp = {"resourceType": "SearchParameter", "url": url, "name": code.replace("-", "_"), "status": status,
          "description": f"EVI test parameter {code}", "code": code, "base": list(base), "type": kind}
    if expression is not None:
        sp["expression"] = expression
    return sp


def _warned(body: dict, name: str) -> bool:
    oo = outcome(body)
    return bool(oo) and any(name in (i.get("diagnostics") or "") or name in (i.get("expression") or ())
                            for i in oo["issue"])


def test_runtime_search_parameter_then_reindex(own_server):
    fhir = own_server
    fhir.put(_married("sp-old-m", "M"))
    fhir.put(_married("sp-old-s", "S"))

    # not a parameter yet: reported and ignored
    before = fhir.bundle("Patient?marital-status=M")
    assert _warned(before, "marital-status")

    r = fhir.post(_sp(SP_MARITAL, "marital-status", "token", "Patient.maritalStatus"))
    assert r.status_code == 201, r.text

    # honoured for new writes, without a warning
    fhir.put(_married("sp-new-m", "M"))
    fhir.put(_married("sp-new-w", "W"))
    after = fhir.bundle("Patient?marital-status=M")
    assert not _warned(after, "marital-status")
    assert fhir.ids("Patient?marital-status=M") == {"sp-new-m"}  # older ones are not indexed yet
    assert fhir.ids(f"Patient?marital-status={MARITAL}|W") == {"sp-new-w"}

    # an update of an old resource indexes it
    fhir.put(_married("sp-old-s", "S"))
    assert fhir.ids("Patient?marital-status=S") == {"sp-old-s"}

    # $reindex (type level) applies the parameter to what was stored before
    r = fhir.http.post("/Patient/$reindex")
    assert r.status_code == 200, r.text
    assert r.json()["resourceType"] == "Parameters"
    assert fhir.ids("Patient?marital-status=M") == {"sp-old-m", "sp-new-m"}
    assert fhir.ids("Patient?marital-status=M,W") == {"sp-old-m", "sp-new-m", "sp-new-w"}
    assert fhir.ids("Patient?marital-status:not=M") == {"sp-old-s", "sp-new-w"}
    assert fhir.ids("Patient?marital-status=D") == set()


def test_runtime_string_parameter_on_an_extension_with_system_reindex(own_server):
    fhir = own_server
    fhir.put(_kommun("km-old", "Malmö"))
    sp = _sp(SP_KOMMUN, "kommun", "string", f"Patient.extension.where(url='{KOMMUN_EXT}').value")
    r = fhir.post(sp)
    assert r.status_code == 201, r.text
    fhir.put(_kommun("km-new", "Lund"))
    assert fhir.ids("Patient?kommun=lund") == {"km-new"}

    r = fhir.http.post("/$reindex")
    assert r.status_code == 200, r.text
    assert fhir.ids("Patient?kommun=malmo") == {"km-old"}  # accent-insensitive like every string parameter
    assert fhir.ids("Patient?kommun:exact=Malmö") == {"km-old"}
    assert fhir.ids("Patient?kommun=göteborg") == set()


def test_retired_search_parameter_is_no_longer_used(own_server):
    fhir = own_server
    url = "http://evi.example/fhir/SearchParameter/patient-retire-me"
    r = fhir.post(_sp(url, "retire-me", "token", "Patient.gender"))
    assert r.status_code == 201, r.text
    sp = r.json()
    fhir.put(patient("rt-1", gender="other"))
    assert fhir.ids("Patient?retire-me=other") == {"rt-1"}

    sp["status"] = "retired"
    r = fhir.http.put(f"/SearchParameter/{sp['id']}", json=sp, headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 200, r.text
    assert _warned(fhir.bundle("Patient?retire-me=other"), "retire-me")


@pytest.mark.parametrize(
    "resource",
    [
        _sp("http://evi.example/fhir/SearchParameter/bad-1", "bad-one", "token", "Patient.name.where("),
        _sp("http://evi.example/fhir/SearchParameter/bad-2", "bad-two", "string", "Patient.name)))"),
        _sp("http://evi.example/fhir/SearchParameter/bad-3", "bad-three", "token", None),  # no expression
        _sp("http://evi.example/fhir/SearchParameter/bad-4", "bad-four", "special", "Patient.name"),
        _sp("http://evi.example/fhir/SearchParameter/bad-6", "bad-six", "token", "Patient.name.where(use = )"),
    ],
    ids=["unbalanced", "extra-parens", "no-expression", "special-type", "missing-operand"],
)
def test_unusable_active_search_parameter_is_422(own_server, resource):
    r = own_server.post(resource)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["severity"] in ("error", "fatal")
    # and it was not registered
    code = resource["code"]
    assert own_server.get(f"SearchParameter?url={resource['url']}").json()["total"] == 0
    assert _warned(own_server.bundle(f"Patient?{code}=x"), code)


def test_unknown_base_type_is_refused(own_server):
    """A base that is no resource type fails validation (400) or the business rule (422)."""
    sp = _sp("http://evi.example/fhir/SearchParameter/bad-5", "bad-five", "token", "Patient.gender", base=("NotAType",))
    r = own_server.post(sp)
    assert r.status_code in (400, 422), r.text
    assert r.json()["resourceType"] == "OperationOutcome"


def test_draft_search_parameter_is_stored_but_not_used(own_server):
    sp = _sp("http://evi.example/fhir/SearchParameter/draft-1", "draft-one", "token", "Patient.gender", status="draft")
    r = own_server.post(sp)
    assert r.status_code == 201, r.text
    assert _warned(own_server.bundle("Patient?draft-one=female"), "draft-one")


def test_reindex_unknown_type_is_refused(own_server):
    r = own_server.http.post("/NotAType/$reindex")
    assert r.status_code in (400, 404), r.text
