"""What a write answers is what was committed, and it says what server rules did.

Transaction response entries are built after the unit of work's deferred rules ran: when
the integrated-care SIP flag refresh writes a second version of an entry's EpisodeOfCare,
the entry shows that version (ETag, location, body). The entry whose write set a rule off
carries ``response.outcome`` with one information issue per resource the rule created or
updated; a single write lists them with ``Prefer: return=OperationOutcome`` and in
``Link: <…>; rel="related"`` headers.
"""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta

from tests.integration.workflow.test_care_transfer import _sip
from tests.support.evi import (
    CS,
    FHIR_JSON,
    SD,
    landed_of,
    patient,
    post_transaction,
    referral,
    scenario,
    sis_transfer,
)

FLAG = f"{CS}evi-integrated-care-flag"
INTAKE_RULE = "Server rule 'intake (rules 1-3)' created Task/"
SIP_FLAG_RULE = "Server rule 'integrated care: sip-missing flag' updated EpisodeOfCare/"


def _born() -> date:
    return date.today() - timedelta(days=random.randint(12 * 366 + 2, 17 * 365 + 360))


def _flags(resource: dict) -> set[str]:
    return {t["code"] for t in resource.get("meta", {}).get("tag", []) if t["system"] == FLAG}


def _version(location: str) -> int:
    return int(location.rsplit("/", 1)[1])


def _diagnostics(entry: dict) -> list[str]:
    return [i["diagnostics"] for i in entry["response"].get("outcome", {}).get("issue", [])]


def _sip_with_the_episode_moved_first(evi, episode_ref: str, patient_ref: str, team: str, consent_ref: str) -> dict:
    """One transaction: the episode moves to step 7 (no SIP yet: flagged), then a SIP arrives.

    PUT and PUT keep Bundle order (R4 http.html#trules), so the episode is written before
    the CarePlan (a PUT to a new id); the flag refresh then writes its second version."""
    episode = evi.get(f"/{episode_ref}").json()
    for ext in episode["extension"]:
        if ext["url"] == SD + "evi-integrated-care-step":
            ext["valueCoding"] = {"system": CS + "evi-integrated-care-step", "code": "long-term-collaboration"}
    team_entry, plan_entry = _sip(patient_ref, team, consent_ref)["entry"]
    plan_id = f"sip-{uuid.uuid4().hex[:12]}"
    plan_entry["resource"]["id"] = plan_id
    plan_entry["request"] = {"method": "PUT", "url": f"CarePlan/{plan_id}"}
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": episode, "request": {"method": "PUT", "url": episode_ref}}, team_entry, plan_entry]}


def test_transaction_entries_show_the_version_a_deferred_rule_wrote(evi):
    landed = post_transaction(evi, sis_transfer(born=_born()))
    episode_ref, patient_ref = landed_of(landed, "EpisodeOfCare"), landed_of(landed, "Patient")
    team = evi.get(f"/{landed_of(landed, 'Task')}").json()["owner"]["reference"]
    before = int(evi.get(f"/{episode_ref}").json()["meta"]["versionId"])
    bundle = _sip_with_the_episode_moved_first(evi, episode_ref, patient_ref, team, landed_of(landed, "Consent"))

    r = evi.post("", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    episode_entry, _team_entry, plan_entry = r.json()["entry"]

    # the entry wrote version before+1 (flagged); the refresh wrote before+2 (not flagged)
    flagged = evi.get(f"/{episode_ref}/_history/{before + 1}").json()
    assert _flags(flagged) == {"sip-missing"}
    current = evi.get(f"/{episode_ref}")
    assert episode_entry["response"]["status"] == "200 OK"
    assert episode_entry["response"]["etag"] == current.headers["etag"] == f'W/"{before + 2}"'
    assert episode_entry["response"]["location"] == f"{episode_ref}/_history/{before + 2}"
    assert episode_entry["response"]["lastModified"] == current.json()["meta"]["lastUpdated"]
    assert episode_entry["resource"] == current.json()
    assert _flags(episode_entry["resource"]) == set()

    # the SIP's entry names what its rule did
    assert [d for d in _diagnostics(plan_entry) if d.startswith(SIP_FLAG_RULE)] == [
        f"{SIP_FLAG_RULE}{episode_ref.split('/')[1]}/_history/{before + 2}"]


def test_every_transaction_entry_equals_a_fresh_read(evi):
    landed = post_transaction(evi, sis_transfer(born=_born()))
    team = evi.get(f"/{landed_of(landed, 'Task')}").json()["owner"]["reference"]
    bundle = _sip_with_the_episode_moved_first(
        evi, landed_of(landed, "EpisodeOfCare"), landed_of(landed, "Patient"), team, landed_of(landed, "Consent"))
    r = evi.post("", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    for entry in r.json()["entry"]:
        location = entry["response"]["location"]
        current = evi.get("/" + location.split("/_history/")[0])
        assert entry["response"]["etag"] == current.headers["etag"], location
        assert entry["resource"] == current.json() == evi.get(f"/{location}").json(), location
        assert entry["fullUrl"].endswith("/" + location.split("/_history/")[0])


def test_an_intake_transaction_names_the_intake_task_it_created(evi):
    bundle = scenario("self-referral-guardian", born=_born())
    r = evi.post("", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    entries = r.json()["entry"]
    [referral_entry] = [e for e in entries if e["response"]["location"].startswith("ServiceRequest/")]
    sr_ref = "/".join(referral_entry["response"]["location"].split("/")[:2])
    [created] = [d for d in _diagnostics(referral_entry) if d.startswith(INTAKE_RULE)]
    task_location = created.removeprefix("Server rule 'intake (rules 1-3)' created ")
    task = evi.get(f"/{task_location}").json()
    assert task["focus"]["reference"] == sr_ref
    assert task["code"]["coding"][0]["code"] == "intake"
    assert referral_entry["response"]["outcome"]["issue"][0]["severity"] == "information"
    # the other entries set nothing off
    assert all("outcome" not in e["response"] for e in entries if e is not referral_entry)


def test_a_single_referral_post_names_its_intake_task(evi):
    child = evi.post("/Patient", json=patient(_born()), headers=FHIR_JSON)
    assert child.status_code == 201, child.text
    child_ref = f"Patient/{child.json()['id']}"

    r = evi.post("/ServiceRequest", json=referral(child_ref),
                 headers={**FHIR_JSON, "Prefer": "return=OperationOutcome"})
    assert r.status_code == 201, r.text
    issues = [i["diagnostics"] for i in r.json()["issue"]]
    sr_id = r.headers["location"].split("/ServiceRequest/")[1].split("/")[0]
    assert issues[0] == f"Created ServiceRequest/{sr_id} version 1"
    [created] = [d for d in issues if d.startswith(INTAKE_RULE)]
    task_location = created.removeprefix("Server rule 'intake (rules 1-3)' created ")
    assert evi.get(f"/{task_location}").json()["focus"]["reference"] == f"ServiceRequest/{sr_id}"
    assert f'<{str(evi.base_url).rstrip("/")}/{task_location}>; rel="related"' in r.headers["link"]

    plain = evi.post("/ServiceRequest", json=referral(child_ref), headers=FHIR_JSON)
    assert plain.status_code == 201 and plain.json()["resourceType"] == "ServiceRequest"
    assert 'rel="related"' in plain.headers["link"] and "/Task/" in plain.headers["link"]
