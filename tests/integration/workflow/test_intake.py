"""Rules 1–3 through HTTP: intake Task, eligibility flags, placed-child notice."""

from datetime import date

from tests.support.evi import CS, FHIR_JSON, post_transaction, scenario

INTAKE = f"{CS}evi-task-type|intake"


def _intake_tasks(evi, sr_ref: str) -> list[dict]:
    bundle = evi.get("/Task", params={"focus": sr_ref, "code": INTAKE}).json()
    return [e["resource"] for e in bundle.get("entry", [])]


def test_scenario_referral_creates_one_intake_task(evi):
    landed = post_transaction(evi, scenario("school-health-referral-npf", born=date(2014, 5, 3)))
    sr_ref = next(v for v in landed.values() if v.startswith("ServiceRequest/"))
    tasks = _intake_tasks(evi, sr_ref)
    assert len(tasks) == 1
