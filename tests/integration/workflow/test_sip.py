"""Rule 8 through HTTP with fhirpy: a SIP (CarePlan category sip) is created from the
sip-initiation scenario, revised (every revision a version), refused without a covering
Consent or without region and municipality participants, refused once its Consent is
revoked and accepted again under a new one; the searches a municipality system needs."""

from __future__ import annotations

import copy
import itertools
from datetime import date, timedelta

import pytest
from fhirpy.base.exceptions import OperationOutcome

from tests.support.evi import CS, FHIR_JSON, PNR, SD, post_transaction, scenario

SIP_CATEGORY = f"{CS}evi-careplan-category|sip"
IRCP = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]}
BUP = "Organization/bup-uddevalla"
SOCIAL = "Organization/socialtjansten-uddevalla"
SCHOOL = "Organization/elevhalsan-uddevalla"
VC = "Organization/vardcentral-uddevalla"
SIS = "Organization/sis-ljungbacken"
_TYPE_TO_REF = {"bup-clinic": BUP, "social-services": SOCIAL, "school-health": SCHOOL}
_born = (date(2011, 1, 1) + timedelta(days=n) for n in itertools.count())


def _kind(entry: dict) -> str | None:
    resource = entry["resource"]
    if resource["resourceType"] != "Organization":
        return None
    return resource["type"][0]["coding"][0]["code"]


def sip_bundle(*, consent: str | tuple[str, ...] | None = "all", claim_profile: bool = True,
               members: tuple[str, ...] | None = None) -> dict:
    """The sip-initiation scenario with a fresh child. ``consent``: "all" (as written),
    "rejected" (the child and guardians said no: Consent.status rejected), None (no Consent
    at all, nor supportingInfo), or the example units (BUP, SOCIAL, SCHOOL...) it lists;
    ``members`` likewise replaces the CareTeam's participants by example units."""
    bundle = scenario("sip-initiation", born=next(_born))
    urn_of = {_TYPE_TO_REF[_kind(e)]: e["fullUrl"] for e in bundle["entry"] if _kind(e)}
    entries = bundle["entry"]
    consent_entry = next(e for e in entries if e["resource"]["resourceType"] == "Consent")
    team = next(e["resource"] for e in entries if e["resource"]["resourceType"] == "CareTeam")
    plan = next(e["resource"] for e in entries if e["resource"]["resourceType"] == "CarePlan")
    if consent is None:
        entries.remove(consent_entry)
        del plan["supportingInfo"]
    elif consent == "rejected":
        consent_entry["resource"]["status"] = "rejected"
    elif consent != "all":
        consent_entry["resource"]["provision"]["actor"] = [
            {"role": IRCP, "reference": {"reference": urn_of.get(o, o)}} for o in consent]
    if members is not None:
        template = team["participant"][0]
        team["participant"] = [{**copy.deepcopy(template), "member": {"reference": urn_of.get(o, o)}} for o in members]
    if not claim_profile:
        plan.pop("meta")
    return bundle


def landed_of(landed: dict[str, str], resource_type: str) -> str:
    return next(v for v in landed.values() if v.startswith(f"{resource_type}/"))


def issues_of(response) -> list[dict]:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    return body["issue"]


def fhirpy_issues(exc: OperationOutcome) -> list[dict]:
    return exc.resource["issue"]


def new_consent(patient_ref: str, organizations: tuple[str, ...]) -> dict:
    return {
        "resourceType": "Consent",
        "meta": {"profile": [SD + "evi-consent"]},
        "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": patient_ref},
        "dateTime": "2026-03-01T10:00:00+01:00",
        "policy": [{"uri": "https://www.riksdagen.se/sv/dokument-och-lagar/dokument/svensk-forfattningssamling/halso--och-sjukvardslag-201730_sfs-2017-30/"}],
        "provision": {"type": "permit", "actor": [{"role": IRCP, "reference": {"reference": o}} for o in organizations]},
    }


@pytest.fixture
def sip(evi):
    """A SIP initiated from the scenario: 'Type/id' of its CarePlan, CareTeam, Consent, Patient."""
    landed = post_transaction(evi, sip_bundle())
    return {t: landed_of(landed, t) for t in ("CarePlan", "CareTeam", "Consent", "Patient")}


# ---- creation and revision -----------------------------------------------------------------


def test_the_scenario_creates_a_sip_on_the_example_units(fhir, sip):
    plan = fhir.reference(*sip["CarePlan"].split("/")).to_resource()
    assert plan["status"] == "active" and plan["meta"]["versionId"] == "1"
    assert plan["subject"]["reference"] == sip["Patient"]
    assert plan["careTeam"][0]["reference"] == sip["CareTeam"]
    assert plan["supportingInfo"][0]["reference"] == sip["Consent"]
    assert plan["author"]["reference"] == SOCIAL  # the scenario's units are the examples (ifNoneExist)
    team = fhir.reference(*sip["CareTeam"].split("/")).to_resource()
    assert {p["member"]["reference"] for p in team["participant"]} == {BUP, SOCIAL, SCHOOL}


def test_a_revision_is_a_new_version_and_history_shows_what_changed(evi, fhir, sip):
    plan = fhir.reference(*sip["CarePlan"].split("/")).to_resource()
    plan["activity"].append({"detail": {
        "status": "not-started", "description": "Samordnad uppföljning av skolnärvaron varje månad",
        "performer": [{"reference": SCHOOL}]}})
    plan["extension"][0]["valueDate"] = "2026-06-01"
    plan.save()
    assert plan["meta"]["versionId"] == "2"

    history = evi.get(f"/{sip['CarePlan']}/_history").json()
    versions = {e["resource"]["meta"]["versionId"]: e["resource"] for e in history["entry"]}
    assert set(versions) == {"1", "2"}
    assert len(versions["1"]["activity"]) == 3 and len(versions["2"]["activity"]) == 4
    assert versions["1"]["extension"][0]["valueDate"] == "2026-05-11"
    assert versions["2"]["extension"][0]["valueDate"] == "2026-06-01"
    assert evi.get(f"/{sip['CarePlan']}/_history/1").json()["meta"]["versionId"] == "1"


def test_a_sip_created_with_fhirpy_alone(fhir, sip):
    """A second plan for the same child, created through fhirpy against the scenario's team and consent."""
    plan = fhir.resource("CarePlan", **{
        "meta": {"profile": [SD + "evi-sip"]},
        "extension": [{"url": SD + "evi-follow-up-date", "valueDate": "2026-09-01"}],
        "status": "active", "intent": "plan",
        "category": [{"coding": [{"system": f"{CS}evi-careplan-category", "code": "sip"}]}],
        "subject": {"reference": sip["Patient"]}, "author": {"reference": BUP},
        "careTeam": [{"reference": sip["CareTeam"]}], "supportingInfo": [{"reference": sip["Consent"]}],
        "activity": [{"detail": {"status": "scheduled", "description": "Läkarbesök", "performer": [{"reference": BUP}]}}],
    })
    plan.save()
    assert plan["id"] and plan["meta"]["versionId"] == "1"


# ---- refusals -------------------------------------------------------------------------------


def _no_child_stored(evi, bundle: dict) -> None:
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    pnr = next(i["value"] for i in patient["identifier"] if i["system"] == PNR)
    assert evi.get("/Patient", params={"identifier": f"{PNR}|{pnr}"}).json().get("total") == 0


def test_refused_without_an_active_consent_and_nothing_is_stored(evi):
    bundle = sip_bundle(consent="rejected")
    r = evi.post("", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 422, r.text
    (issue,) = issues_of(r)
    assert "no active Consent for Patient/" in issue["diagnostics"]
    assert issue["expression"] == ["CarePlan.supportingInfo"]
    _no_child_stored(evi, bundle)


def test_a_sip_without_any_consent_is_told_what_is_missing_not_a_cardinality(evi):
    """No Consent at all, no supportingInfo, evi-sip claimed: one issue that says a consent of
    the child and guardians is needed and names every organisation it must cover (issue 17)."""
    bundle = sip_bundle(consent=None)
    r = evi.post("", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 422, r.text
    (issue,) = issues_of(r)
    text = issue["diagnostics"]
    assert "no active Consent for Patient/" in text and "consent of the child and guardians" in text
    assert "minimum" not in text.lower() and "cardinality" not in text.lower()
    assert all(unit in text for unit in (BUP, SOCIAL, SCHOOL)) and "Consent.provision.actor" in text
    assert issue["expression"] == ["CarePlan.supportingInfo"]
    _no_child_stored(evi, bundle)


def test_refused_when_the_consent_leaves_out_a_participant(evi):
    r = evi.post("", json=sip_bundle(consent=(BUP, SOCIAL)), headers=FHIR_JSON)
    assert r.status_code == 422, r.text
    (issue,) = issues_of(r)
    assert SCHOOL in issue["diagnostics"] and "Elevhälsan, Uddevalla kommun" in issue["diagnostics"]
    assert issue["expression"] == ["CarePlan.careTeam[0]"] and issue["code"] == "business-rule"


def test_one_issue_per_uncovered_organisation(evi):
    r = evi.post("", json=sip_bundle(consent=(SOCIAL,)), headers=FHIR_JSON)
    assert r.status_code == 422, r.text
    named = {ref for issue in issues_of(r) for ref in (BUP, SCHOOL) if ref in issue["diagnostics"]}
    assert named == {BUP, SCHOOL} and len(issues_of(r)) == 2


def test_a_sip_not_claiming_the_profile_gets_no_way_around_the_rule(evi):
    r = evi.post("", json=sip_bundle(consent=None, claim_profile=False), headers=FHIR_JSON)
    assert r.status_code == 422, r.text
    (issue,) = issues_of(r)
    assert "no active Consent for Patient/" in issue["diagnostics"]


def test_refused_without_a_municipality_participant(evi):
    bundle = sip_bundle(consent=(BUP, SOCIAL, SCHOOL, SIS), members=(BUP, SIS))
    r = evi.post("", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 422, r.text
    (issue,) = issues_of(r)
    assert "municipality" in issue["diagnostics"] and issue["expression"] == ["CarePlan.careTeam"]
    assert SIS in issue["diagnostics"]  # a state unit counts for neither principal


def test_refused_without_a_region_participant(evi):
    r = evi.post("", json=sip_bundle(members=(SOCIAL, SCHOOL)), headers=FHIR_JSON)
    assert r.status_code == 422, r.text
    assert [i for i in issues_of(r) if "from a region" in i["diagnostics"]]


def test_refused_when_the_care_team_cannot_be_resolved(evi, sip):
    plan = evi.get(f"/{sip['CarePlan']}").json()
    plan["careTeam"] = [{"reference": "CareTeam/does-not-exist"}]
    r = evi.put(f"/{sip['CarePlan']}", json=plan, headers=FHIR_JSON)
    assert r.status_code == 422, r.text
    assert any("CareTeam/does-not-exist" in i["diagnostics"] and i["expression"] == ["CarePlan.careTeam[0]"]
               for i in issues_of(r))
    plan["contained"] = [{"resourceType": "CareTeam", "id": "t", "participant": [{"member": {"reference": SOCIAL}}]}]
    plan["careTeam"] = [{"reference": "#t"}]
    r = evi.put(f"/{sip['CarePlan']}", json=plan, headers=FHIR_JSON)
    assert r.status_code == 422, r.text
    assert any("#t" in i["diagnostics"] for i in issues_of(r))


def test_revoked_consent_blocks_revisions_until_a_new_consent(evi, fhir, sip):
    consent = fhir.reference(*sip["Consent"].split("/")).to_resource()
    consent["status"] = "inactive"
    consent.save()  # revoking is always possible

    plan = fhir.reference(*sip["CarePlan"].split("/")).to_resource()
    plan["description"] = "Reviderad efter SIP-möte"
    with pytest.raises(OperationOutcome) as refused:
        plan.save()
    (issue,) = fhirpy_issues(refused.value)
    assert f"no active Consent for {sip['Patient']}" in issue["diagnostics"]
    assert issue["expression"] == ["CarePlan.supportingInfo"]

    # the SIP stays readable, as it was
    stored = fhir.reference(*sip["CarePlan"].split("/")).to_resource()
    assert stored["meta"]["versionId"] == "1" and "description" not in stored

    # a JSON Patch is a revision too
    r = evi.patch(f"/{sip['CarePlan']}", content=b'[{"op": "add", "path": "/description", "value": "x"}]',
                  headers={"Content-Type": "application/json-patch+json", "Accept": "application/fhir+json"})
    assert r.status_code == 422, r.text

    # a new consent, and the revision goes through
    renewed = fhir.resource("Consent", **new_consent(sip["Patient"], (BUP, SOCIAL, SCHOOL)))
    renewed.save()
    plan = fhir.reference(*sip["CarePlan"].split("/")).to_resource()
    plan["description"] = "Reviderad efter SIP-möte"
    plan["supportingInfo"] = [{"reference": f"Consent/{renewed['id']}"}]
    plan.save()
    assert plan["meta"]["versionId"] == "2"


def test_dropping_the_sip_category_is_no_way_around_a_revoked_consent(evi, fhir, sip):
    consent = fhir.reference(*sip["Consent"].split("/")).to_resource()
    consent["status"] = "inactive"
    consent.save()
    plan = evi.get(f"/{sip['CarePlan']}").json()
    plan["category"] = [{"text": "plan"}]
    del plan["meta"]
    r = evi.put(f"/{sip['CarePlan']}", json=plan, headers=FHIR_JSON)
    assert r.status_code == 422, r.text


def test_a_sip_can_be_closed_after_consent_is_withdrawn_but_not_reopened(evi, fhir, sip):
    consent = fhir.reference(*sip["Consent"].split("/")).to_resource()
    consent["status"] = "inactive"
    consent.save()
    plan = fhir.reference(*sip["CarePlan"].split("/")).to_resource()
    plan["status"] = "revoked"
    plan["note"] = [{"text": "Samtycket återkallat; planen avslutas."}]
    plan.save()  # closing needs no consent
    assert plan["meta"]["versionId"] == "2"

    plan["status"] = "active"
    with pytest.raises(OperationOutcome):
        plan.save()
    plan = fhir.reference(*sip["CarePlan"].split("/")).to_resource()
    plan["status"] = "completed"
    plan["activity"].append({"detail": {"status": "scheduled", "description": "Ny insats", "performer": [{"reference": VC}]}})
    with pytest.raises(OperationOutcome) as refused:  # a closing revision may not name new organisations
        plan.save()
    assert any("no active Consent" in i["diagnostics"] for i in fhirpy_issues(refused.value))


def test_entered_in_error_and_delete_are_never_blocked(evi, fhir, sip):
    consent = fhir.reference(*sip["Consent"].split("/")).to_resource()
    consent["status"] = "inactive"
    consent.save()
    plan = fhir.reference(*sip["CarePlan"].split("/")).to_resource()
    plan["status"] = "entered-in-error"
    plan.save()
    assert evi.delete(f"/{sip['CarePlan']}").status_code in (200, 204)


def test_performers_must_be_covered_too(evi, fhir, sip):
    plan = fhir.reference(*sip["CarePlan"].split("/")).to_resource()
    plan["activity"].append({"detail": {"status": "scheduled", "description": "Hälsosamtal på vårdcentralen",
                                        "performer": [{"reference": VC}]}})
    with pytest.raises(OperationOutcome) as refused:
        plan.save()
    (issue,) = fhirpy_issues(refused.value)
    assert VC in issue["diagnostics"] and issue["expression"] == ["CarePlan.activity[3].detail.performer[0]"]


def test_a_care_team_write_that_adds_an_uncovered_organisation_is_refused(evi, fhir, sip):
    team = fhir.reference(*sip["CareTeam"].split("/")).to_resource()
    team["participant"].append({**copy.deepcopy(team["participant"][0]), "member": {"reference": VC}})
    with pytest.raises(OperationOutcome) as refused:
        team.save()
    (issue,) = fhirpy_issues(refused.value)
    assert VC in issue["diagnostics"] and sip["CarePlan"] in issue["diagnostics"]
    assert issue["expression"] == ["CareTeam.participant"]

    # taking an organisation out is possible even with the consent revoked
    consent = fhir.reference(*sip["Consent"].split("/")).to_resource()
    consent["status"] = "inactive"
    consent.save()
    team = fhir.reference(*sip["CareTeam"].split("/")).to_resource()
    team["participant"] = [p for p in team["participant"] if p["member"]["reference"] != SCHOOL]
    team.save()
    assert team["meta"]["versionId"] == "2"


# ---- searches -------------------------------------------------------------------------------


def _ids(resources) -> set[str]:
    return {r["id"] for r in resources}


def test_sips_of_a_patient(fhir, sip):
    found = fhir.resources("CarePlan").search(subject=sip["Patient"], category=SIP_CATEGORY).fetch_all()
    assert _ids(found) == {sip["CarePlan"].split("/")[1]}
    assert fhir.resources("CarePlan").search(patient=sip["Patient"], category=f"{CS}evi-careplan-category|other").fetch_all() == []


def test_sips_where_an_organisation_takes_part(fhir, sip):
    plan_id = sip["CarePlan"].split("/")[1]
    for org in (BUP, SOCIAL, SCHOOL):
        found = fhir.resources("CarePlan").search(**{"care-team.participant": org, "category": SIP_CATEGORY}).fetch_all()
        assert {plan_id, "sip-oskar"} <= _ids(found), org
    not_in_team = fhir.resources("CarePlan").search(**{"care-team.participant": VC, "subject": sip["Patient"]}).fetch_all()
    assert not_in_team == []
    # the efforts an organisation performs (the standard performer parameter)
    performing = fhir.resources("CarePlan").search(performer=SCHOOL, subject=sip["Patient"]).fetch_all()
    assert _ids(performing) == {plan_id}


def test_sips_due_for_follow_up_before_a_date(fhir, sip):
    later = fhir.reference(*sip["CarePlan"].split("/")).to_resource()  # follow-up 2026-05-11
    sooner = fhir.resource("CarePlan", **{k: copy.deepcopy(v) for k, v in later.items() if k not in ("id", "meta")})
    sooner["extension"][0]["valueDate"] = "2026-03-02"
    sooner.save()
    due = fhir.resources("CarePlan").search(**{"subject": sip["Patient"], "follow-up-date": "lt2026-04-01"}).fetch_all()
    assert _ids(due) == {sooner["id"]}
    due = fhir.resources("CarePlan").search(**{"subject": sip["Patient"], "follow-up-date": "le2026-05-11"}).fetch_all()
    assert _ids(due) == {sooner["id"], later["id"]}
    not_yet = fhir.resources("CarePlan").search(**{"subject": sip["Patient"], "follow-up-date": "gt2026-04-01"}).fetch_all()
    assert _ids(not_yet) == {later["id"]}
    # a municipality's worklist: active SIPs it takes part in, due by a date
    worklist = fhir.resources("CarePlan").search(**{
        "category": SIP_CATEGORY, "status": "active", "care-team.participant": SOCIAL, "follow-up-date": "le2026-04-15",
    }).fetch_all()
    assert {"sip-oskar", sooner["id"]} <= _ids(worklist) and later["id"] not in _ids(worklist)


def test_the_capability_statement_offers_follow_up_date(evi):
    cs = evi.get("/metadata").json()
    params = next(r for r in cs["rest"][0]["resource"] if r["type"] == "CarePlan")["searchParam"]
    assert {"name": "follow-up-date", "definition": "https://evi-fhir.org/fhir/SearchParameter/CarePlan-follow-up-date",
            "type": "date"} in params
