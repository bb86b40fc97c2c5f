"""Rule 7 through HTTP (fhirpy, httpx where status codes matter): the SiS care-responsibility
transfer accepted, refused for each inclusion criterion, completed with a Provenance, and
the integrated-care episode's steps, closure and SIP flag.

Every test transfers to a mobile team of its own (``sis_transfer`` makes one unless told),
so the module's shared server never runs out of places."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest
from fhirpy.base.exceptions import OperationOutcome

from tests.support.evi import (
    CS,
    FHIR_JSON,
    SD,
    integrated_care_episode,
    landed_of,
    mobile_team,
    post_transaction,
    sis_transfer,
)

FLAG = "https://evi-fhir.org/fhir/CodeSystem/evi-integrated-care-flag"
TODAY = date.today()
ADULT = "adult"


def _born(adult: bool = False) -> date:
    """A random birth date, 12-17 years ago (18-20 for ``adult``): scenario() gives a child one
    of 20 personnummer per date, and its Patient entry is conditional on it."""
    low, high = (18, 20) if adult else (12, 17)
    return TODAY - timedelta(days=random.randint(low * 366 + 2, high * 365 + 360))


def _team(evi, capacity: int | None = 10) -> str:
    r = evi.post("/Organization", json=mobile_team(capacity), headers=FHIR_JSON)
    assert r.status_code == 201, r.text
    return f"Organization/{r.json()['id']}"


def _transfer(evi, **kwargs) -> dict[str, str]:
    landed = post_transaction(evi, sis_transfer(born=_born(kwargs.pop("born", None) == ADULT), **kwargs))
    return {t: landed_of(landed, t) for t in ("Task", "EpisodeOfCare", "Patient", "Organization")
            if t != "Organization"} | {"team": _team_of(evi, landed_of(landed, "Task"))}


def _team_of(evi, task_ref: str) -> str:
    return evi.get(f"/{task_ref}").json()["owner"]["reference"]


def _move(evi, task_ref: str, status: str):
    """PUT the Task with a new status; the httpx response."""
    task = evi.get(f"/{task_ref}").json()
    task["status"] = status
    return evi.put(f"/{task_ref}", json=task, headers=FHIR_JSON)


def _kinds(response) -> list[str]:
    assert response.status_code == 422, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    return [i["diagnostics"].split(":")[0] for i in outcome["issue"]]


def _episodes(evi, team_ref: str, n: int, patient_ref: str = "Patient/sis-youth-kevin") -> list[str]:
    refs = []
    for _ in range(n):
        r = evi.post("/EpisodeOfCare", json=integrated_care_episode(patient_ref, team_ref), headers=FHIR_JSON)
        assert r.status_code == 201, r.text
        refs.append(f"EpisodeOfCare/{r.json()['id']}")
    return refs


def _close(evi, episode_ref: str, receiving: str | None = None):
    episode = evi.get(f"/{episode_ref}").json()
    episode["status"] = "finished"
    episode["period"]["end"] = TODAY.isoformat()
    for ext in episode["extension"]:
        if ext["url"] == SD + "evi-integrated-care-step":
            ext["valueCoding"] = {"system": CS + "evi-integrated-care-step", "code": "closure"}
    if receiving:
        episode["extension"].append({"url": SD + "evi-receiving-unit", "valueReference": {"reference": receiving}})
    return evi.put(f"/{episode_ref}", json=episode, headers=FHIR_JSON)


def _set_step(evi, episode_ref: str, step: str):
    episode = evi.get(f"/{episode_ref}").json()
    for ext in episode["extension"]:
        if ext["url"] == SD + "evi-integrated-care-step":
            ext["valueCoding"] = {"system": CS + "evi-integrated-care-step", "code": step}
    return evi.put(f"/{episode_ref}", json=episode, headers=FHIR_JSON)


def _flags(resource: dict) -> set[str]:
    return {t["code"] for t in resource.get("meta", {}).get("tag", []) if t["system"] == FLAG}


# -- acceptance ------------------------------------------------------------------------------------

def test_scenario_transfer_is_accepted(evi, fhir):
    refs = _transfer(evi)
    task = fhir.reference(*refs["Task"].split("/")).to_resource()
    assert task["status"] == "requested"
    task["status"] = "accepted"
    task.save()
    assert fhir.reference(*refs["Task"].split("/")).to_resource()["status"] == "accepted"


@pytest.mark.parametrize("criterion,options", [
    ("age", {"born": ADULT}),
    ("placement", {"placement": ("hvb", "SoL")}),
    ("placement", {"placement": ("sis", "SoL")}),
    ("placement", {"placement": ("foster-home", "LVU")}),
    ("placement", {"placement": None}),
    ("consent", {"consent": False}),
    ("capacity", {"team": mobile_team(0)}),
])
def test_refused_for_each_inclusion_criterion_alone(evi, fhir, criterion, options):
    refs = _transfer(evi, **options)
    task = fhir.reference(*refs["Task"].split("/")).to_resource()
    task["status"] = "accepted"
    with pytest.raises(OperationOutcome) as caught:
        task.save()
    issues = caught.value.resource["issue"]
    assert [i["diagnostics"].split(":")[0] for i in issues] == [criterion]
    assert issues[0]["code"] == "business-rule" and issues[0]["severity"] == "error"
    assert evi.get(f"/{refs['Task']}").json()["status"] == "requested"


def test_refused_when_ten_active_episodes_fill_the_team(evi):
    team = _team(evi, capacity=None)  # no evi-capacity: the default of 10
    _episodes(evi, team, 9)
    first = _transfer(evi, team=team)
    assert _move(evi, first["Task"], "accepted").status_code == 200  # the tenth place
    _move(evi, first["Task"], "completed")
    assert len(evi.get("/EpisodeOfCare", params={"organization": team, "status": "active"}).json()["entry"]) == 9
    second = _transfer(evi, team=team)
    response = _move(evi, second["Task"], "accepted")
    assert _kinds(response) == ["capacity"]
    assert "10 of 10 places taken" in response.json()["issue"][0]["diagnostics"]


def test_every_failed_criterion_is_listed(evi):
    team = _team(evi, capacity=1)
    _episodes(evi, team, 1)
    refs = _transfer(evi, born=ADULT, placement=None, consent=False, team=team)
    assert _kinds(_move(evi, refs["Task"], "accepted")) == ["age", "placement", "consent", "capacity"]


def test_an_accepted_transfer_holds_its_place_until_cancelled(evi):
    team = _team(evi, capacity=1)
    first, second = _transfer(evi, team=team), _transfer(evi, team=team)
    assert _move(evi, first["Task"], "accepted").status_code == 200
    assert _kinds(_move(evi, second["Task"], "accepted")) == ["capacity"]
    assert _kinds(_move(evi, second["Task"], "in-progress")) == ["capacity"]  # no way around the check
    assert _move(evi, first["Task"], "cancelled").status_code == 200
    assert _move(evi, second["Task"], "accepted").status_code == 200


def test_moving_an_accepted_transfer_to_a_full_team_is_refused(evi):
    full = _team(evi, capacity=1)
    _episodes(evi, full, 1)
    refs = _transfer(evi)  # to a team of its own, with places
    assert _move(evi, refs["Task"], "accepted").status_code == 200
    task = evi.get(f"/{refs['Task']}").json()
    task["owner"] = {"reference": full}
    response = evi.put(f"/{refs['Task']}", json=task, headers=FHIR_JSON)
    # the full team is not covered by the consent either
    assert _kinds(response) == ["consent", "capacity"]
    assert evi.get(f"/{refs['Task']}").json()["owner"]["reference"] == refs["team"]


# -- completion ------------------------------------------------------------------------------------

def _provenance_of(fhir, task_ref: str) -> dict:
    found = fhir.resources("Provenance").search(target=task_ref).fetch_all()
    assert len(found) == 1, found
    return found[0]


def test_completion_hands_the_episode_to_the_team_with_provenance(evi, fhir):
    refs = _transfer(evi)
    before = fhir.reference(*refs["EpisodeOfCare"].split("/")).to_resource()
    assert before["managingOrganization"]["reference"] != refs["team"]  # the SiS home
    for status in ("accepted", "in-progress", "completed"):
        task = fhir.reference(*refs["Task"].split("/")).to_resource()
        task["status"] = status
        task.save()
    episode = fhir.reference(*refs["EpisodeOfCare"].split("/")).to_resource()
    assert episode["managingOrganization"]["reference"] == refs["team"]
    version = episode["meta"]["versionId"]
    assert int(version) == int(before["meta"]["versionId"]) + 1
    provenance = _provenance_of(fhir, refs["Task"])
    assert [t["reference"] for t in provenance["target"]] == [
        f"{refs['EpisodeOfCare']}/_history/{version}", refs["Task"]]
    assert provenance["recorded"] == episode["meta"]["lastUpdated"]
    assert provenance["activity"]["coding"] == [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "code": "UPDATE"}]
    assert provenance["reason"][0]["coding"] == [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}]
    assert provenance["reason"][0]["text"].startswith("Psykiatriskt vårdansvar övergår till ")
    [agent] = provenance["agent"]
    assert agent["who"]["reference"] == refs["team"]
    assert agent["type"]["coding"][0]["code"] == "author"
    # the versioned target is the version that made the change
    old = evi.get(f"/{refs['EpisodeOfCare']}/_history/{version}").json()
    assert old["managingOrganization"]["reference"] == refs["team"]


def test_accepted_to_completed_directly_is_a_server_rule(evi, fhir):
    refs = _transfer(evi)
    assert _move(evi, refs["Task"], "accepted").status_code == 200
    assert _move(evi, refs["Task"], "completed").status_code == 200
    assert evi.get(f"/{refs['EpisodeOfCare']}").json()["managingOrganization"]["reference"] == refs["team"]
    assert _provenance_of(fhir, refs["Task"])["agent"][0]["who"]["reference"] == refs["team"]


def test_a_transfer_cannot_skip_acceptance(evi):
    refs = _transfer(evi)
    response = _move(evi, refs["Task"], "completed")
    assert response.status_code == 409, response.text
    assert evi.get(f"/{refs['EpisodeOfCare']}").json()["managingOrganization"]["reference"] != refs["team"]


def test_a_malformed_transfer_task_is_400_before_any_rule_reads_it(evi):
    """The direct-completion rule reads code and status: it runs on validated input only."""
    refs = _transfer(evi)
    assert _move(evi, refs["Task"], "accepted").status_code == 200
    task = evi.get(f"/{refs['Task']}").json()
    version = task["meta"]["versionId"]
    broken = {**task, "status": "completed", "code": {"coding": 5}}
    response = evi.put(f"/{refs['Task']}", json=broken, headers=FHIR_JSON)
    assert response.status_code == 400, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    after = evi.get(f"/{refs['Task']}").json()
    assert (after["meta"]["versionId"], after["status"]) == (version, "accepted")
    assert evi.get(f"/{refs['EpisodeOfCare']}").json()["managingOrganization"]["reference"] != refs["team"]


def test_a_failed_completion_changes_nothing(evi):
    refs = _transfer(evi)
    assert _move(evi, refs["Task"], "accepted").status_code == 200
    episode = evi.get(f"/{refs['EpisodeOfCare']}").json()
    episode["status"] = "cancelled"
    assert evi.put(f"/{refs['EpisodeOfCare']}", json=episode, headers=FHIR_JSON).status_code == 200
    response = _move(evi, refs["Task"], "completed")
    assert response.status_code == 422 and "has ended" in response.text
    assert evi.get(f"/{refs['Task']}").json()["status"] == "accepted"
    assert evi.get("/Provenance", params={"target": refs["Task"]}).json().get("total", 0) == 0


# -- closure ---------------------------------------------------------------------------------------

def test_closure_frees_the_place_and_refers_to_the_receiving_unit(evi, fhir):
    team = _team(evi, capacity=1)
    first, second = _transfer(evi, team=team), _transfer(evi, team=team)
    assert _move(evi, first["Task"], "accepted").status_code == 200
    assert _move(evi, first["Task"], "completed").status_code == 200
    assert _kinds(_move(evi, second["Task"], "accepted")) == ["capacity"]

    closed = _close(evi, first["EpisodeOfCare"], receiving="Organization/bup-uddevalla")
    assert closed.status_code == 200, closed.text
    assert not _flags(closed.json())
    [request] = fhir.resources("ServiceRequest").search(performer="Organization/bup-uddevalla",
                                                        patient=first["Patient"]).fetch_all()
    assert request["status"] == "active" and request["intent"] == "order"
    assert request["requester"]["reference"] == team
    assert request["supportingInfo"][0]["reference"] == first["EpisodeOfCare"]
    assert "meta" not in request or SD + "evi-referral" not in request["meta"].get("profile", [])

    assert _move(evi, second["Task"], "accepted").status_code == 200  # the place is free again


def test_closure_without_receiving_unit_is_flagged_until_one_is_named(evi, fhir):
    refs = _transfer(evi)
    _move(evi, refs["Task"], "accepted")
    _move(evi, refs["Task"], "completed")
    closed = _close(evi, refs["EpisodeOfCare"])
    assert closed.status_code == 200, closed.text
    assert _flags(closed.json()) == {"no-receiving-unit"}
    found = evi.get("/EpisodeOfCare", params={"_tag": f"{FLAG}|no-receiving-unit", "patient": refs["Patient"]}).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [refs["EpisodeOfCare"].split("/")[1]]
    assert not fhir.resources("ServiceRequest").search(patient=refs["Patient"], performer="Organization/bup-uddevalla").fetch_all()

    episode = closed.json()
    episode["extension"].append({"url": SD + "evi-receiving-unit", "valueReference": {"reference": "Organization/bup-uddevalla"}})
    again = evi.put(f"/{refs['EpisodeOfCare']}", json=episode, headers=FHIR_JSON)
    assert again.status_code == 200 and not _flags(again.json())
    assert len(fhir.resources("ServiceRequest").search(patient=refs["Patient"],
                                                       performer="Organization/bup-uddevalla").fetch_all()) == 1


def test_closure_needs_status_finished_and_period_end(evi):
    refs = _transfer(evi)
    response = _set_step(evi, refs["EpisodeOfCare"], "closure")
    assert response.status_code == 422, response.text
    text = response.text
    assert "finished" in text and "period.end" in text


# -- steps -----------------------------------------------------------------------------------------

def test_steps_move_forward_and_never_back(evi):
    refs = _transfer(evi)  # the scenario's episode is at step 4, decision
    assert _set_step(evi, refs["EpisodeOfCare"], "offer").status_code == 200
    assert _set_step(evi, refs["EpisodeOfCare"], "efforts").status_code == 200
    back = _set_step(evi, refs["EpisodeOfCare"], "decision")
    assert back.status_code == 409, back.text
    issue = back.json()["issue"][0]
    assert "'efforts'" in issue["diagnostics"] and "'decision'" in issue["diagnostics"]
    assert _close(evi, refs["EpisodeOfCare"]).status_code == 200  # closure follows any step


# -- the SIP flag ----------------------------------------------------------------------------------

def _sip(patient_ref: str, team_ref: str, consent_ref: str) -> dict:
    """A SIP for the patient: CareTeam of the mobile team and Uddevalla's social services."""
    member = lambda ref, text: {  # noqa: E731
        "extension": [{"url": SD + "evi-responsibility", "valueString": text}],
        "role": [{"text": text}], "member": {"reference": ref}}
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:sip-team", "resource": {
            "resourceType": "CareTeam", "meta": {"profile": [SD + "evi-sip-careteam"]}, "status": "active",
            "subject": {"reference": patient_ref},
            "participant": [member(team_ref, "Psykiatrisk vård"),
                            member("Organization/socialtjansten-uddevalla", "Socialtjänst, övergripande ansvar")]},
         "request": {"method": "POST", "url": "CareTeam"}},
        {"fullUrl": "urn:uuid:sip-plan", "resource": {
            "resourceType": "CarePlan", "meta": {"profile": [SD + "evi-sip"]},
            "extension": [{"url": SD + "evi-follow-up-date", "valueDate": "2027-01-15"}],
            "status": "active", "intent": "plan",
            "category": [{"coding": [{"system": CS + "evi-careplan-category", "code": "sip"}]}],
            "title": "SIP", "subject": {"reference": patient_ref}, "created": TODAY.isoformat(),
            "author": {"reference": team_ref},
            "careTeam": [{"reference": "urn:uuid:sip-team"}],
            "supportingInfo": [{"reference": consent_ref}],
            "activity": [{"detail": {"status": "scheduled", "description": "Behandling",
                                     "performer": [{"reference": team_ref}]}}]},
         "request": {"method": "POST", "url": "CarePlan"}},
    ]}


def test_long_term_collaboration_without_sip_is_flagged_until_a_sip_exists(evi):
    bundle = sis_transfer(born=_born())
    landed = post_transaction(evi, bundle)
    episode_ref, patient_ref = landed_of(landed, "EpisodeOfCare"), landed_of(landed, "Patient")
    consent_ref, task_ref = landed_of(landed, "Consent"), landed_of(landed, "Task")
    team = _team_of(evi, task_ref)

    moved = _set_step(evi, episode_ref, "long-term-collaboration")
    assert moved.status_code == 200, moved.text
    assert _flags(moved.json()) == {"sip-missing"}
    query = {"_tag": f"{FLAG}|sip-missing", "patient": patient_ref}
    assert [e["resource"]["id"] for e in evi.get("/EpisodeOfCare", params=query).json()["entry"]] == [
        episode_ref.split("/")[1]]
    # a client write that drops the server's tag does not drop the flag
    episode = moved.json()
    episode["meta"].pop("tag")
    assert _flags(evi.put(f"/{episode_ref}", json=episode, headers=FHIR_JSON).json()) == {"sip-missing"}

    post_transaction(evi, _sip(patient_ref, team, consent_ref))
    assert not _flags(evi.get(f"/{episode_ref}").json())
    assert "entry" not in evi.get("/EpisodeOfCare", params=query).json()


def test_long_term_collaboration_with_a_sip_is_not_flagged(evi):
    landed = post_transaction(evi, sis_transfer(born=_born()))
    episode_ref, patient_ref = landed_of(landed, "EpisodeOfCare"), landed_of(landed, "Patient")
    post_transaction(evi, _sip(patient_ref, _team_of(evi, landed_of(landed, "Task")), landed_of(landed, "Consent")))
    moved = _set_step(evi, episode_ref, "long-term-collaboration")
    assert moved.status_code == 200 and not _flags(moved.json())
