"""The Bulk Data export below HTTP, on the example data of a region and on both storage
backends: what each caller's export holds (exactly what its searches find, redacted as
they are; the reporting role's export view, pseudonymised), the three levels, ``_since``,
``_typeFilter``, one resource per patient-data file even when it belongs to two exported
patients, and jobs that stop, lose their lease, are cancelled, fail and expire."""

from __future__ import annotations

import json
import threading
import time
import uuid

import orjson
import pytest

from fhir_server.app import build_runtime
from fhir_server.engine import RequestContext, delete, plan_search, process_bundle, search, update
from fhir_server.errors import BadRequest, Forbidden, NotFound
from fhir_server.reporting import (
    PSEUDONYM_SYSTEM,
    BulkExport,
    ExportOptions,
    Pseudonymizer,
    PseudonymsUnavailable,
    parse_export_request,
)
from fhir_server.reporting.export_scope import patient_data_types
from fhir_server.security import Caller, Scopes
from fhir_server.settings import Settings
from tests.support.evi import EXAMPLES, TEST_REGION

BASE = "http://127.0.0.1:8080/fhir"
KEY = "pseudonym-key-for-tests-" + "x" * 24
SL = "http://hl7.se/fhir/ig/base/CodeSystem/SecurityLabel"
ALL = Scopes.parse("system/*.cruds")


def ctx(role: str | None, organization: str | None = None, scopes: Scopes = ALL, client: str | None = None) -> RequestContext:
    if role is None:
        return RequestContext(base_url=BASE)
    caller = Caller(role, scopes, client_id=client or f"test-{role}", organization=organization)
    return RequestContext(base_url=BASE, caller=caller, from_client=True)


SERVER = ctx(None)
EVI = ctx("evi", "Organization/evi-vgr")
KALMAR_SOC = ctx("municipality", "Organization/socialtjansten-kalmar")
UDDEVALLA_SOC = ctx("municipality", "Organization/socialtjansten-uddevalla")
BUP = ctx("care-unit", "Organization/bup-uddevalla")
REPORTING = ctx("reporting", None)

PROTECTED = {
    "resourceType": "Patient", "id": "protected-tove", "meta": {"security": [{"system": SL, "code": "sekretessmarkering"}]},
    "name": [{"family": "Skyddad"}], "birthDate": "2013-05-05", "address": [{"city": "Hemlingby"}],
    "managingOrganization": {"reference": "Organization/vardcentral-uddevalla"},
}
REFERRAL_OF_PROTECTED = {
    "resourceType": "ServiceRequest", "id": "referral-tove", "status": "active", "intent": "order",
    "subject": {"reference": "Patient/protected-tove"}, "performer": [{"reference": "Organization/bup-uddevalla"}],
    "requester": {"reference": "Organization/vardcentral-uddevalla"},
}
#: about two patients at once (subject one, recipient the other): one line in a patients' export
SHARED = {
    "resourceType": "Communication", "id": "about-two", "status": "completed",
    "subject": {"reference": "Patient/child-ella"}, "recipient": [{"reference": "Patient/child-saga"}],
}
GROUP = {
    "resourceType": "Group", "id": "cohort", "type": "person", "actual": True,
    "member": [{"entity": {"reference": "Patient/child-saga"}}, {"entity": {"reference": "Patient/child-ella"}},
               {"entity": {"reference": "Patient/child-hugo"}, "inactive": True}],
}


def _store(kind: str, tmp_path):
    if kind == "mongomock":
        from fhir_server.storage.mongo import MongoStore
        from tests.support.mongo_replica_set import ReplicaSet

        return MongoStore(ReplicaSet(), "evi")
    from fhir_server.storage import open_store

    return open_store(f"sqlite://{tmp_path / 'export.db'}")


@pytest.fixture(scope="module", params=["sqlite-file", "mongomock"])
def runtime(request, tmp_path_factory):
    store = _store(request.param, tmp_path_factory.mktemp("export"))
    rt = build_runtime(Settings(storage="sqlite://:memory:", region_file=str(TEST_REGION)), store=store)
    resources = [json.loads(p.read_text()) for p in sorted((EXAMPLES / "valid").glob("*.json"))]
    resources += [PROTECTED, REFERRAL_OF_PROTECTED, SHARED, GROUP]
    process_bundle(rt, SERVER, {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in resources]})
    yield rt
    store.close()


def exports(runtime, tmp_path, **options) -> BulkExport:
    options.setdefault("pseudonym_key", KEY)
    options.setdefault("batch_size", 7)  # small batches: every loop turns many times
    return BulkExport(runtime, ExportOptions(directory=tmp_path / uuid.uuid4().hex, **options))


def run_all(bulk: BulkExport, stop: threading.Event | None = None, worker: str = "w1") -> None:
    while (job := bulk.jobs.claim("export", worker, 30)) is not None:
        bulk.run_job(job, worker, stop or threading.Event())
        if stop is not None and stop.is_set():
            return


def kick_off(bulk, c, params=(), level="system", group=None, lenient=False):
    return bulk.kick_off(c, parse_export_request(level, list(params), group_id=group, url="u", lenient=lenient),
                         lenient=lenient)


def output(bulk, c, job) -> dict[str, list[dict]]:
    """The finished job's files as resources per type (read from the files it serves)."""
    status = bulk.status(c, job.id, "http://files")
    assert status.state == "complete", status
    found = {}
    for item in status.manifest["output"]:
        path = bulk.file(c, job.id, item["url"].rsplit("/", 1)[1])
        lines = path.read_bytes().splitlines()
        assert len(lines) == item["count"]
        found[item["type"]] = [orjson.loads(line) for line in lines]
    return found


def export(runtime, tmp_path, c, params=(), level="system", group=None, **options) -> dict[str, list[dict]]:
    bulk = exports(runtime, tmp_path, **options)
    job = kick_off(bulk, c, params, level, group)
    run_all(bulk)
    return output(bulk, c, job)


def ids(found: dict[str, list[dict]]) -> dict[str, set[str]]:
    return {t: {r["id"] for r in rs} for t, rs in found.items()}


def searched(runtime, c, rtype, params=()) -> set[str]:
    params = [*params, ("_count", "1000")]
    with runtime.work(c, write=False) as work:
        return {v.id for v in search(work, plan_search(work, rtype, params), params).matches}


# ------------------------------------------------------------------------- who sees what


def test_the_servers_own_export_holds_every_current_resource_once(runtime, tmp_path):
    found = export(runtime, tmp_path, SERVER)
    with runtime.work(SERVER, write=False) as work:
        counts = work.uow.statistics()
    assert {t: len(rs) for t, rs in found.items()} == {t: n for t, (n, _) in counts.items() if n}
    for rtype, resources in found.items():
        assert len({r["id"] for r in resources}) == len(resources)
        assert all(r["resourceType"] == rtype for r in resources)


@pytest.mark.parametrize("who", [KALMAR_SOC, UDDEVALLA_SOC, BUP, EVI], ids=["kalmar", "uddevalla", "bup", "evi"])
def test_an_export_holds_exactly_what_the_caller_may_search(runtime, tmp_path, who):
    found = ids(export(runtime, tmp_path, who))
    with runtime.work(SERVER, write=False) as work:
        present = [t for t, (n, _) in work.uow.statistics().items() if n]
    for rtype in present:
        assert found.get(rtype, set()) == searched(runtime, who, rtype), rtype


def test_a_municipality_export_holds_its_own_children_only(runtime, tmp_path):
    found = ids(export(runtime, tmp_path, KALMAR_SOC))
    assert found["Patient"] == {"placed-child-liam"}
    assert found["Task"] == {"social-services-dialogue-liam"}
    assert "CarePlan" not in found and "AuditEvent" not in found


def test_protected_identity_is_redacted_in_an_export_as_in_a_read(runtime, tmp_path):
    bup = {p["id"]: p for p in export(runtime, tmp_path, BUP)["Patient"]}
    assert "address" not in bup["protected-tove"]
    assert {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "REDACTED"} in \
        bup["protected-tove"]["meta"]["security"]
    evi = {p["id"]: p for p in export(runtime, tmp_path, EVI, [("_type", "Patient")])["Patient"]}
    assert evi["protected-tove"]["address"] == [{"city": "Hemlingby"}]


def test_the_reporting_role_exports_its_export_view_always_pseudonymised(runtime, tmp_path):
    found = export(runtime, tmp_path, REPORTING, [("_pseudonymize", "false")])
    assert {"Patient", "Task", "ServiceRequest", "Organization"} <= set(found)
    assert not {"Communication", "QuestionnaireResponse", "RelatedPerson", "AuditEvent"} & set(found)
    pseudonyms = Pseudonymizer(KEY)
    patients = {p["id"]: p for p in found["Patient"]}
    assert len(patients) == len(searched(runtime, EVI, "Patient"))
    assert pseudonyms.pseudonym("Patient/child-oskar") in patients
    for patient in patients.values():
        assert not {"name", "address", "telecom", "photo", "contact"} & set(patient)
        assert len(patient["birthDate"]) == 7
        assert all(i["system"] == PSEUDONYM_SYSTEM for i in patient.get("identifier", ()))
    for task in found["Task"]:
        reference = task.get("for", {}).get("reference", "")
        assert not reference.startswith("Patient/") or reference.removeprefix("Patient/") in patients


def test_pseudonymised_output_needs_a_key(runtime, tmp_path):
    bulk = exports(runtime, tmp_path, pseudonym_key=None)
    with pytest.raises(PseudonymsUnavailable, match="EVI_PSEUDONYM_KEY"):
        kick_off(bulk, REPORTING)
    with pytest.raises(PseudonymsUnavailable):
        kick_off(bulk, EVI, [("_pseudonymize", "true")])
    assert bulk.jobs.claim("export", "w", 30) is None  # nothing was stored


def test_any_role_may_ask_for_pseudonymised_output(runtime, tmp_path):
    found = export(runtime, tmp_path, KALMAR_SOC, [("_pseudonymize", "true")])
    assert [p["id"] for p in found["Patient"]] == [Pseudonymizer(KEY).pseudonym("Patient/placed-child-liam")]


def test_a_type_named_that_the_token_may_not_search_is_refused(runtime, tmp_path):
    narrow = ctx("evi", "Organization/evi-vgr", Scopes.parse("system/Patient.rs"))
    with pytest.raises(Forbidden):
        kick_off(exports(runtime, tmp_path), narrow, [("_type", "Patient,Task")])
    assert set(export(runtime, tmp_path, narrow)) == {"Patient"}  # without _type: what it may search


# ------------------------------------------------------------------------------ parameters


def test_since_exports_what_changed_after_it(runtime, tmp_path):
    time.sleep(0.01)
    with runtime.work(SERVER, write=False) as work:
        since = work.uow.newest_instant()
    changed = {"resourceType": "Communication", "id": f"later-{uuid.uuid4().hex[:8]}", "status": "completed",
               "subject": {"reference": "Patient/child-oskar"}}
    with runtime.work(SERVER, write=True) as work:
        update(work, "Communication", changed["id"], changed)
    found = ids(export(runtime, tmp_path, SERVER, [("_since", since.replace(".", ",").split(",")[0] + "Z")]))
    assert changed["id"] in found["Communication"]
    exact = ids(export(runtime, tmp_path, SERVER, [("_since", since)]))
    assert exact == {"Communication": {changed["id"]}}


def deleted(bulk, c, job) -> set[str]:
    status = bulk.status(c, job.id, "http://files")
    assert [i["type"] for i in status.manifest["deleted"]] in ([], ["Bundle"])
    if not status.manifest["deleted"]:
        return set()
    lines = [orjson.loads(line) for line in bulk.file(c, job.id, "deleted.ndjson").read_bytes().splitlines()]
    assert all(b["resourceType"] == "Bundle" and b["type"] == "transaction" for b in lines)
    return {e["request"]["url"] for b in lines for e in b["entry"] if e["request"]["method"] == "DELETE"}


def test_since_lists_what_was_deleted_after_it_where_the_caller_sees_the_type_whole(runtime, tmp_path):
    tag = uuid.uuid4().hex[:8]
    notice = {"resourceType": "Communication", "id": f"gone-{tag}", "status": "completed",
              "recipient": [{"reference": "Organization/socialtjansten-kalmar"}]}
    unit = {"resourceType": "Organization", "id": f"closed-{tag}", "name": "Nedlagd enhet"}
    child = {"resourceType": "Patient", "id": f"moved-{tag}"}
    early = {"resourceType": "Organization", "id": f"early-{tag}", "name": "Tidigt nedlagd"}
    with runtime.work(SERVER, write=True) as work:
        for resource in (notice, unit, child, early):
            update(work, resource["resourceType"], resource["id"], resource)
        delete(work, "Organization", early["id"])
    time.sleep(0.01)
    with runtime.work(SERVER, write=False) as work:
        since = work.uow.newest_instant()
    with runtime.work(SERVER, write=True) as work:
        for resource in (notice, unit, child):
            delete(work, resource["resourceType"], resource["id"])
    expected = {f"Communication/{notice['id']}", f"Organization/{unit['id']}", f"Patient/{child['id']}"}
    bulk = exports(runtime, tmp_path)
    job = kick_off(bulk, SERVER, [("_since", since)])
    run_all(bulk)
    assert deleted(bulk, SERVER, job) == expected
    # a municipality sees Organizations whole, Communications and Patients only in part
    job = kick_off(bulk, KALMAR_SOC, [("_since", since)])
    run_all(bulk)
    assert deleted(bulk, KALMAR_SOC, job) == {f"Organization/{unit['id']}"}
    # pseudonymised: a person's id as its pseudonym; filtered types: nothing
    job = kick_off(bulk, EVI, [("_since", since), ("_pseudonymize", "true"), ("_type", "Patient,Organization"),
                               ("_typeFilter", "Organization?name=x")])
    run_all(bulk)
    assert deleted(bulk, EVI, job) == {f"Patient/{Pseudonymizer(KEY).pseudonym('Patient/' + child['id'])}"}
    job = kick_off(bulk, SERVER, [("_type", "Organization")])  # without _since: no deleted list
    run_all(bulk)
    assert deleted(bulk, SERVER, job) == set()


def test_type_filters_are_alternatives_within_a_type(runtime, tmp_path):
    params = [("_type", "Task,Organization"),
              ("_typeFilter", "Task?owner=Organization/evi-vgr,Task?owner=Organization/socialtjansten-kalmar")]
    found = ids(export(runtime, tmp_path, EVI, params))
    expected = searched(runtime, EVI, "Task", [("owner", "Organization/evi-vgr,Organization/socialtjansten-kalmar")])
    assert found["Task"] == expected and expected
    assert found["Organization"] == searched(runtime, EVI, "Organization")


def test_a_type_filter_with_an_unknown_parameter_is_refused_or_reported(runtime, tmp_path):
    bulk = exports(runtime, tmp_path)
    with pytest.raises(BadRequest, match="colour"):
        kick_off(bulk, EVI, [("_typeFilter", "Task?colour=red")])
    job = kick_off(bulk, EVI, [("_type", "Organization"), ("_typeFilter", "Organization?colour=red"),
                               ("_elements", "id")], lenient=True)
    run_all(bulk)
    manifest = bulk.status(EVI, job.id, "http://f").manifest
    assert [e["type"] for e in manifest["error"]] == ["OperationOutcome"]
    outcomes = [orjson.loads(line) for line in bulk.file(EVI, job.id, "error.ndjson").read_bytes().splitlines()]
    assert [o["issue"][0]["expression"] for o in outcomes] == [["_elements"], ["_typeFilter"]]
    assert all(o["issue"][0]["severity"] == "warning" for o in outcomes)
    assert len(output(bulk, EVI, job)["Organization"]) == len(searched(runtime, EVI, "Organization"))


# ---------------------------------------------------------------------- Patient and Group


def test_a_patients_export_holds_their_data_once_each(runtime, tmp_path):
    found = export(runtime, tmp_path, EVI, level="patient", batch_size=10)  # one patient per step
    assert set(found) <= set(patient_data_types())
    assert ids(found)["Patient"] == searched(runtime, EVI, "Patient")
    assert [r["id"] for r in found["Communication"]].count("about-two") == 1
    assert ids(found)["Task"] == {t for t in searched(runtime, EVI, "Task", [("patient:missing", "false")])}
    assert "Organization" not in found and "Group" in found


def test_a_group_export_holds_its_active_members_data(runtime, tmp_path):
    found = export(runtime, tmp_path, EVI, level="group", group="cohort", batch_size=10)
    assert ids(found)["Patient"] == {"child-saga", "child-ella"}
    assert [r["id"] for r in found["Communication"]] == ["about-two"]
    tasks = searched(runtime, EVI, "Task", [("patient", "Patient/child-saga,Patient/child-ella")])
    assert ids(found).get("Task", set()) == tasks
    assert all(r["subject"]["reference"] in ("Patient/child-saga", "Patient/child-ella")
               for r in found.get("ServiceRequest", ()))


def test_a_group_the_caller_may_not_see_or_that_does_not_exist_is_404_at_kick_off(runtime, tmp_path):
    for who, group in [(KALMAR_SOC, "cohort"), (EVI, "no-such-group")]:
        with pytest.raises(NotFound):
            kick_off(exports(runtime, tmp_path), who, level="group", group=group)


def test_type_outside_the_patients_data_is_refused_at_patient_level(runtime, tmp_path):
    with pytest.raises(BadRequest, match="Organization"):
        kick_off(exports(runtime, tmp_path), EVI, [("_type", "Organization")], level="patient")


# -------------------------------------------------------------------- the life of a job


def test_a_job_belongs_to_its_caller(runtime, tmp_path):
    bulk = exports(runtime, tmp_path)
    job = kick_off(bulk, EVI, [("_type", "Organization")])
    other = ctx("evi", "Organization/evi-vgr", client="another-evi-client")
    for attempt in (lambda c: bulk.status(c, job.id, "f"), lambda c: bulk.cancel(c, job.id),
                    lambda c: bulk.file(c, job.id, "Organization.ndjson")):
        with pytest.raises(NotFound):
            attempt(other)
    assert bulk.status(EVI, job.id, "f").state == "in-progress"
    assert bulk.status(EVI, job.id, "f").progress == "queued"
    bulk.cancel(EVI, job.id)  # the store is the module's: leave no job for the next test to claim


def test_a_stopped_job_is_released_and_resumed_by_another_worker_without_duplicates(runtime, tmp_path):
    bulk = exports(runtime, tmp_path, batch_size=3)
    job = kick_off(bulk, SERVER)
    claimed = bulk.jobs.claim("export", "w1", 30)
    stop = threading.Event()
    saves = []
    original = bulk.jobs.save

    def save_then_stop(*args, **kwargs):  # stop after a few batches, in the middle of the job
        saves.append(1)
        if len(saves) == 8:
            stop.set()
        return original(*args, **kwargs)

    bulk.jobs.save = save_then_stop
    try:
        bulk.run_job(claimed, "w1", stop)
    finally:
        bulk.jobs.save = original
    status = bulk.status(SERVER, job.id, "f")
    assert status.state == "in-progress" and "%" in status.progress
    assert bulk.jobs.get(job.id).lease_until == 0  # released: claimable at once
    run_all(bulk, worker="w2")
    assert output(bulk, SERVER, job) == export(runtime, tmp_path, SERVER)


def test_a_worker_whose_lease_was_taken_over_writes_nothing_more(runtime, tmp_path):
    bulk = exports(runtime, tmp_path)
    job = kick_off(bulk, SERVER, [("_type", "Organization")])
    stale = bulk.jobs.claim("export", "w1", 0.01)
    time.sleep(0.05)
    fresh = bulk.jobs.claim("export", "w2", 30)
    assert fresh.id == job.id
    bulk.run_job(stale, "w1", threading.Event())
    assert bulk.jobs.get(job.id).holder == "w2" and bulk.jobs.get(job.id).status == "running"
    assert not bulk.directory(job.id).exists() or not any(bulk.directory(job.id).iterdir())
    bulk.run_job(fresh, "w2", threading.Event())
    assert len(output(bulk, SERVER, job)["Organization"]) == len(searched(runtime, SERVER, "Organization"))


def test_a_cancelled_job_is_gone_with_its_files(runtime, tmp_path):
    bulk = exports(runtime, tmp_path)
    finished = kick_off(bulk, EVI, [("_type", "Organization")])
    run_all(bulk)
    assert bulk.directory(finished.id).is_dir()
    bulk.cancel(EVI, finished.id)
    assert not bulk.directory(finished.id).exists()
    with pytest.raises(NotFound):
        bulk.status(EVI, finished.id, "f")
    running = kick_off(bulk, EVI)
    claimed = bulk.jobs.claim("export", "w1", 30)
    bulk.cancel(EVI, running.id)  # while a worker holds it: the worker stops and cleans up
    bulk.run_job(claimed, "w1", threading.Event())
    assert bulk.jobs.get(running.id) is None and not bulk.directory(running.id).exists()


def test_a_job_that_fails_reports_it_and_the_worker_goes_on(runtime, tmp_path, monkeypatch):
    from fhir_server.reporting import export_run

    bulk = exports(runtime, tmp_path)
    job = kick_off(bulk, EVI, [("_type", "Organization")])
    monkeypatch.setattr(export_run.ExportRun, "_by_type", lambda self: 1 / 0)
    run_all(bulk)
    status = bulk.status(EVI, job.id, "f")
    assert status.state == "failed" and "internal error" in status.error
    assert bulk.jobs.get(job.id).expires is not None


def test_finished_jobs_expire_with_their_files(runtime, tmp_path):
    bulk = exports(runtime, tmp_path, retention_seconds=0.01)
    job = kick_off(bulk, EVI, [("_type", "Organization")])
    run_all(bulk)
    assert bulk.status(EVI, job.id, "f").state == "complete"
    time.sleep(0.05)
    bulk.sweep()
    assert bulk.jobs.get(job.id) is None and not bulk.directory(job.id).exists()
