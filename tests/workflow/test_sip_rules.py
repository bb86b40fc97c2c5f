"""Rule 8's pure logic (fhir_server.workflow.sip) over the Oskar SIP of examples/valid."""

from __future__ import annotations

import copy
from datetime import datetime, timezone

import pytest

from fhir_server.workflow.sip import is_sip, named_organizations, needs_check
from fhir_server.workflow.sip_problems import Facts, local_reference, principal_by_type, sip_problems
from tests.support.evi import example

NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)
BUP = "Organization/bup-uddevalla"
SOCIAL = "Organization/socialtjansten-uddevalla"
SCHOOL = "Organization/elevhalsan-uddevalla"
VC = "Organization/vardcentral-uddevalla"
SIS = "Organization/sis-ljungbacken"
ORGS = {f"Organization/{n}": example(f"Organization-{n}") for n in
        ("bup-uddevalla", "socialtjansten-uddevalla", "elevhalsan-uddevalla", "vardcentral-uddevalla", "sis-ljungbacken")}


@pytest.fixture
def plan() -> dict:
    return example("CarePlan-sip-oskar")


@pytest.fixture
def team() -> dict:
    return example("CareTeam-sip-oskar")


@pytest.fixture
def consent() -> dict:
    return example("Consent-sip-oskar")


def facts(team: dict | None, consents: list[dict], **extra) -> Facts:
    return Facts(care_teams={"CareTeam/sip-oskar": team}, organizations=dict(ORGS), consents=consents,
                 principals=principal_by_type(), now=NOW, **extra)


def _members(team: dict, *refs: str) -> dict:
    template = team["participant"][0]
    return {**team, "participant": [{**copy.deepcopy(template), "member": {"reference": r}} for r in refs]}


def _actors(consent: dict, *refs: str) -> dict:
    consent = copy.deepcopy(consent)
    role = consent["provision"]["actor"][0]["role"]
    consent["provision"]["actor"] = [{"role": role, "reference": {"reference": r}} for r in refs]
    return consent


# ---- which CarePlans, which writes ---------------------------------------------------------


def test_a_sip_is_its_category_or_its_profile(plan):
    assert is_sip(plan)
    assert is_sip({**plan, "meta": {}})
    assert is_sip({**plan, "category": [{"text": "x"}]})  # claims evi-sip
    assert not is_sip({"resourceType": "CarePlan", "status": "active", "intent": "plan"})
    assert not is_sip(None)


def test_which_writes_are_checked(plan):
    closed = {**plan, "status": "completed"}
    assert needs_check(plan, None)
    assert needs_check({**plan, "status": "draft"}, None)
    assert needs_check(plan, plan)
    assert not needs_check({**plan, "status": "entered-in-error"}, plan)
    assert not needs_check(closed, plan)  # closing an existing SIP
    assert not needs_check({**plan, "status": "revoked"}, closed)
    assert needs_check(closed, None)  # a SIP created closed
    assert needs_check(plan, closed)  # re-opened
    # a closing revision that names a new organisation
    extra = copy.deepcopy(closed)
    extra["activity"].append({"detail": {"status": "scheduled", "performer": [{"reference": VC}]}})
    assert needs_check(extra, plan)
    # dropping the category is no way around
    assert needs_check({**plan, "category": [{"text": "x"}], "meta": {}}, plan)
    assert not needs_check({"resourceType": "CarePlan", "status": "active"}, None)


def test_named_organizations(plan):
    assert named_organizations(plan) == {"CareTeam/sip-oskar", BUP, SOCIAL, SCHOOL}


@pytest.mark.parametrize("reference, expected", [
    ({"reference": "CareTeam/x"}, "CareTeam/x"),
    ({"reference": "CareTeam/x/_history/2"}, "CareTeam/x"),
    ({"reference": "http://server/fhir/CareTeam/x"}, "CareTeam/x"),
    ({"reference": "http://elsewhere/fhir/CareTeam/x"}, None),
    ({"reference": "#t"}, None),
    ({"reference": "urn:uuid:1234"}, None),
    ({"identifier": {"system": "urn:x", "value": "1"}}, None),
    (None, None),
])
def test_local_reference(reference, expected):
    assert local_reference(reference, "http://server/fhir") == expected


def test_principals_come_from_the_guide():
    principals = principal_by_type()
    assert principals["bup-clinic"] == "region" and principals["primary-care"] == "region"
    assert principals["social-services"] == "municipality" and principals["school-health"] == "municipality"
    assert principals["sis-home"] == "state"


# ---- the problems ---------------------------------------------------------------------------


def test_the_example_sip_is_fine(plan, team, consent):
    assert sip_problems(plan, facts(team, [consent])) == []


def test_no_active_consent(plan, team, consent):
    (problem,) = sip_problems(plan, facts(team, []))
    assert problem.kind == "consent" and "no active Consent for Patient/child-oskar" in problem.diagnostics
    assert problem.issue().expression == ("CarePlan.supportingInfo",)
    revoked = {**consent, "status": "inactive"}
    # active_consents searches status=active; a revoked one would cover nothing anyway
    assert {p.organization for p in sip_problems(plan, facts(team, [revoked]))} == {BUP, SOCIAL, SCHOOL}


def test_expired_consent_covers_nothing(plan, team, consent):
    later = facts(team, [consent])
    later.now = datetime(2037, 6, 1, tzinfo=timezone.utc)
    assert {p.organization for p in sip_problems(plan, later)} == {BUP, SOCIAL, SCHOOL}


def test_one_issue_per_uncovered_participant(plan, team, consent):
    problems = sip_problems(plan, facts(team, [_actors(consent, SOCIAL)]))
    assert [(p.organization, p.expression) for p in problems] == [
        (BUP, "CarePlan.careTeam[0]"), (SCHOOL, "CarePlan.careTeam[0]")]
    assert "Elevhälsan, Uddevalla kommun" in problems[1].diagnostics


def test_the_best_consent_is_reported(plan, team, consent):
    problems = sip_problems(plan, facts(team, [_actors(consent, SOCIAL), _actors(consent, SOCIAL, BUP)]))
    assert [p.organization for p in problems] == [SCHOOL]


def test_an_uncovered_performer_is_named_where_it_is(plan, team, consent):
    plan["activity"].append({"detail": {"status": "scheduled", "performer": [{"reference": VC}]}})
    (problem,) = sip_problems(plan, facts(team, [consent]))
    assert problem.organization == VC and problem.expression == "CarePlan.activity[3].detail.performer[0]"


def test_an_uncovered_author_is_named(plan, team, consent):
    plan["author"] = {"reference": VC}
    (problem,) = sip_problems(plan, facts(team, [consent]))
    assert problem.organization == VC and problem.expression == "CarePlan.author"


def test_region_and_municipality_participants(plan, team, consent):
    everyone = _actors(consent, BUP, SOCIAL, SCHOOL, SIS, VC)
    (problem,) = sip_problems(plan, facts(_members(team, BUP, SIS), [everyone]))
    assert problem.kind == "composition" and "from a municipality" in problem.diagnostics
    assert SIS in problem.diagnostics and "state" in problem.diagnostics
    (problem,) = sip_problems(plan, facts(_members(team, SOCIAL, SCHOOL), [everyone]))
    assert "from a region" in problem.diagnostics
    assert sip_problems(plan, facts(_members(team, VC, SCHOOL), [everyone])) == []


def test_care_team_references(plan, team, consent):
    (problem,) = sip_problems(plan, facts(None, [consent]))
    assert problem.code == "not-found" and "CareTeam/sip-oskar does not exist" in problem.diagnostics
    contained = {**plan, "careTeam": [{"reference": "#t"}]}
    problems = sip_problems(contained, facts(team, [consent]))
    # the unreadable team is the problem; what it would hold is not judged
    assert [p.kind for p in problems] == ["reference"] and "#t" in problems[0].diagnostics
    (problem, *_) = sip_problems({**plan, "careTeam": []}, facts(team, [consent]))
    assert problem.expression == "CarePlan.careTeam" and "missing" in problem.diagnostics


def test_care_team_of_another_patient(plan, team, consent):
    other = {**team, "subject": {"reference": "Patient/someone-else"}}
    (problem,) = sip_problems(plan, facts(other, [consent]))
    assert "Patient/someone-else" in problem.diagnostics and problem.expression == "CarePlan.careTeam[0]"


def test_members_that_cannot_be_named_in_a_consent(plan, team, consent):
    contained = _members(team, BUP, SOCIAL, "#org")
    contained["contained"] = [{"resourceType": "Organization", "id": "org", "name": "Skolan"}]
    problems = sip_problems(plan, facts(contained, [consent]))
    assert [p.kind for p in problems] == ["reference"] and "#org" in problems[0].diagnostics
    missing = _members(team, BUP, SOCIAL, "Organization/nowhere")
    (problem,) = [p for p in sip_problems(plan, facts(missing, [consent])) if p.kind == "reference"]
    assert problem.code == "not-found" and problem.organization == "Organization/nowhere"
    # persons in the team are not organisations: not checked
    with_child = copy.deepcopy(team)
    with_child["participant"].append({"member": {"reference": "Patient/child-oskar"}})
    assert sip_problems(plan, facts(with_child, [consent])) == []


def test_subject_must_be_a_patient(plan, team, consent):
    problems = sip_problems({**plan, "subject": {"display": "Oskar"}}, facts(team, [consent]))
    assert [p.expression for p in problems] == ["CarePlan.subject"]


# ---- the follow-up-date SearchParameter ------------------------------------------------------


def test_follow_up_date_indexes_the_example(plan):
    from fhir_server.conformance import ig_directory, ig_search_parameters
    from fhir_server.search import SearchRegistry, extract_index

    definitions = [d for d in ig_search_parameters(ig_directory()) if d.code == "follow-up-date"]
    assert len(definitions) == 1
    registry = SearchRegistry.from_spec(extra=ig_search_parameters(ig_directory()))
    entries = [e for e in extract_index(registry, plan).entries if e.param == "follow-up-date"]
    assert [e.low[:10] for e in entries] == ["2026-04-15"]


# ---- the rule in-process on both storage backends ---------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite-memory", "mongomock"])
def test_the_rule_on_each_backend(backend):
    import json
    from datetime import date

    from fhir_server.app import build_runtime
    from fhir_server.engine import RequestContext, find_matches, process_bundle
    from fhir_server.errors import Unprocessable
    from fhir_server.settings import Settings
    from fhir_server.storage import open_store
    from tests.storage.conftest import _mongomock_store
    from tests.support.evi import EXAMPLES, TEST_REGION, scenario

    store = open_store("sqlite://:memory:") if backend == "sqlite-memory" else _mongomock_store()
    runtime = build_runtime(Settings(region_file=str(TEST_REGION)), store=store)
    ctx = RequestContext(base_url="http://test/fhir")
    try:
        resources = [json.loads(p.read_text()) for p in sorted((EXAMPLES / "valid").glob("*.json"))]
        process_bundle(runtime, ctx, {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in resources]})
        process_bundle(runtime, ctx, scenario("sip-initiation", born=date(2012, 5, 5)))
        refused = scenario("sip-initiation", born=date(2012, 5, 6))
        next(e for e in refused["entry"] if e["resource"]["resourceType"] == "Consent")["resource"]["status"] = "rejected"
        with pytest.raises(Unprocessable) as exc:
            process_bundle(runtime, ctx, refused)
        assert "no active Consent" in exc.value.issues[0].diagnostics
        with runtime.work(ctx, write=False) as work:
            found = find_matches(work, "CarePlan", [
                ("care-team.participant", SCHOOL), ("follow-up-date", "le2026-06-01")], limit=10)
        assert len(found) == 2 and "sip-oskar" in found
    finally:
        store.close()
