"""The REST interactions driven through fhirpy's AsyncFHIRClient (aiohttp) against the live server.

Mirrors test_fhirpy_sync.py (somewhat fewer cases) and adds what only an async client
does easily: many requests in flight at once (concurrent creates, racing If-Match
updates, racing conditional creates).
"""

from __future__ import annotations

import asyncio

import pytest
from fhirpy import AsyncFHIRClient
from fhirpy.base.exceptions import MultipleResourcesFound, OperationOutcome, ResourceNotFound

from tests.integration.fhirpy_helpers import (
    JSON_PATCH,
    PNR_SYSTEM,
    REMISS_SYSTEM,
    RUN_SYSTEM,
    entry_ids,
    expressions,
    history_version_ids,
    issue_codes,
    organization_body,
    outcome_of,
    patient_body,
    pnr,
    service_request_body,
    task_body,
)


@pytest.fixture
def client(server) -> AsyncFHIRClient:
    return AsyncFHIRClient(server.base_url)


def with_headers(base_url: str, **headers) -> AsyncFHIRClient:
    return AsyncFHIRClient(base_url, extra_headers={k.replace("_", "-"): v for k, v in headers.items()})


async def new_patient(client: AsyncFHIRClient, uid: str, n: int = 0, **extra):
    patient = client.resource("Patient", **patient_body(uid, n, **extra))
    await patient.save()
    return patient


def run_scope(uid: str) -> str:
    return f"{RUN_SYSTEM}|{uid}"


# --------------------------------------------------------------------------- create / read / update / vread / delete


async def test_create_read_update_vread(client, uid):
    patient = client.resource("Patient", **patient_body(uid))
    await patient.save()
    assert patient.id
    assert patient["meta"]["versionId"] == "1"
    first_updated = patient["meta"]["lastUpdated"]

    read = await client.get("Patient", patient.id)
    assert read["identifier"][0] == {"system": PNR_SYSTEM, "value": pnr(uid)}
    assert read["meta"]["lastUpdated"] == first_updated

    patient["active"] = True
    await patient.save()
    assert patient["meta"]["versionId"] == "2"
    assert patient["meta"]["lastUpdated"] > first_updated

    ref = client.reference("Patient", patient.id)
    v1 = await ref.execute("_history/1", method="get")
    v2 = await client.execute(f"Patient/{patient.id}/_history/2", method="get")
    assert v1["meta"]["versionId"] == "1" and "active" not in v1
    assert v2["meta"]["versionId"] == "2" and v2["active"] is True
    assert (await ref.to_resource())["meta"]["versionId"] == "2"
    with pytest.raises(ResourceNotFound):
        await ref.execute("_history/3", method="get")


async def test_update_as_create_with_client_id(client, uid):
    rid = f"async-{uid[:24]}"
    with pytest.raises(ResourceNotFound):
        await client.get("Patient", rid)
    patient = client.resource("Patient", id=rid, **patient_body(uid))
    await patient.save()
    assert patient.id == rid
    assert patient["meta"]["versionId"] == "1"
    history = await client.execute(f"Patient/{rid}/_history", method="get")
    assert history["entry"][0]["response"]["status"].startswith("201")
    assert history["entry"][0]["request"] == {"method": "PUT", "url": f"Patient/{rid}"}


async def test_delete_then_read_is_410(client, uid):
    patient = await new_patient(client, uid)
    assert await patient.delete() is None
    with pytest.raises(ResourceNotFound) as info:
        await client.get("Patient", patient.id)
    assert issue_codes(outcome_of(info.value)) == ["deleted"], "a deleted resource answers 410 Gone"
    assert await client.resources("Patient").search(identifier=run_scope(uid)).fetch() == []


async def test_read_unknown_id_is_404(client, uid):
    with pytest.raises(ResourceNotFound) as info:
        await client.get("Patient", f"nobody-{uid}")
    assert issue_codes(outcome_of(info.value)) == ["not-found"]


async def test_refresh_is_a_conditional_read(client, uid):
    patient = await new_patient(client, uid)
    await patient.refresh()  # If-None-Match → 304, the resource is kept
    assert patient["meta"]["versionId"] == "1"
    other = client.resource("Patient", **(await client.get("Patient", patient.id)))
    other["gender"] = "other"
    await other.save()
    await patient.refresh()
    assert patient["meta"]["versionId"] == "2" and patient["gender"] == "other"


# --------------------------------------------------------------------------- history


async def test_instance_history_newest_first(client, uid):
    patient = await new_patient(client, uid)
    for active in (True, False):
        patient["active"] = active
        await patient.save()
    await patient.delete()

    history = await client.execute(f"Patient/{patient.id}/_history", method="get")
    assert history["type"] == "history"
    assert history["total"] == 4
    assert history_version_ids(history) == ["4", "3", "2", "1"]
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "PUT", "PUT", "POST"]
    assert history["entry"][1]["resource"]["active"] is False


async def test_type_history_since(fresh_server, uid):
    client = AsyncFHIRClient(fresh_server.base_url)
    old = client.resource("Organization", **organization_body(uid, 0))
    await old.save()
    await asyncio.sleep(0.005)
    new = client.resource("Organization", **organization_body(uid, 1))
    await new.save()
    since = new["meta"]["lastUpdated"]
    new["active"] = False
    await new.save()
    await client.resource("Task", **task_body(uid, "ServiceRequest/x")).save()

    history = await client.execute("Organization/_history", method="get", params={"_since": since})
    assert [(e["resource"]["id"], e["resource"]["meta"]["versionId"]) for e in history["entry"]] == [
        (new.id, "2"),
        (new.id, "1"),
    ]
    assert history["total"] == 2


# --------------------------------------------------------------------------- search


async def test_search_by_identifier(client, uid):
    patient = await new_patient(client, uid)
    other = await new_patient(client, uid, 1)
    value = pnr(uid)
    patients = client.resources("Patient")
    assert entry_ids(await patients.search(identifier=f"{PNR_SYSTEM}|{value}").fetch()) == {patient.id}
    assert entry_ids(await patients.search(identifier=value).fetch()) == {patient.id}
    assert await patients.search(identifier=f"|{value}").fetch() == []
    assert entry_ids(await patients.search(identifier=run_scope(uid)).fetch()) == {patient.id, other.id}
    assert (await patients.search(identifier=f"{PNR_SYSTEM}|{value}").get()).id == patient.id
    with pytest.raises(MultipleResourcesFound):
        await patients.search(identifier=run_scope(uid)).get()


async def test_search_by_id_and_last_updated(client, uid):
    first = await new_patient(client, uid, 1)
    await asyncio.sleep(0.005)
    second = await new_patient(client, uid, 2)
    t1, t2 = first["meta"]["lastUpdated"], second["meta"]["lastUpdated"]
    assert t1 < t2

    async def ids(**params) -> set[str]:
        return entry_ids(await client.resources("Patient").search(identifier=run_scope(uid), **params).fetch())

    assert await ids(_id=first.id) == {first.id}
    assert await ids(_id=f"{first.id},{second.id}") == {first.id, second.id}
    assert await ids(_lastUpdated=f"eq{t1}") == {first.id}
    assert await ids(_lastUpdated=f"gt{t1}") == {second.id}
    assert await ids(_lastUpdated=f"ge{t1}") == {first.id, second.id}
    assert await ids(_lastUpdated=f"lt{t2}") == {first.id}
    assert await ids(_lastUpdated=f"le{t2}") == {first.id, second.id}
    assert await ids(_lastUpdated=f"lt{t1}") == set()


async def test_paging_with_fetch_all_and_async_for(client, uid):
    created = {(await new_patient(client, uid, n)).id for n in range(6)}
    search = client.resources("Patient").search(identifier=run_scope(uid))
    assert len(await search.limit(4).fetch()) == 4
    everything = await search.limit(4).fetch_all()
    assert len(everything) == 6 and entry_ids(everything) == created
    seen = [p.id async for p in search.limit(2)]
    assert len(seen) == 6 and set(seen) == created
    assert await search.count() == 6


# --------------------------------------------------------------------------- conditional interactions


async def test_conditional_create_with_if_none_exist(server, client, uid):
    cc = with_headers(server.base_url, If_None_Exist=f"identifier={PNR_SYSTEM}|{pnr(uid)}")
    first, created = await cc.resources("Patient").get_or_create(cc.resource("Patient", **patient_body(uid)))
    assert created is True
    second, created = await cc.resources("Patient").get_or_create(cc.resource("Patient", **patient_body(uid)))
    assert created is False
    assert second.id == first.id
    assert await client.resources("Patient").search(identifier=run_scope(uid)).count() == 1


async def test_conditional_update_and_delete(client, uid):
    criteria = client.resources("Patient").search(identifier=f"{PNR_SYSTEM}|{pnr(uid)}")
    resource, created = await criteria.update(client.resource("Patient", **patient_body(uid)))
    assert created is True
    again, created = await criteria.update(client.resource("Patient", **patient_body(uid, active=True)))
    assert created is False
    assert again.id == resource.id and again["meta"]["versionId"] == "2"

    await new_patient(client, uid, 1)
    with pytest.raises(MultipleResourcesFound):  # 412: two Patients carry the run identifier
        await client.resources("Patient").search(identifier=run_scope(uid)).delete()

    _, status = await criteria.delete()
    assert status in (200, 204)
    with pytest.raises(ResourceNotFound):
        await client.get("Patient", resource.id)
    assert await client.resources("Patient").search(identifier=run_scope(uid)).count() == 1


async def test_json_patch_and_native_patch(server, client, uid):
    patient = await new_patient(client, uid)
    # fhirpy's own patch: a partial resource as application/json, taken as JSON Merge Patch
    merged = await client.patch("Patient", patient.id, active=False)
    assert merged["active"] is False and merged["meta"]["versionId"] == "2"
    patient["gender"] = "female"
    await patient.patch(gender="unknown")  # resource.patch(): only the named fields travel
    fresh = await client.get("Patient", patient.id)
    assert fresh["gender"] == "unknown" and fresh["active"] is False and fresh["meta"]["versionId"] == "3"

    pc = with_headers(server.base_url, Content_Type=JSON_PATCH)
    patched = await pc.execute(
        f"Patient/{patient.id}",
        method="patch",
        data=[{"op": "replace", "path": "/gender", "value": "other"}, {"op": "add", "path": "/active", "value": False}],
    )
    assert patched["meta"]["versionId"] == "4"
    assert patched["gender"] == "other" and patched["active"] is False

    with pytest.raises(OperationOutcome) as info:
        await pc.execute(f"Patient/{patient.id}", method="patch", data=[{"op": "test", "path": "/gender", "value": "x"}])
    assert issue_codes(outcome_of(info.value)) == ["processing"]
    assert (await client.get("Patient", patient.id))["meta"]["versionId"] == "4"


async def test_if_match(server, client, uid):
    patient = await new_patient(client, uid)
    patient["active"] = True
    await patient.save()

    stale = with_headers(server.base_url, If_Match='W/"1"')
    with pytest.raises(MultipleResourcesFound) as info:  # 412
        await stale.execute(f"Patient/{patient.id}", method="put", data={**patient.serialize(), "active": False})
    assert issue_codes(outcome_of(info.value)) == ["conflict"]
    assert (await client.get("Patient", patient.id))["active"] is True

    current = with_headers(server.base_url, If_Match='W/"2"')
    updated = await current.execute(f"Patient/{patient.id}", method="put", data={**patient.serialize(), "active": False})
    assert updated["meta"]["versionId"] == "3" and updated["active"] is False


# --------------------------------------------------------------------------- concurrency


async def test_concurrent_creates_get_distinct_ids(client, uid):
    patients = [client.resource("Patient", **patient_body(uid, n)) for n in range(12)]
    await asyncio.gather(*(p.save() for p in patients))
    ids = [p.id for p in patients]
    assert len(set(ids)) == 12
    assert await client.resources("Patient").search(identifier=run_scope(uid)).count() == 12


async def test_racing_if_match_updates_exactly_one_wins(server, client, uid):
    patient = await new_patient(client, uid)
    body = patient.serialize()
    writers = [with_headers(server.base_url, If_Match='W/"1"') for _ in range(5)]
    results = await asyncio.gather(
        *(
            w.execute(f"Patient/{patient.id}", method="put", data={**body, "name": [{"family": f"Writer{n}"}]})
            for n, w in enumerate(writers)
        ),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, dict)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1, results
    # 412 (If-Match no longer matches) is the answer; a 409 from a detected race is acceptable too
    assert all(isinstance(e, (MultipleResourcesFound, OperationOutcome)) for e in losers), losers
    assert all(issue_codes(outcome_of(e)) == ["conflict"] for e in losers)
    current = await client.get("Patient", patient.id)
    assert current["meta"]["versionId"] == "2"
    assert current["name"] == winners[0]["name"]


async def test_racing_conditional_creates_create_one(server, client, uid):
    cc = with_headers(server.base_url, If_None_Exist=f"identifier={PNR_SYSTEM}|{pnr(uid)}")
    results = await asyncio.gather(
        *(cc.resources("Patient").get_or_create(cc.resource("Patient", **patient_body(uid))) for _ in range(6))
    )
    assert [created for _, created in results].count(True) == 1
    assert len({r.id for r, _ in results}) == 1
    assert await client.resources("Patient").search(identifier=run_scope(uid)).count() == 1


# --------------------------------------------------------------------------- transaction / batch


async def test_transaction_rewrites_urn_uuid_references(client, uid):
    p, o, sr = "urn:uuid:0a1b2c3d-0000-4000-8000-000000000001", "urn:uuid:0a1b2c3d-0000-4000-8000-000000000002", (
        "urn:uuid:0a1b2c3d-0000-4000-8000-000000000003"
    )
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": sr, "resource": service_request_body(uid, p, o), "request": {"method": "POST", "url": "ServiceRequest"}},
            {"fullUrl": p, "resource": patient_body(uid), "request": {"method": "POST", "url": "Patient"}},
            {"fullUrl": o, "resource": organization_body(uid), "request": {"method": "POST", "url": "Organization"}},
            {"resource": task_body(uid, sr), "request": {"method": "POST", "url": "Task"}},
        ],
    }
    response = await client.execute("", method="post", data=bundle)
    assert response["type"] == "transaction-response"
    assert [e["response"]["status"][:3] for e in response["entry"]] == ["201"] * 4
    sr_id, pid, oid, tid = (e["response"]["location"].split("/")[1] for e in response["entry"])

    service_request = await client.resources("ServiceRequest").search(identifier=f"{REMISS_SYSTEM}|remiss-{uid}").get()
    assert service_request.id == sr_id
    assert service_request["subject"].reference == f"Patient/{pid}"
    assert service_request["requester"].reference == f"Organization/{oid}"
    subject = await service_request["subject"].to_resource()
    assert subject["identifier"][0]["value"] == pnr(uid)
    task = await client.get("Task", tid)
    assert task["focus"]["reference"] == f"ServiceRequest/{sr_id}"


async def test_transaction_rollback(client, uid):
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:5e5e5e5e-0000-4000-8000-000000000001",
                "resource": patient_body(uid),
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": service_request_body(
                    uid, "urn:uuid:5e5e5e5e-0000-4000-8000-000000000001", "Organization/x", status="bogus"
                ),
                "request": {"method": "POST", "url": "ServiceRequest"},
            },
        ],
    }
    with pytest.raises(OperationOutcome) as info:
        await client.execute("", method="post", data=bundle)
    assert "ServiceRequest.status" in expressions(outcome_of(info.value))
    assert await client.resources("Patient").search(identifier=f"{PNR_SYSTEM}|{pnr(uid)}").fetch() == []
    assert await client.resources("Patient").search(identifier=run_scope(uid)).count() == 0


async def test_batch_with_one_failing_entry(client, uid):
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": patient_body(uid), "request": {"method": "POST", "url": "Patient"}},
            {
                "resource": service_request_body(uid, "Patient/x", "Organization/y", status="bogus"),
                "request": {"method": "POST", "url": "ServiceRequest"},
            },
            {"resource": organization_body(uid), "request": {"method": "POST", "url": "Organization"}},
        ],
    }
    response = await client.execute("", method="post", data=bundle)
    assert response["type"] == "batch-response"
    assert [e["response"]["status"][:3] for e in response["entry"]] == ["201", "400", "201"]
    assert expressions(response["entry"][1]["response"]["outcome"]) == ["ServiceRequest.status"]
    assert await client.resources("Patient").search(identifier=run_scope(uid)).count() == 1
    assert await client.resources("Organization").search(identifier=run_scope(uid)).count() == 1
    assert await client.resources("ServiceRequest").search(identifier=run_scope(uid)).count() == 0


# --------------------------------------------------------------------------- validation errors


async def test_invalid_service_request_status(client, uid):
    sr = client.resource("ServiceRequest", **service_request_body(uid, "Patient/x", "Organization/y", status="bogus"))
    with pytest.raises(OperationOutcome) as info:
        await sr.save()
    outcome = outcome_of(info.value)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == ["ServiceRequest.status"]
    assert await client.resources("ServiceRequest").search(identifier=run_scope(uid)).count() == 0


async def test_unknown_element_and_wrong_type(client, uid):
    with pytest.raises(OperationOutcome) as info:
        await client.resource("Patient", **patient_body(uid, favouriteColour="blue")).save()
    assert expressions(outcome_of(info.value)) == ["Patient.favouriteColour"]

    with pytest.raises(OperationOutcome) as info:
        await client.execute("Patient", method="post", data=organization_body(uid))
    assert expressions(outcome_of(info.value)) == ["resourceType"]
    assert await client.resources("Patient").search(identifier=run_scope(uid)).count() == 0
    assert await client.resources("Organization").search(identifier=run_scope(uid)).count() == 0


async def test_evi_chain_with_fhirpy_references(client, uid):
    patient = await new_patient(client, uid)
    org = client.resource("Organization", **organization_body(uid))
    await org.save()
    sr = client.resource("ServiceRequest", **service_request_body(uid, "Patient/x", "Organization/y"))
    sr["subject"] = patient.to_reference()
    sr["requester"] = org.to_reference()
    await sr.save()
    task = client.resource("Task", **task_body(uid, "ServiceRequest/x"))
    task["focus"] = sr.to_reference()
    await task.save()
    stored = await client.get("Task", task.id)
    assert stored["focus"] == {"reference": f"ServiceRequest/{sr.id}"}
    assert stored["status"] == "requested" and stored["intent"] == "order"
    focus = await client.reference(reference=stored["focus"]["reference"]).to_resource()
    assert focus["subject"]["reference"] == f"Patient/{patient.id}"
    assert focus["requester"]["reference"] == f"Organization/{org.id}"
