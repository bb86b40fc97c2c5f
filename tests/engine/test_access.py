"""Who may see what, enforced in the engine (engine/access.py, policies/access.toml,
domain.md §5), on the example data of a region and on both storage backends: reads of
the invisible are 404, searches / _total / includes / history / $everything never
contain them, writes whose result is invisible are 403 and store nothing, scopes are
checked per interaction, and protected identity is redacted on every path."""

from __future__ import annotations

import json
import uuid

import orjson
import pytest

from fhir_server.app import build_runtime
from fhir_server.engine import (
    RequestContext, create, history, parse_history_params, plan_everything, plan_search, process_bundle, read,
    search, update, vread,
)
from fhir_server.errors import Forbidden, NotFound
from fhir_server.security import Caller, Scopes
from fhir_server.settings import Settings
from tests.support.evi import EXAMPLES, TEST_REGION

BASE = "http://127.0.0.1:8080/fhir"
SL = "http://hl7.se/fhir/ig/base/CodeSystem/SecurityLabel"
ALL = Scopes.parse("system/*.cruds")


def _store(kind: str, tmp_path):
    if kind == "mongomock":
        from fhir_server.storage.mongo import MongoStore
        from tests.support.mongo_replica_set import ReplicaSet

        return MongoStore(ReplicaSet(), "evi")
    from fhir_server.storage import open_store

    return open_store(f"sqlite://{tmp_path / 'access.db'}")


@pytest.fixture(scope="module", params=["sqlite-file", "mongomock"])
def runtime(request, tmp_path_factory):
    store = _store(request.param, tmp_path_factory.mktemp("access"))
    rt = build_runtime(Settings(storage="sqlite://:memory:", region_file=str(TEST_REGION)), store=store)
    resources = [json.loads(p.read_text()) for p in sorted((EXAMPLES / "valid").glob("*.json"))]
    resources += [PROTECTED, REFERRAL_OF_PROTECTED]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in resources]}
    process_bundle(rt, RequestContext(base_url=BASE), bundle)
    yield rt
    store.close()


PROTECTED = {
    "resourceType": "Patient", "id": "protected-tove",
    "meta": {"security": [{"system": SL, "code": "sekretessmarkering"}]},
    "identifier": [{"system": "urn:evi:test:access", "value": "tove"}],
    "name": [{"family": "Skyddad", "given": ["Tove"]}], "gender": "female", "birthDate": "2013-05-05",
    "address": [{"line": ["Hemliga vägen 1"], "city": "Hemlingby", "postalCode": "45199"}],
    "telecom": [{"system": "phone", "value": "0701234567"}],
    "contact": [{"name": {"family": "Vårdnadshavare"}, "telecom": [{"system": "phone", "value": "0707654321"}]},
                {"address": {"city": "Hemlingby"}}],
    "managingOrganization": {"reference": "Organization/vardcentral-uddevalla"},
}
REFERRAL_OF_PROTECTED = {
    "resourceType": "ServiceRequest", "id": "referral-tove", "status": "active", "intent": "order",
    "subject": {"reference": "Patient/protected-tove"}, "performer": [{"reference": "Organization/bup-uddevalla"}],
    "requester": {"reference": "Organization/vardcentral-uddevalla"},
}


def ctx(role: str, organization: str | None = None, scopes: Scopes = ALL) -> RequestContext:
    caller = Caller(role, scopes, client_id=f"test-{role}", organization=organization)
    return RequestContext(base_url=BASE, caller=caller, from_client=True)


KALMAR_SOC = ctx("municipality", "Organization/socialtjansten-kalmar")
UDDEVALLA_SOC = ctx("municipality", "Organization/socialtjansten-uddevalla")
BUP = ctx("care-unit", "Organization/bup-uddevalla")
VARDCENTRAL = ctx("care-unit", "Organization/vardcentral-uddevalla")
EVI = ctx("evi", "Organization/evi-vgr")
REPORTING = ctx("reporting", None)


def _ids(runtime, c, rtype, params=()) -> tuple[set[str], int | None]:
    params = [*params, ("_count", "500")]
    with runtime.work(c, write=False) as work:
        page = search(work, plan_search(work, rtype, params), params)
    return {v.id for v in page.matches}, page.total


def _read(runtime, c, rtype, rid):
    with runtime.work(c, write=False) as work:
        return orjson.loads(read(work, rtype, rid).body)


# ---------------------------------------------------------------------------- municipalities


def test_a_municipality_reads_its_own_notices_tasks_and_children_only(runtime):
    assert _read(runtime, KALMAR_SOC, "Communication", "notification-liam")["id"] == "notification-liam"
    assert _read(runtime, KALMAR_SOC, "Task", "social-services-dialogue-liam")
    assert _read(runtime, KALMAR_SOC, "Patient", "placed-child-liam")
    for rtype, rid in [("Patient", "child-oskar"), ("CarePlan", "sip-oskar"), ("CareTeam", "sip-oskar"),
                       ("Task", "intake-liam"), ("Patient", "child-hugo"), ("Consent", "sip-oskar")]:
        with pytest.raises(NotFound):
            _read(runtime, KALMAR_SOC, rtype, rid)
    # the other municipality: the SIP side, not the placed child
    assert _read(runtime, UDDEVALLA_SOC, "CarePlan", "sip-oskar")
    assert _read(runtime, UDDEVALLA_SOC, "Patient", "child-oskar")
    with pytest.raises(NotFound):
        _read(runtime, UDDEVALLA_SOC, "Patient", "placed-child-liam")


def test_searches_and_totals_leave_out_what_the_municipality_may_not_see(runtime):
    patients, total = _ids(runtime, KALMAR_SOC, "Patient")
    assert "placed-child-liam" in patients and "child-oskar" not in patients and total == len(patients)
    tasks, _ = _ids(runtime, KALMAR_SOC, "Task")
    assert "social-services-dialogue-liam" in tasks and "intake-liam" not in tasks
    sips, total = _ids(runtime, UDDEVALLA_SOC, "CarePlan")
    assert sips == {"sip-oskar"} and total == 1
    assert _ids(runtime, KALMAR_SOC, "CarePlan")[1] == 0
    with runtime.work(KALMAR_SOC, write=False) as work:
        counted = search(work, plan_search(work, "Patient", [("_summary", "count")]), [])
    assert counted.total == len(patients)


def test_includes_and_revincludes_leave_out_the_invisible(runtime):
    params = [("_id", "placed-child-liam"), ("_revinclude", "Task:subject"), ("_revinclude", "Communication:subject")]
    with runtime.work(KALMAR_SOC, write=False) as work:
        page = search(work, plan_search(work, "Patient", params), params)
    included = {(v.resource_type, v.id) for v in page.included}
    assert ("Task", "social-services-dialogue-liam") in included
    assert ("Task", "intake-liam") not in included  # owned by the EVI unit
    params = [("_id", "social-services-dialogue-liam"), ("_include", "Task:focus"), ("_include", "Task:patient")]
    with runtime.work(KALMAR_SOC, write=False) as work:
        page = search(work, plan_search(work, "Task", params), params)
    assert {(v.resource_type, v.id) for v in page.included} == {("Patient", "placed-child-liam")}


def test_history_holds_only_what_the_caller_may_see(runtime):
    for level in (("Patient", None), (None, None)):
        with runtime.work(KALMAR_SOC, write=False) as work:
            page = history(work, parse_history_params(*level, [("_count", "1000")], default_count=20, max_count=1000))
        seen = {(v.resource_type, v.id) for v in page.versions}
        assert ("Patient", "placed-child-liam") in seen
        assert not seen & {("Patient", "child-oskar"), ("Task", "intake-liam"), ("CarePlan", "sip-oskar")}
        assert page.total == len([v for v in page.versions])
    with runtime.work(KALMAR_SOC, write=False) as work, pytest.raises(NotFound):
        history(work, parse_history_params("Patient", "child-oskar", [], default_count=20, max_count=100))


def test_a_municipality_cannot_create_a_task_owned_by_another(runtime):
    task = {"resourceType": "Task", "status": "requested", "intent": "order",
            "identifier": [{"system": "urn:evi:test:access", "value": uuid.uuid4().hex}],
            "for": {"reference": "Patient/placed-child-liam"},
            "requester": {"reference": "Organization/socialtjansten-uddevalla"},
            "owner": {"reference": "Organization/socialtjansten-uddevalla"}}
    with pytest.raises(Forbidden), runtime.work(KALMAR_SOC, write=True) as work:
        create(work, "Task", task)
    params = [("identifier", f"urn:evi:test:access|{task['identifier'][0]['value']}")]
    assert _ids(runtime, EVI, "Task", params)[1] == 0  # nothing stored
    mine = {**task, "owner": {"reference": "Organization/socialtjansten-kalmar"}}
    with runtime.work(KALMAR_SOC, write=True) as work:
        created = create(work, "Task", mine)
    assert created.status == 201
    assert _ids(runtime, EVI, "Task", params)[1] == 1


def test_a_municipality_cannot_update_into_another_or_touch_the_invisible(runtime):
    theirs = _read(runtime, EVI, "CarePlan", "sip-oskar")
    with pytest.raises(NotFound), runtime.work(KALMAR_SOC, write=True) as work:
        update(work, "CarePlan", "sip-oskar", theirs)
    assert _read(runtime, EVI, "CarePlan", "sip-oskar")["meta"]["versionId"] == theirs["meta"]["versionId"]


# ---------------------------------------------------------------------------- other roles


def test_a_care_unit_sees_its_referrals_visits_and_their_patients(runtime):
    referrals, _ = _ids(runtime, BUP, "ServiceRequest")
    assert "referral-school-npf-hugo" in referrals and "phone-liam" not in referrals
    assert _ids(runtime, BUP, "Appointment")[0] >= {"first-visit-hugo"}  # through its HealthcareService
    patients, _ = _ids(runtime, BUP, "Patient")
    assert {"child-hugo", "protected-tove"} <= patients and "placed-child-liam" not in patients
    assert _ids(runtime, BUP, "Organization")[1] > 5  # the directory
    with pytest.raises(NotFound):
        _read(runtime, BUP, "Communication", "notification-liam")


def test_the_reporting_role_reads_nothing_directly(runtime):
    assert _ids(runtime, REPORTING, "Patient") == (set(), 0)
    with pytest.raises(NotFound):
        _read(runtime, REPORTING, "Patient", "child-hugo")
    with runtime.work(REPORTING, write=False) as work:
        page = search(work, plan_search(work, None, [("_count", "50")]), [])
    assert page.total == 0


def test_evi_sees_everything_of_the_region(runtime):
    patients, total = _ids(runtime, EVI, "Patient")
    assert {"child-hugo", "placed-child-liam", "child-oskar", "protected-tove"} <= patients


def test_scopes_are_checked_per_interaction(runtime):
    patients_only = ctx("evi", "Organization/evi-vgr", Scopes.parse("system/Patient.rs"))
    assert _read(runtime, patients_only, "Patient", "child-hugo")
    with pytest.raises(Forbidden):
        _read(runtime, patients_only, "Task", "intake-liam")
    with pytest.raises(Forbidden), runtime.work(patients_only, write=False) as work:
        plan_search(work, "Task", [])
    with pytest.raises(Forbidden), runtime.work(patients_only, write=True) as work:
        create(work, "Patient", {"resourceType": "Patient"})
    read_only_v1 = ctx("evi", "Organization/evi-vgr", Scopes.parse("system/*.read"))
    with pytest.raises(Forbidden), runtime.work(read_only_v1, write=True) as work:
        update(work, "Patient", "child-hugo", _read(runtime, EVI, "Patient", "child-hugo"))


# ---------------------------------------------------------------------------- protected identity

HIDDEN = ("address", "telecom", "photo")


def _redacted(resource: dict) -> bool:
    hidden = any(k in resource for k in HIDDEN) or any(
        k in c for c in resource.get("contact", []) for k in ("address", "telecom"))
    labelled = any(s.get("code") == "REDACTED" for s in resource.get("meta", {}).get("security", []))
    assert hidden != labelled, resource  # redacted exactly when labelled
    return labelled


def test_protected_identity_is_shown_to_evi_and_the_managing_unit_only(runtime):
    assert not _redacted(_read(runtime, EVI, "Patient", "protected-tove"))
    assert not _redacted(_read(runtime, VARDCENTRAL, "Patient", "protected-tove"))
    shown = _read(runtime, BUP, "Patient", "protected-tove")
    assert _redacted(shown)
    assert shown["name"] and shown["contact"] == [{"name": {"family": "Vårdnadshavare"}}]


def test_every_read_path_redacts(runtime):
    with runtime.work(BUP, write=False) as work:
        versions = [vread(work, "Patient", "protected-tove", "1")]
        page = search(work, plan_search(work, "Patient", [("_id", "protected-tove")]), [])
        versions += page.matches
        params = [("_id", "referral-tove"), ("_include", "ServiceRequest:subject")]
        versions += search(work, plan_search(work, "ServiceRequest", params), params).included
        hist = history(work, parse_history_params("Patient", "protected-tove", [], default_count=20, max_count=100))
        versions += hist.versions
        everything = search(work, plan_everything(work, "Patient", "protected-tove", []), [])
        versions += [v for v in everything.matches + everything.included if v.resource_type == "Patient"]
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient/protected-tove"}},
        {"request": {"method": "GET", "url": "Patient?_id=protected-tove"}}]}
    answer = process_bundle(runtime, BUP, bundle)
    bodies = [orjson.loads(v.body) for v in versions]
    bodies.append(orjson.loads(orjson.dumps(answer["entry"][0]["resource"])))
    bodies.append(orjson.loads(orjson.dumps(answer["entry"][1]["resource"]))["entry"][0]["resource"])
    assert len(bodies) == 7  # vread, search, include, history, $everything, two batch entries
    assert all(_redacted(b) for b in bodies)


def test_a_search_by_hidden_elements_does_not_find_a_protected_patient(runtime):
    for params in ([("address-city", "Hemlingby")], [("phone", "0701234567")], [("address", "Hemliga")]):
        assert "protected-tove" not in _ids(runtime, BUP, "Patient", params)[0]
        assert "protected-tove" in _ids(runtime, EVI, "Patient", params)[0]
        assert "protected-tove" in _ids(runtime, VARDCENTRAL, "Patient", params)[0]
    chained = [("subject:Patient.address-city", "Hemlingby")]
    assert "referral-tove" not in _ids(runtime, BUP, "ServiceRequest", chained)[0]
    assert "referral-tove" in _ids(runtime, EVI, "ServiceRequest", chained)[0]


def test_an_update_from_the_redacted_view_keeps_what_it_could_not_see(runtime):
    view = _read(runtime, BUP, "Patient", "protected-tove")
    view["name"] = [{"family": "Skyddad", "given": ["Tove", "Maria"]}]
    with runtime.work(BUP, write=True) as work:
        outcome = update(work, "Patient", "protected-tove", view)
        assert _redacted(outcome.resource)
    stored = _read(runtime, EVI, "Patient", "protected-tove")
    assert stored["name"][0]["given"] == ["Tove", "Maria"]
    assert stored["address"] == PROTECTED["address"] and stored["telecom"] == PROTECTED["telecom"]
    assert stored["contact"] == PROTECTED["contact"]
    assert not any(s.get("code") == "REDACTED" for s in stored["meta"]["security"])


def test_runtime_configuration_is_for_admin_only(runtime):
    from fhir_server.engine import reindex

    parameter = {"resourceType": "SearchParameter", "url": "https://example.org/sp/admin-only", "name": "x",
                 "status": "active", "description": "x", "code": "adminonly", "base": ["Patient"], "type": "token",
                 "expression": "Patient.gender"}
    with pytest.raises(Forbidden), runtime.work(EVI, write=True) as work:
        create(work, "SearchParameter", parameter)
    with pytest.raises(Forbidden):
        reindex(runtime, EVI, "Patient")
    admin = ctx("admin", None)
    with runtime.work(admin, write=True) as work:
        assert create(work, "SearchParameter", {**parameter, "status": "draft"}).status == 201
    assert reindex(runtime, admin, "Organization")["Organization"] > 0


def test_a_conditional_create_matching_the_invisible_neither_shows_it_nor_duplicates_it(runtime):
    patient = {"resourceType": "Patient", "identifier": [{"system": "urn:evi:test:access", "value": "tove"}]}
    with pytest.raises(Forbidden), runtime.work(KALMAR_SOC, write=True) as work:
        create(work, "Patient", patient, if_none_exist="identifier=urn:evi:test:access|tove")
    assert _ids(runtime, EVI, "Patient", [("identifier", "urn:evi:test:access|tove")])[1] == 1
